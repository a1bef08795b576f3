"""The one object the web, Slack and CLI adapters talk to: ask, search, entries, reload."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.embedding.embedder import Embedder
from app.embedding.loader import load_embedder
from app.engine.hash_cache import file_stamps, remember_hash, remembered_hash
from app.engine.question import clean_question
from app.engine.windows import condensed, surest_on_topic, windows
from app.errors import (
    AlternateConflict,
    EntryNotFound,
    IndexInvalid,
    KnowledgeChanged,
    KnowledgeError,
    PlaybookError,
)
from app.files import write_atomic
from app.index.build import build_index
from app.index.format import (
    CURRENT_FILE,
    LoadedIndex,
    embedding_space,
    limit_search_threads,
    load_index,
    staleness,
)
from app.knowledge.editing import knowledge_lock, with_alternates
from app.knowledge.glossary import Glossary
from app.knowledge.mentions import extract_mentions
from app.knowledge.playbook import OUT_OF_SCOPE_FILE, KnowledgeBase, load_knowledge, read_text
from app.knowledge.spelling import Speller
from app.knowledge.text import question_key
from app.ranking.answers import to_answer, to_matches
from app.ranking.out_of_scope import OutOfScope
from app.ranking.ranker import Ranker
from app.ranking.specificity import Specificity
from app.records import HIGH_CONFIDENCE, Answer, Entry, Match

log = logging.getLogger("playbook.engine")
# A reload that failed without any file changing (a full disk, say) is retried after 2, 4, 8 …
# watch intervals, never more than this many seconds apart.
RETRY_MAX_SECONDS = 300.0
# Entries ranked for every answer, however few alternatives the caller shows.
DECISION_DEPTH = 3


@dataclass(frozen=True)
class _State:
    """Everything one answer needs, swapped as a whole so a request sees one consistent index."""

    knowledge: KnowledgeBase
    index: LoadedIndex
    ranker: Ranker
    glossary: Glossary
    speller: Speller
    specificity: Specificity
    out_of_scope: OutOfScope
    entries_by_id: dict[str, Entry]


@dataclass(frozen=True)
class Change:
    """Who changed the knowledge and how, for the listeners (the history): None when a reload
    found the files changed on disk by someone else."""

    who: str
    action: str  # "publish", "review-add", "restore"
    restored_from: int | None = None


# Called after every load is swapped in: a listener recording versions skips unchanged files.
ChangeListener = Callable[[KnowledgeBase, Change | None], None]
# A file's new text from its text now ("" if missing) and the knowledge; raises to refuse.
Edit = Callable[[str, KnowledgeBase], str]


@dataclass(frozen=True)
class LoadReport:
    action: str  # "loaded" or "built"
    reason: str
    seconds: float
    entries: int
    vectors: int


class Engine:
    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        limit_search_threads()
        self.settings = settings
        self.embedder = embedder
        self._state: _State | None = None
        self._reload_lock = threading.Lock()
        self.busy = False
        self._fingerprint: tuple[object, ...] = ()
        self._checked_at = 0.0
        self.last_reload_error: str | None = None
        self._failures = 0
        self._retry_at = 0.0
        self.loads = 0  # index loads or builds swapped in, and loads that failed (for /metrics)
        self.load_failures = 0
        self.listeners: list[ChangeListener] = []

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> Engine:
        engine = cls(settings, embedder or load_embedder(settings))
        engine.load()
        return engine

    # ------------------------------------------------------------ loading

    def load(self, force_rebuild: bool = False, show_progress: bool = False) -> LoadReport:
        """Read the knowledge, use the built index if it matches, otherwise rebuild it; swap in
        the result. A broken knowledge file raises and leaves the serving state untouched."""
        with self._reloading():
            try:
                return self._load(force_rebuild, show_progress)
            except Exception:
                self.load_failures += 1
                raise

    @contextmanager
    def _reloading(self) -> Iterator[None]:
        with self._reload_lock:
            self.busy = True
            try:
                yield
            finally:
                self.busy = False

    def _load(self, force_rebuild: bool, show_progress: bool,
              change: Change | None = None) -> LoadReport:
        started = time.perf_counter()
        knowledge_stamps = file_stamps(self._knowledge_files())
        knowledge = load_knowledge(self.settings.knowledge_dir)
        index_dir = self.settings.index_dir
        # The remembered hash serves only files that did not change while they were read.
        steady = file_stamps(self._knowledge_files()) == knowledge_stamps
        known_hash = remembered_hash(index_dir, knowledge_stamps) if steady else None
        reason = "rebuild requested" if force_rebuild else ""
        index: LoadedIndex | None = None
        if not force_rebuild:
            try:
                index = load_index(index_dir)
                reason = staleness(index, knowledge, embedding_space(self.embedder),
                                   self.settings.head_weight, known_hash) or ""
            except IndexInvalid as exc:
                reason = str(exc)
        if index is None or reason:
            log.info("building the index: %s", reason)
            previous = self._state.index if self._state is not None else None
            try:
                index = build_index(knowledge, self.embedder, index_dir,
                                    show_progress=show_progress, previous=previous,
                                    head_weight=self.settings.head_weight)
            except (OSError, RuntimeError, sqlite3.Error) as exc:  # disk full, faiss, cache
                raise IndexInvalid(f"the index could not be built in {index_dir}: "
                                   f"{type(exc).__name__}: {exc}") from exc
            action = "built"
        else:
            action = "loaded"
        if steady and known_hash is None:  # made above, by the staleness check or the build
            remember_hash(index_dir, knowledge_stamps, knowledge.content_hash())
        glossary = Glossary(knowledge.glossary)
        slot_terms = [term for slot in knowledge.slots.values() for term in slot.terms()]
        extract_mentions("", knowledge.slots)  # builds the slots' lookup tables now, not on a question
        self._state = _State(
            knowledge=knowledge,
            index=index,
            ranker=Ranker(index, knowledge.entries),
            glossary=glossary,
            speller=Speller((text for e in knowledge.entries
                             for text in (e.question, e.answer, *e.alternates)),
                            (*knowledge.glossary, *slot_terms)),
            specificity=Specificity(knowledge.entries, (glossary.expand(e.question)
                                                       for e in knowledge.entries),
                                    knowledge.glossary),
            out_of_scope=OutOfScope(knowledge.out_of_scope, index.out_of_scope),
            entries_by_id={e.id: e for e in knowledge.entries},
        )
        # Knowledge as read before loading (an edit made meanwhile triggers another reload),
        # the index pointer as left after building.
        self._fingerprint = (knowledge_stamps, file_stamps([index_dir / CURRENT_FILE]))
        self.last_reload_error = None
        self.loads += 1
        self._tell_listeners(knowledge, change)
        return LoadReport(action, reason, time.perf_counter() - started,
                          len(knowledge.entries), index.manifest.vector_count)

    def _tell_listeners(self, knowledge: KnowledgeBase, change: Change | None) -> None:
        for listener in self.listeners:
            try:
                listener(knowledge, change)
            except Exception:  # the knowledge is live: a listener's failure must not undo that
                log.exception("a knowledge-change listener failed")

    def publish(self, edit: Edit, change: Change | None, base_hash: str | None = None,
                out_of_scope: Edit | None = None) -> LoadReport:
        """Rewrite playbook.yaml with `edit(text, knowledge)` under the knowledge lock (shared
        with every other process, on the file as it is now), then rebuild and swap. With
        `base_hash`, refuse (KnowledgeChanged) if the knowledge is no longer what the editor
        started from; with `out_of_scope`, rewrite out_of_scope.txt in the same step. An edit
        validates; nothing is written if one raises, or where it changes nothing."""
        def playbook(knowledge: KnowledgeBase) -> Path:
            if knowledge.path is None or knowledge.path.suffix not in (".yaml", ".yml"):
                raise KnowledgeError(str(knowledge.path), None,
                                     "only a playbook.yaml can be edited here")
            return knowledge.path

        edits: list[tuple[Callable[[KnowledgeBase], Path], Edit]] = [(playbook, edit)]
        if out_of_scope is not None:
            edits.append((self._out_of_scope_file, out_of_scope))
        return self._rewrite(edits, change, base_hash)

    def publish_out_of_scope(self, edit: Edit, change: Change | None) -> LoadReport:
        """Rewrite out_of_scope.txt (made if missing) as `publish` does playbook.yaml."""
        return self._rewrite([(self._out_of_scope_file, edit)], change)

    def _out_of_scope_file(self, _knowledge: KnowledgeBase) -> Path:
        return self._home() / OUT_OF_SCOPE_FILE

    def _rewrite(self, edits: Sequence[tuple[Callable[[KnowledgeBase], Path], Edit]],
                 change: Change | None, base_hash: str | None = None) -> LoadReport:
        with self._reloading(), knowledge_lock(self._home()):
            knowledge = load_knowledge(self.settings.knowledge_dir)
            if base_hash is not None and knowledge.content_hash() != base_hash:
                raise KnowledgeChanged()
            writes: list[tuple[Path, str]] = []
            for file_of, edit in edits:  # every edit validates before anything is written
                path = file_of(knowledge)
                text = read_text(path) if path.exists() else ""
                edited = edit(text, knowledge)
                if edited != text:
                    writes.append((path, edited))
            for path, edited in writes:
                write_atomic(path, edited)
            return self._load(force_rebuild=False, show_progress=False, change=change)

    def _home(self) -> Path:
        folder = self.settings.knowledge_dir
        return folder if folder.is_dir() else folder.parent

    def add_alternate(self, entry_id: str, phrasing: str, force: bool = False,
                      change: Change | None = None) -> LoadReport:
        """Teach an entry a new phrasing: write it into playbook.yaml (under a lock shared with
        every other process, on the file as it is now), rebuild, swap the index. A phrasing that
        is already another entry's is refused, and so (unless `force`) is one whose nearest
        indexed text belongs to another entry: it would pull questions away from it."""
        phrasing = clean_question(phrasing, self.settings.max_question_chars)

        def edit(text: str, knowledge: KnowledgeBase) -> str:
            if knowledge.entry(entry_id) is None:
                raise EntryNotFound(entry_id)
            self._check_new_alternate(knowledge, entry_id, phrasing, force)
            assert knowledge.path is not None  # publish only edits a playbook.yaml
            return with_alternates(text, knowledge.path, knowledge.slots, entry_id, [phrasing])

        return self.publish(edit, change)

    def _check_new_alternate(self, knowledge: KnowledgeBase, entry_id: str, phrasing: str,
                             force: bool) -> None:
        key = question_key(phrasing)
        for entry in knowledge.entries:
            if entry.id != entry_id and key in {question_key(t)
                                                for t in (entry.question, *entry.alternates)}:
                raise AlternateConflict(f"{phrasing!r} is already a phrasing of {entry.id!r}")
        if force:
            return
        found = self.rival(entry_id, phrasing)
        if found is not None:
            rival, closest, own = found
            raise AlternateConflict(
                f"{phrasing!r} sits closer to {rival!r} ({closest:.2f}) than to {entry_id!r} "
                f"({own:.2f}): added, it would pull {rival!r}'s questions away; reword it, or add "
                "it anyway (force)")

    def rival(self, entry_id: str, text: str) -> tuple[str, float, float] | None:
        """The entry whose indexed texts sit closer to `text` than `entry_id`'s do, with both
        cosines, or None when `entry_id` is nearest (as a phrasing of it, `text` is safe)."""
        state = self._state
        if state is None:
            return None
        nearest = state.ranker.nearest_texts(self._encode(state, text))
        own = nearest.get(entry_id, -1.0)
        rival, closest = max(((e, s) for e, s in nearest.items() if e != entry_id),
                             key=lambda item: item[1], default=(None, -1.0))
        return (rival, closest, own) if rival is not None and closest > own else None

    def nearest_card(self, text: str) -> tuple[str, float] | None:
        """The entry whose indexed texts sit closest to `text`, with the cosine."""
        state = self._current()
        nearest = state.ranker.nearest_texts(self._encode(state, text))
        return max(nearest.items(), key=lambda item: item[1], default=None)

    def _knowledge_files(self) -> list[Path]:
        location = self.settings.knowledge_dir
        return sorted(location.iterdir()) if location.is_dir() else [location]

    def _files_fingerprint(self) -> tuple[object, ...]:
        current = self.settings.index_dir / CURRENT_FILE
        return (file_stamps(self._knowledge_files()), file_stamps([current]))

    def refresh_if_changed(self) -> bool:
        """Pick up knowledge edits and index builds made by another process (another worker,
        `playbook build`, an editor): checked at most every `watch_seconds`, reloaded in the
        background. A failed reload is logged and reported by health(), the last good index
        keeps serving, and it is retried when the files change again or, for a failure that
        may pass (a full disk), after a back-off that doubles up to RETRY_MAX_SECONDS."""
        interval = self.settings.watch_seconds
        now = time.monotonic()
        if not interval or self.busy or now - self._checked_at < interval:
            return False
        self._checked_at = now
        changed = self._files_fingerprint() != self._fingerprint
        if not changed and not (self.last_reload_error and now >= self._retry_at):
            return False
        threading.Thread(target=self._background_reload, name="playbook-reload",
                         daemon=True).start()
        return True

    def _background_reload(self) -> None:
        try:
            report = self.load()
            self._failures = 0
            log.info("reloaded after a change on disk: %s %s", report.action, report.reason)
        except Exception as exc:  # a reload thread must never die silently
            self.last_reload_error = str(exc) or type(exc).__name__
            self._fingerprint = self._files_fingerprint()
            self._failures += 1
            delay = min(RETRY_MAX_SECONDS, max(1.0, self.settings.watch_seconds) * 2 ** self._failures)
            self._retry_at = time.monotonic() + delay
            log.error("knowledge change not applied, still serving the last good index "
                      "(retrying in %.0f s, or when the files change): %s", delay,
                      self.last_reload_error, exc_info=not isinstance(exc, PlaybookError))

    @property
    def ready(self) -> bool:
        return self._state is not None and not self.busy

    def _current(self) -> _State:
        state = self._state
        if state is None:
            raise IndexInvalid("the engine has not loaded an index yet")
        return state

    # ------------------------------------------------------------ questions

    def ask(self, question: str, top_k: int | None = None, tags: Collection[str] = ()) -> Answer:
        state = self._current()
        text = clean_question(question, self.settings.max_question_chars, lines=True)
        alternatives = self.settings.top_k if top_k is None else top_k
        corrected = state.speller.correct(text)
        mentions = extract_mentions(corrected, state.knowledge.slots)
        calibration = state.index.manifest.calibration
        vague = state.specificity.cards(corrected)
        def answer(texts: list[str]) -> list[Answer]:
            vectors = self.embedder.encode([state.glossary.expand(t) for t in texts])
            # The decision (ambiguity, a ruled-out top card's runner-up) looks past the
            # alternatives shown: how many a caller wants to see must not change the answer.
            depth = max(alternatives, DECISION_DEPTH) + 1
            return [to_answer(text, state.ranker.rank(vector, depth, tags), calibration,
                              alternatives, mentions, vague,
                              state.out_of_scope.nearest(vector))
                    for vector in vectors]

        whole_text, *parts = windows(corrected)
        [whole] = answer([whole_text])
        if not parts or (whole.matched and whole.confidence >= HIGH_CONFIDENCE):
            return whole  # a window could only confirm the same card: not worth ~40 encodings
        answered = dict(zip(parts, answer(parts), strict=True))
        nearest = condensed(corrected, answered)
        if nearest is not None:
            answered[nearest] = answer([nearest])[0]
        return surest_on_topic(whole, list(answered.values()))

    def search(self, query: str, k: int = 5, tags: Collection[str] = ()) -> list[Match]:
        state = self._current()
        text = clean_question(query, self.settings.max_question_chars)
        ranked = state.ranker.rank(self._encode(state, state.speller.correct(text)), k, tags)
        return to_matches(ranked, state.index.manifest.calibration)

    def _encode(self, state: _State, text: str) -> Any:
        return self.embedder.encode([state.glossary.expand(text)])[0]

    # ------------------------------------------------------------ browsing

    @property
    def knowledge(self) -> KnowledgeBase:
        return self._current().knowledge

    def entries(self) -> tuple[Entry, ...]:
        return self._current().knowledge.entries

    def entry(self, entry_id: str) -> Entry:
        found = self._current().entries_by_id.get(entry_id)
        if found is None:
            raise EntryNotFound(entry_id)
        return found

    def health(self) -> dict[str, Any]:
        state = self._current()
        manifest = state.index.manifest
        return {
            "status": "reloading" if self.busy else "degraded" if self.last_reload_error else "ok",
            "entries": manifest.entry_count,
            "vectors": manifest.vector_count,
            "model": manifest.model,
            "encoder": self.embedder.encoder,
            "knowledge_hash": manifest.knowledge_hash,
            "index_built_at": manifest.built_at,
            "index_type": manifest.index_type,
            "last_reload_error": self.last_reload_error,
        }
