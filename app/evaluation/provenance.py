"""What an evaluation ran on, for the report's header: the date, the code's git commit, the
knowledge (where, its content hash and size), the model and encoder, and the answer threshold."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.index.format import BUILDS_DIR, CURRENT_FILE, Manifest

if TYPE_CHECKING:
    from app.engine.engine import Engine


def now() -> datetime:  # tests replace it to get an exact header
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunInfo:
    date: str
    commit: str | None  # `git rev-parse --short HEAD` where the command ran; None outside git
    knowledge: str  # the folder, file or server URL evaluated
    knowledge_hash: str | None  # sha256 of everything that shapes the index
    entries: int | None
    model: str | None
    encoder: str | None
    threshold: float | None  # answer when confidence >= threshold (None: not known)

    def rows(self) -> list[tuple[str, str]]:
        """The header, as label and text."""
        version = "unknown" if self.knowledge_hash is None else f"hash {self.knowledge_hash[:12]}"
        if self.entries is not None:
            version += f", {self.entries} entries"
        return [
            ("date", self.date),
            ("git commit", self.commit or "none (not a git checkout)"),
            ("knowledge", self.knowledge),
            ("knowledge version", version),
            ("model", self.model or "unknown"),
            ("encoder", self.encoder or "unknown"),
            ("answer threshold", "unknown" if self.threshold is None else f"{self.threshold:.2f}"),
        ]


def git_commit(folder: Path | None = None) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder,
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def engine_info(engine: Engine, knowledge: str) -> RunInfo:
    health = engine.health()
    return _info(health, knowledge, _threshold(engine.settings.index_dir))


def server_info(health: dict[str, Any], url: str) -> RunInfo:
    """From a server's /healthz (which does not say its threshold)."""
    return _info(health, url, None)


def _info(health: dict[str, Any], knowledge: str, threshold: float | None) -> RunInfo:
    return RunInfo(
        date=now().strftime("%Y-%m-%d %H:%M UTC"),
        commit=git_commit(),
        knowledge=knowledge,
        knowledge_hash=health.get("knowledge_hash"),
        entries=health.get("entries"),
        model=health.get("model"),
        encoder=health.get("encoder"),
        threshold=threshold,
    )


def _threshold(index_dir: Path) -> float | None:
    """The calibrated threshold from the current build's manifest (read alone: no vectors)."""
    try:
        build = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
        text = (index_dir / BUILDS_DIR / build / "manifest.json").read_text(encoding="utf-8")
        return Manifest.from_json(text).calibration.threshold
    except (OSError, ValueError, TypeError):
        return None
