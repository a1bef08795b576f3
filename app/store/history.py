"""The knowledge's history: every version of playbook.yaml that was served, with who changed it,
how (a publish, a review add, an import, a restore, or a file edit the watcher picked up), when,
the knowledge hash and a per-entry diff. Any version can be restored; the restore is itself a
new version. Kept in the feedback database (it holds no customer text, so retention leaves it).
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
from app.knowledge.playbook import KnowledgeBase, parse_playbook_yaml, read_text
from app.store.clock import parse_timestamp, timestamp

if TYPE_CHECKING:
    from app.store.feedback import FeedbackStore

log = logging.getLogger("playbook.history")
RECORD_LOCK = 0x686973  # PostgreSQL advisory lock: one version recorded at a time

# A change nobody announced: an edit of the file, picked up by the watcher or at start.
FILE_EDIT = Change(who="(edited on disk)", action="file-edit")


@dataclass(frozen=True)
class Version:
    number: int
    recorded_at: datetime
    who: str
    action: str
    restored_from: int | None
    knowledge_hash: str
    changes: tuple[EntryChange, ...]
    playbook: str = ""  # the whole file; only filled by KnowledgeHistory.version()

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.number, "recorded_at": timestamp(self.recorded_at),
                "who": self.who, "action": self.action, "restored_from": self.restored_from,
                "knowledge_hash": self.knowledge_hash,
                "changes": [asdict(c) for c in self.changes]}


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _change_of(raw: dict[str, Any]) -> EntryChange:
    fields = tuple(FieldChange(f["field"], f["before"], f["after"], tuple(f["added"]),
                               tuple(f["removed"])) for f in raw["fields"])
    return EntryChange(raw["entry_id"], raw["kind"], raw["question"], fields)


_COLUMNS = "version, recorded_at, who, action, restored_from, knowledge_hash, changes"


def _version(row: Any, playbook: str = "") -> Version:
    number, recorded_at, who, action, restored_from, knowledge_hash, changes = row
    return Version(number, parse_timestamp(recorded_at), who, action, restored_from,
                   knowledge_hash, tuple(_change_of(c) for c in json.loads(changes)), playbook)


class KnowledgeHistory:
    def __init__(self, store: FeedbackStore) -> None:
        self.store = store

    def record(self, text: str, knowledge: KnowledgeBase, who: str, action: str,
               slots: dict[str, Slot], restored_from: int | None = None,
               unless_known: bool = False) -> Version | None:
        """Add `text` as the newest version, unless it already is (every worker's watcher sees
        the same edit: the first records it). With `unless_known`, neither when it is any
        recorded version: a replica whose file is behind is brought forward, not recorded."""
        with self.store.connection(write=True) as connection:
            if self.store.shared:  # one recorder at a time across replicas
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": RECORD_LOCK})
            latest = connection.execute(sa.text(
                "SELECT text_hash, playbook FROM knowledge_versions "
                "ORDER BY version DESC LIMIT 1")).first()
            if latest is not None and latest[0] == text_hash(text):
                return None
            if unless_known and _known(connection, text_hash(text)):
                return None
            before = _parsed(latest[1], knowledge.path, slots) if latest else None
            changes = knowledge_changes(before, knowledge)
            recorded_at = self.store.clock()
            number: int = connection.execute(sa.text(
                "INSERT INTO knowledge_versions (recorded_at, who, action, restored_from, "
                "knowledge_hash, text_hash, changes, playbook) VALUES (:at, :who, :action, "
                ":restored_from, :knowledge_hash, :text_hash, :changes, :playbook) "
                "RETURNING version"),
                {"at": timestamp(recorded_at), "who": who, "action": action,
                 "restored_from": restored_from, "knowledge_hash": knowledge.content_hash(),
                 "text_hash": text_hash(text),
                 "changes": json.dumps([asdict(c) for c in changes]),
                 "playbook": text}).scalar_one()
        return Version(number, recorded_at, who, action, restored_from,
                       knowledge.content_hash(), tuple(changes))

    def versions(self, limit: int = 100) -> list[Version]:
        """The newest versions first, without their text."""
        with self.store.connection(write=False) as connection:
            rows = connection.execute(sa.text(f"SELECT {_COLUMNS} FROM knowledge_versions "
                                              "ORDER BY version DESC LIMIT :limit"),
                                      {"limit": limit}).all()
        return [_version(row) for row in rows]

    def newest(self) -> tuple[int, str, str] | None:
        """The newest version's number, text hash and text."""
        with self.store.connection(write=False) as connection:
            row = connection.execute(sa.text(
                "SELECT version, text_hash, playbook FROM knowledge_versions "
                "ORDER BY version DESC LIMIT 1")).first()
        return (row[0], row[1], row[2]) if row else None

    def is_known(self, text: str) -> bool:
        with self.store.connection(write=False) as connection:
            return _known(connection, text_hash(text))

    def version(self, number: int) -> Version:
        with self.store.connection(write=False) as connection:
            row = connection.execute(sa.text(f"SELECT {_COLUMNS}, playbook FROM "
                                             "knowledge_versions WHERE version = :number"),
                                     {"number": number}).first()
        if row is None:
            raise VersionNotFound(number)
        return _version(row[:-1], row[-1])


def _known(connection: Connection, text_hash: str) -> bool:
    return connection.execute(sa.text("SELECT 1 FROM knowledge_versions WHERE text_hash = :h"
                                      " LIMIT 1"), {"h": text_hash}).first() is not None


def _parsed(text: str, path: Path | None, slots: dict[str, Slot]) -> KnowledgeBase | None:
    try:
        return parse_playbook_yaml(text, path or Path("playbook.yaml"), slots)
    except KnowledgeError:  # written under slots that have since changed: diff against nothing
        return None


def record_change(history: KnowledgeHistory, knowledge: KnowledgeBase,
                  change: Change | None) -> Version | None:
    """Record the playbook.yaml `knowledge` was loaded from, unless it is the newest version.
    On a database shared by replicas, an unannounced file that is an older version is a replica
    behind the others (brought forward by app.store.replication), not a change."""
    path = knowledge.path
    if path is None or path.suffix not in (".yaml", ".yml"):
        return None  # a benchmark's entries.jsonl: nothing to restore to
    return history.record(read_text(path), knowledge, (change or FILE_EDIT).who,
                          (change or FILE_EDIT).action, knowledge.slots,
                          change.restored_from if change else None,
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
    """Make version `number` the playbook again, recorded as a new version (restoring the
    newest version changes nothing). The engine must have its history attached."""
    text = history.version(number).playbook
    engine.publish(lambda _text, knowledge: _checked(text, knowledge),
                   Change(who, "restore", restored_from=number))
    return history.versions(limit=1)[0]


def _checked(text: str, knowledge: KnowledgeBase) -> str:
    parse_playbook_yaml(text, knowledge.path or Path("playbook.yaml"), knowledge.slots)
    return text
