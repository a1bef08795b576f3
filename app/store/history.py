"""The knowledge's history: every version of playbook.yaml and out_of_scope.txt that was served,
with who changed it, how (a publish, a review add, questions marked out of scope, an import, a
restore, or a file edit the watcher picked up), when, the knowledge hash, a per-entry diff and
the out-of-scope lines added and removed. Any version can be restored; the restore is itself a
new version. Kept in the feedback database (it holds no customer text, so retention leaves it).

A version recorded before out_of_scope.txt was kept has no such text (None): restoring it, or a
replica following it, leaves that file as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.engine.engine import Change, Engine
from app.errors import KnowledgeError, PlaybookError, VersionNotFound
from app.knowledge.conditions import Slot
from app.knowledge.diff import EntryChange, FieldChange, knowledge_changes
from app.knowledge.playbook import (
    OUT_OF_SCOPE_FILE,
    KnowledgeBase,
    parse_lines,
    parse_playbook_yaml,
    read_text,
)
from app.store.clock import parse_timestamp, timestamp

if TYPE_CHECKING:
    from app.store.feedback import FeedbackStore

log = logging.getLogger("playbook.history")
RECORD_LOCK = 0x686973  # PostgreSQL advisory lock: one version recorded at a time

# A change nobody announced: an edit of the file, picked up by the watcher or at start.
FILE_EDIT = Change(who="(edited on disk)", action="file-edit")


@dataclass(frozen=True)
class LineChanges:
    """out_of_scope.txt's questions a version added and removed."""

    added: tuple[str, ...]
    removed: tuple[str, ...]

    @classmethod
    def between(cls, before: str | None, after: str) -> LineChanges:
        old, new = parse_lines(before or ""), parse_lines(after)
        kept_old, kept_new = set(old), set(new)
        return cls(tuple(line for line in new if line not in kept_old),
                   tuple(line for line in old if line not in kept_new))

    def summary(self) -> str:
        counts = [f"{len(lines)} {verb}" for lines, verb in ((self.added, "added"),
                                                            (self.removed, "removed")) if lines]
        return f"out_of_scope.txt: {', '.join(counts)}" if counts else ""


@dataclass(frozen=True)
class Version:
    number: int
    recorded_at: datetime
    who: str
    action: str
    restored_from: int | None
    knowledge_hash: str
    changes: tuple[EntryChange, ...]
    out_of_scope_changes: LineChanges
    playbook: str = ""  # the whole files; only filled by KnowledgeHistory.version()
    out_of_scope: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.number, "recorded_at": timestamp(self.recorded_at),
                "who": self.who, "action": self.action, "restored_from": self.restored_from,
                "knowledge_hash": self.knowledge_hash,
                "changes": [asdict(c) for c in self.changes],
                "out_of_scope_changes": asdict(self.out_of_scope_changes)}


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def snapshot_hash(playbook: str, out_of_scope: str) -> str:
    """A version's identity: playbook.yaml's text, with out_of_scope.txt's when that file has
    any (so the versions recorded before it was kept, and playbooks without one, keep theirs)."""
    return text_hash(playbook + "\0" + out_of_scope if out_of_scope.strip() else playbook)


def _change_of(raw: dict[str, Any]) -> EntryChange:
    fields = tuple(FieldChange(f["field"], f["before"], f["after"], tuple(f["added"]),
                               tuple(f["removed"])) for f in raw["fields"])
    return EntryChange(raw["entry_id"], raw["kind"], raw["question"], fields)


_COLUMNS = ("version, recorded_at, who, action, restored_from, knowledge_hash, changes, "
            "out_of_scope_changes")


def _version(row: Any, playbook: str = "", out_of_scope: str | None = None) -> Version:
    number, recorded_at, who, action, restored_from, knowledge_hash, changes, lines = row
    line_changes = json.loads(lines) if lines else {"added": [], "removed": []}
    return Version(number, parse_timestamp(recorded_at), who, action, restored_from,
                   knowledge_hash, tuple(_change_of(c) for c in json.loads(changes)),
                   LineChanges(tuple(line_changes["added"]), tuple(line_changes["removed"])),
                   playbook, out_of_scope)


