"""The SQLite store of asked questions and the agents' feedback on the answers.

Queries can contain customer details, so logging can be switched off (`log_queries`) and old
rows are deleted after `retention_days` (0 keeps them). Every operation opens its own
connection; writes inside one process are serialised by a lock, and WAL plus a busy timeout
let several server processes share the file.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from app.config import Settings
from app.errors import FeedbackNotSaved, InvalidFeedback, QueryNotFound
from app.records import Answer
from app.store import daily, history
from app.store.clock import parse_timestamp, timestamp, utc_now

log = logging.getLogger("playbook.feedback")

Channel = Literal["web", "slack", "cli"]
Rating = Literal["up", "down"]
ReviewStatus = Literal["open", "added", "dismissed"]

PURGE_EVERY_SECONDS = 6 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    asked_at      TEXT    NOT NULL,
    question      TEXT    NOT NULL,
    entry_id      TEXT,
    confidence    REAL    NOT NULL,
    matched       INTEGER NOT NULL CHECK (matched IN (0, 1)),
    channel       TEXT    NOT NULL CHECK (channel IN ('web', 'slack', 'cli')),
    review_status TEXT    NOT NULL DEFAULT 'open'
                          CHECK (review_status IN ('open', 'added', 'dismissed')),
    reviewed_at   TEXT,
    added_to      TEXT,
    ambiguous     INTEGER NOT NULL DEFAULT 0 CHECK (ambiguous IN (0, 1))
);
CREATE INDEX IF NOT EXISTS queries_asked_at ON queries (asked_at);
CREATE TABLE IF NOT EXISTS feedback (
    query_id        INTEGER PRIMARY KEY REFERENCES queries (id) ON DELETE CASCADE,
    given_at        TEXT    NOT NULL,
    rating          TEXT    NOT NULL CHECK (rating IN ('up', 'down')),
    picked_entry_id TEXT,
    none_of_these   INTEGER NOT NULL DEFAULT 0 CHECK (none_of_these IN (0, 1))
);
CREATE TABLE IF NOT EXISTS store_keys (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
""" + daily.SCHEMA + history.SCHEMA
SCHEMA_VERSION = 1  # 1: queries.ambiguous and the daily counts


@dataclass(frozen=True)
class Feedback:
    rating: Rating
    picked_entry_id: str | None = None
    none_of_these: bool = False

    def __post_init__(self) -> None:
        if self.rating == "up" and (self.picked_entry_id or self.none_of_these):
            raise InvalidFeedback("only a thumbs-down can pick another entry")
        if self.picked_entry_id and self.none_of_these:
            raise InvalidFeedback("pick an entry or 'none of these', not both")


@dataclass(frozen=True)
class LoggedQuery:
    id: int
    asked_at: datetime
    question: str
    entry_id: str | None
    confidence: float
    matched: bool
    channel: Channel
    review_status: ReviewStatus
    added_to: str | None
    feedback: Feedback | None


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring a database written by an older version up to SCHEMA_VERSION (once, even with
    several processes starting at the same moment)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version < 1:
            columns = {row[1] for row in connection.execute("PRAGMA table_info(queries)")}
            if "ambiguous" not in columns:
                connection.execute("ALTER TABLE queries ADD COLUMN ambiguous INTEGER NOT NULL"
                                   " DEFAULT 0 CHECK (ambiguous IN (0, 1))")
            daily.backfill(connection)
        if version < SCHEMA_VERSION:
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


