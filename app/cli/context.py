"""What every command gets: the settings, and the one seam for the model (tests pass a fake)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.config import Settings
from app.errors import KnowledgeError

if TYPE_CHECKING:
    from app.embedding.embedder import Embedder
    from app.engine.engine import Engine

EmbedderFactory = Callable[[Settings], "Embedder"]


def load_local_model(settings: Settings) -> Embedder:
    from app.embedding.loader import load_embedder

    return load_embedder(settings)


@dataclass
class Context:
    settings: Settings
    make_embedder: EmbedderFactory = load_local_model
    _embedder: Embedder | None = field(default=None, repr=False)

    def embedder(self) -> Embedder:
        """The model, loaded once per command."""
        if self._embedder is None:
            self._embedder = self.make_embedder(self.settings)
        return self._embedder

    def require_knowledge(self) -> None:
        """Before the model loads (seconds): a clear error when there is no knowledge here."""
        folder = self.settings.knowledge_dir
        if not folder.exists():
            raise KnowledgeError(str(folder), None, "no such file or folder (run from the folder "
                                 "that holds knowledge/, or pass --knowledge-dir or set "
                                 "PLAYBOOK_KNOWLEDGE_DIR)")

    def engine(self) -> Engine:
        """An engine over the configured knowledge, its index loaded (or built)."""
        from app.engine.engine import Engine

        self.require_knowledge()
        engine = Engine(self.settings, self.embedder())
        engine.load()
        return engine