class KnowledgeHistory:
    def __init__(self, store: FeedbackStore) -> None:
        self.store = store

    def record(self, text: str, out_of_scope: str, knowledge: KnowledgeBase, who: str,
               action: str, slots: dict[str, Slot], restored_from: int | None = None,
               unless_known: bool = False) -> Version | None:
        """Add playbook.yaml's `text` and out_of_scope.txt's (empty when there is none) as the
        newest version, unless they already are (every worker's watcher sees the same edit:
        the first records it). With `unless_known`, neither when they are any recorded
        version: a replica whose files are behind is brought forward, not recorded."""
        snapshot = snapshot_hash(text, out_of_scope)
        with self.store.connection(write=True) as connection:
            if self.store.shared:  # one recorder at a time across replicas
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": RECORD_LOCK})
            latest = connection.execute(sa.text(
                "SELECT text_hash, playbook, out_of_scope FROM knowledge_versions "
                "ORDER BY version DESC LIMIT 1")).first()
            if latest is not None and latest[0] == snapshot:
                return None
            if unless_known and _known(connection, snapshot):
                return None
            before = _parsed(latest[1], knowledge.path, slots) if latest else None
            changes = knowledge_changes(before, knowledge)
            lines = LineChanges.between(latest[2] if latest else None, out_of_scope)
            recorded_at = self.store.clock()
            number: int = connection.execute(sa.text(
                "INSERT INTO knowledge_versions (recorded_at, who, action, restored_from, "
                "knowledge_hash, text_hash, changes, playbook, out_of_scope, "
                "out_of_scope_changes) VALUES (:at, :who, :action, :restored_from, "
                ":knowledge_hash, :text_hash, :changes, :playbook, :out_of_scope, :lines) "
                "RETURNING version"),
                {"at": timestamp(recorded_at), "who": who, "action": action,
                 "restored_from": restored_from, "knowledge_hash": knowledge.content_hash(),
                 "text_hash": snapshot, "changes": json.dumps([asdict(c) for c in changes]),
                 "playbook": text, "out_of_scope": out_of_scope,
                 "lines": json.dumps(asdict(lines))}).scalar_one()
        return Version(number, recorded_at, who, action, restored_from,
                       knowledge.content_hash(), tuple(changes), lines)

    def versions(self, limit: int = 100) -> list[Version]:
        """The newest versions first, without their text."""
        with self.store.connection(write=False) as connection:
            rows = connection.execute(sa.text(f"SELECT {_COLUMNS} FROM knowledge_versions "
                                              "ORDER BY version DESC LIMIT :limit"),
                                      {"limit": limit}).all()
        return [_version(row) for row in rows]

    def newest(self) -> Newest | None:
        with self.store.connection(write=False) as connection:
            row = connection.execute(sa.text(
                "SELECT version, text_hash, playbook, out_of_scope FROM knowledge_versions "
                "ORDER BY version DESC LIMIT 1")).first()
        return Newest(row[0], row[1], row[2], row[3]) if row else None

    def is_known(self, playbook: str, out_of_scope: str) -> bool:
        with self.store.connection(write=False) as connection:
            return _known(connection, snapshot_hash(playbook, out_of_scope))

    def version(self, number: int) -> Version:
        with self.store.connection(write=False) as connection:
            row = connection.execute(sa.text(f"SELECT {_COLUMNS}, playbook, out_of_scope FROM "
                                             "knowledge_versions WHERE version = :number"),
                                     {"number": number}).first()
        if row is None:
            raise VersionNotFound(number)
        return _version(row[:-2], row[-2], row[-1])


@dataclass(frozen=True)
class Newest:
    """The newest version's number, identity (`snapshot_hash`) and files."""

    number: int
    snapshot: str
    playbook: str
    out_of_scope: str | None


def _known(connection: Connection, text_hash: str) -> bool:
    return connection.execute(sa.text("SELECT 1 FROM knowledge_versions WHERE text_hash = :h"
                                      " LIMIT 1"), {"h": text_hash}).first() is not None


def _parsed(text: str, path: Path | None, slots: dict[str, Slot]) -> KnowledgeBase | None:
    try:
        return parse_playbook_yaml(text, path or Path("playbook.yaml"), slots)
    except KnowledgeError:  # written under slots that have since changed: diff against nothing
        return None


def out_of_scope_text(playbook: Path) -> str:
    """The text of the out_of_scope.txt beside `playbook` ("" when there is none)."""
    path = playbook.parent / OUT_OF_SCOPE_FILE
    return read_text(path) if path.exists() else ""


def record_change(history: KnowledgeHistory, knowledge: KnowledgeBase,
                  change: Change | None) -> Version | None:
    """Record the playbook.yaml `knowledge` was loaded from and the out_of_scope.txt beside it,
    unless they are the newest version. On a database shared by replicas, unannounced files
    that are an older version are a replica behind the others (brought forward by
    app.store.replication), not a change."""
    path = knowledge.path
    if path is None or path.suffix not in (".yaml", ".yml"):
        return None  # a benchmark's entries.jsonl: nothing to restore to
    return history.record(read_text(path), out_of_scope_text(path), knowledge,
                          (change or FILE_EDIT).who, (change or FILE_EDIT).action,
                          knowledge.slots, change.restored_from if change else None,
                          unless_known=change is None and history.store.shared)


def attach_history(engine: Engine, store: FeedbackStore) -> KnowledgeHistory:
    """Record what the engine serves now (an edit made while nothing ran), then every change."""
    history = KnowledgeHistory(store)
    try:
        record_change(history, engine.knowledge, None)
    except PlaybookError as exc:  # an unwritable database must not stop the serving
        log.warning("the knowledge history could not be recorded: %s", exc)

    def listener(knowledge: KnowledgeBase, change: Change | None) -> None:
        record_change(history, knowledge, change)

    engine.listeners.append(listener)
    return history


def restore(engine: Engine, history: KnowledgeHistory, number: int, who: str) -> Version:
    """Make version `number` the playbook and out_of_scope.txt again, recorded as a new version
    (restoring the newest version changes nothing). The engine must have its history
    attached."""
    version = history.version(number)
    out_of_scope = version.out_of_scope
    engine.publish(lambda _text, knowledge: _checked(version.playbook, knowledge),
                   Change(who, "restore", restored_from=number),
                   out_of_scope=None if out_of_scope is None else lambda *_: out_of_scope)
    return history.versions(limit=1)[0]


def _checked(text: str, knowledge: KnowledgeBase) -> str:
    parse_playbook_yaml(text, knowledge.path or Path("playbook.yaml"), knowledge.slots)
    return text