class FeedbackStore:
    def __init__(self, path: Path, *, log_queries: bool = True, retention_days: int = 30,
                 busy_timeout: float = 5.0, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = path
        self.log_queries = log_queries
        self.retention_days = retention_days
        self.busy_timeout = busy_timeout
        self.clock = clock
        self._write_lock = threading.Lock()
        self._schema_ready = False
        self._anchor: sqlite3.Connection | None = None
        self._token_key = b""
        self._last_purge = float("-inf")
        try:
            self.purge_expired()
        except FeedbackNotSaved as exc:
            log.warning("the feedback database is unusable for now: %s", exc)

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackStore:
        return cls(settings.db_path, log_queries=settings.log_queries,
                   retention_days=settings.retention_days)

    # ------------------------------------------------------------ plumbing

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)

    @contextmanager
    def connection(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One connection per operation; any SQLite failure becomes FeedbackNotSaved."""
        lock = self._write_lock if write else None
        try:
            if lock is not None:
                lock.acquire()
            try:
                if not self._schema_ready:
                    self._create_schema()
                connection = self._connect()
                try:
                    connection.execute("PRAGMA foreign_keys = ON")
                    # Deleted rows (purged customer text) are overwritten, not just unlinked.
                    connection.execute("PRAGMA secure_delete = ON")
                    # WAL + NORMAL: durable across crashes of the app, one fsync per checkpoint.
                    connection.execute("PRAGMA synchronous = NORMAL")
                    if write:
                        connection.execute("BEGIN IMMEDIATE")
                    yield connection
                    if write:
                        connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
                finally:
                    connection.close()
            finally:
                if lock is not None:
                    lock.release()
        except sqlite3.Error as exc:
            if "no such table" in str(exc):  # the file was deleted or replaced: recreate it
                self._schema_ready = False
            raise FeedbackNotSaved(str(exc)) from exc
        except OSError as exc:
            raise FeedbackNotSaved(f"cannot open {self.path}: {exc.strerror}") from exc

    def _create_schema(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=self.busy_timeout,
                                     isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.executescript(_SCHEMA)
            _migrate(connection)
            # One random key per database, shared by every process that opens it.
            connection.execute("INSERT OR IGNORE INTO store_keys (name, value) VALUES (?, ?)",
                               ("feedback_token", secrets.token_hex(32)))
            (key,) = connection.execute(
                "SELECT value FROM store_keys WHERE name = 'feedback_token'").fetchone()
        except BaseException:
            connection.close()
            raise
        # Kept open and idle: closing the last connection to a WAL database checkpoints and
        # deletes the WAL file, which would make every per-operation close cost an fsync.
        self._anchor = connection
        self._token_key = bytes.fromhex(key)
        self._schema_ready = True

    def close(self) -> None:
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None
            self._schema_ready = False

    def _maybe_purge(self, connection: sqlite3.Connection) -> None:
        if time.monotonic() - self._last_purge >= PURGE_EVERY_SECONDS:
            self._purge(connection)

    def _purge(self, connection: sqlite3.Connection) -> int:
        self._last_purge = time.monotonic()
        if self.retention_days <= 0:
            return 0
        cutoff = timestamp(self.clock() - timedelta(days=self.retention_days))
        connection.execute("DELETE FROM feedback WHERE query_id IN "
                           "(SELECT id FROM queries WHERE asked_at < ?)", (cutoff,))
        return connection.execute("DELETE FROM queries WHERE asked_at < ?", (cutoff,)).rowcount

    # ------------------------------------------------------------ writing

    def purge_expired(self) -> int:
        """Delete questions (and their feedback) older than the retention period."""
        with self.connection(write=True) as connection:
            purged = self._purge(connection)
        if purged:  # copy the overwritten pages into the file and empty the WAL
            with self.connection(write=False) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return purged

    def log_query(self, answer: Answer, channel: Channel) -> int | None:
        """Store an asked question and what it was answered with; None when logging is off."""
        if not self.log_queries:
            return None
        entry_id = answer.best.entry.id if answer.best is not None else None
        asked_at, confidence = timestamp(self.clock()), round(answer.confidence, 4)
        ambiguous = answer.matched and answer.ambiguous
        with self.connection(write=True) as connection:
            self._maybe_purge(connection)
            cursor = connection.execute(
                "INSERT INTO queries (asked_at, question, entry_id, confidence, matched, channel,"
                " ambiguous) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (asked_at, answer.question, entry_id, confidence, int(answer.matched), channel,
                 int(ambiguous)))
            daily.count_asked(connection, asked_at, entry_id,
                              daily.outcome_of(answer.matched, ambiguous), channel, confidence)
            query_id = cursor.lastrowid
        assert query_id is not None
        return query_id

    def feedback_token(self, query_id: int) -> str:
        """The proof that a caller was given this answer: sent with the answer, required with
        feedback from the open network, so nobody can overwrite a verdict by guessing ids."""
        if not self._schema_ready:
            with self.connection(write=False):
                pass
        return hmac.new(self._token_key, str(query_id).encode(), hashlib.sha256).hexdigest()[:32]

    def token_matches(self, query_id: int, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.feedback_token(query_id).encode())

    def record_feedback(self, query_id: int, feedback: Feedback, *,
                        token: str | None = None) -> None:
        """Store (or replace) the agent's verdict on one answer. With a `token`, only when it
        is that answer's feedback token; a wrong token reads exactly like an unknown id."""
        with self.connection(write=True) as connection:
            if connection.execute("SELECT 1 FROM queries WHERE id = ?",
                                  (query_id,)).fetchone() is None:
                raise QueryNotFound(query_id)
            if token is not None and not self.token_matches(query_id, token):
                raise QueryNotFound(query_id)
            old = connection.execute("SELECT rating FROM feedback WHERE query_id = ?",
                                     (query_id,)).fetchone()
            daily.count_rating(connection, query_id, old[0] if old else None, feedback.rating)
            connection.execute(
                "INSERT INTO feedback (query_id, given_at, rating, picked_entry_id, none_of_these)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (query_id) DO UPDATE SET"
                " given_at = excluded.given_at, rating = excluded.rating,"
                " picked_entry_id = excluded.picked_entry_id,"
                " none_of_these = excluded.none_of_these",
                (query_id, timestamp(self.clock()), feedback.rating, feedback.picked_entry_id,
                 int(feedback.none_of_these)))

    def set_review_status(self, query_ids: list[int], status: ReviewStatus,
                          added_to: str | None = None) -> None:
        with self.connection(write=True) as connection:
            connection.executemany(
                "UPDATE queries SET review_status = ?, reviewed_at = ?, added_to = ? WHERE id = ?",
                [(status, timestamp(self.clock()), added_to, qid) for qid in query_ids])

    def backup(self, destination: Path) -> int:
        """A consistent copy of the database while it is in use (SQLite's online backup API:
        a plain copy of a WAL database can miss committed rows or be torn). Returns the row
        count of the copy's query log, checked by reading it back."""
        if destination.exists():
            raise FeedbackNotSaved(f"{destination} already exists; back up to a new file")
        destination.parent.mkdir(parents=True, exist_ok=True)
        with self.connection(write=False) as source:
            copy = sqlite3.connect(destination)
            try:
                source.backup(copy)
                if copy.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                    raise FeedbackNotSaved(f"the backup in {destination} failed its check")
                (rows,) = copy.execute("SELECT count(*) FROM queries").fetchone()
            finally:
                copy.close()
        return int(rows)

    # ------------------------------------------------------------ reading

    def query(self, query_id: int) -> LoggedQuery:
        found = self._select("WHERE q.id = ?", (query_id,))
        if not found:
            raise QueryNotFound(query_id)
        return found[0]

    def daily_counts(self, since: str, until: str) -> list[daily.DailyCount]:
        """The daily counts for the days `since` … `until` (YYYY-MM-DD, UTC, both included)."""
        with self.connection(write=False) as connection:
            return daily.read(connection, since, until)

    def queries(self, status: ReviewStatus | None = None) -> list[LoggedQuery]:
        """Logged questions, oldest first (optionally only those with one review status)."""
        if status is None:
            return self._select("", ())
        return self._select("WHERE q.review_status = ?", (status,))

    def _select(self, where: str, params: tuple[object, ...]) -> list[LoggedQuery]:
        with self.connection(write=False) as connection:
            rows = connection.execute(
                "SELECT q.id, q.asked_at, q.question, q.entry_id, q.confidence, q.matched,"
                " q.channel, q.review_status, q.added_to,"
                " f.rating, f.picked_entry_id, f.none_of_these"
                f" FROM queries q LEFT JOIN feedback f ON f.query_id = q.id {where}"
                " ORDER BY q.id", params).fetchall()
        return [
            LoggedQuery(
                id=row[0], asked_at=parse_timestamp(row[1]), question=row[2], entry_id=row[3],
                confidence=row[4], matched=bool(row[5]), channel=row[6], review_status=row[7],
                added_to=row[8],
                feedback=Feedback(row[9], row[10], bool(row[11])) if row[9] else None)
            for row in rows
        ]
