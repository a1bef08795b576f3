"""The store of asked questions and the agents' feedback on the answers: an embedded SQLite file
by default, or a PostgreSQL server shared by several replicas (app.store.database).

Queries can contain customer details, so logging can be switched off (`log_queries`) and old
rows are deleted after `retention_days` (0 keeps them). Each operation is one transaction;
on SQLite, WAL plus a busy timeout let several server processes share the file.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.errors import FeedbackNotSaved, InvalidFeedback, QueryNotFound
from app.records import Answer
from app.store import daily, database
from app.store.clock import parse_timestamp, timestamp, utc_now

log = logging.getLogger("playbook.feedback")

Channel = Literal["web", "slack", "cli"]
Rating = Literal["up", "down"]
ReviewStatus = Literal["open", "added", "dismissed"]

PURGE_EVERY_SECONDS = 6 * 3600


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


class FeedbackStore:
    def __init__(self, path: Path, *, log_queries: bool = True, retention_days: int = 30,
                 busy_timeout: float = 5.0, clock: Callable[[], datetime] = utc_now,
                 url: str | None = None) -> None:
        self.url = url or database.sqlite_url(path)
        self.log_queries = log_queries
        self.retention_days = retention_days
        self.clock = clock
        self.engine = database.create_engine(self.url, busy_timeout)
        self.path = Path(self.engine.url.database or path) if database.is_sqlite(
            self.engine) else path
        self._schema_ready = False
        self._anchor: Any = None
        self._token_key = b""
        self._last_purge = float("-inf")
        try:
            self.purge_expired()
        except FeedbackNotSaved as exc:
            log.warning("the feedback database is unusable for now: %s", exc)

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackStore:
        return cls(settings.db_path, log_queries=settings.log_queries,
                   retention_days=settings.retention_days, url=settings.database_url)

    @property
    def shared(self) -> bool:
        """Whether replicas on other hosts may share this database (not a local file)."""
        return not database.is_sqlite(self.engine)

    def describe(self) -> str:
        """Where the data is, for messages: the file, or the server without its password."""
        if database.is_sqlite(self.engine):
            return str(self.path)
        return self.engine.url.render_as_string(hide_password=True)

    # ------------------------------------------------------------ plumbing

    @contextmanager
    def connection(self, write: bool) -> Iterator[Connection]:
        """One transaction; any database failure becomes FeedbackNotSaved."""
        try:
            if not self._schema_ready:
                self._create_schema()
            with database.transaction(self.engine, write) as connection:
                yield connection
        except SQLAlchemyError as exc:
            if "no such table" in str(exc):  # the file was deleted or replaced: recreate it
                self.close()
                database.forget_migration(self.engine)
            raise FeedbackNotSaved(str(getattr(exc, "orig", None) or exc)) from exc
        except OSError as exc:
            raise FeedbackNotSaved(f"cannot open {self.describe()}: {exc.strerror}") from exc

    def _create_schema(self) -> None:
        if database.is_sqlite(self.engine):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        database.migrate(self.engine)
        with database.transaction(self.engine, write=True) as connection:
            # One random key per database, shared by every process that opens it.
            connection.execute(sa.text(
                "INSERT INTO store_keys (name, value) VALUES ('feedback_token', :value)"
                " ON CONFLICT (name) DO NOTHING"), {"value": secrets.token_hex(32)})
            key = connection.execute(sa.text(
                "SELECT value FROM store_keys WHERE name = 'feedback_token'")).scalar_one()
        self._token_key = bytes.fromhex(key)
        if database.is_sqlite(self.engine):
            # Kept open and idle: closing the last connection to a WAL database checkpoints
            # and deletes the WAL file, which would make every operation's close cost an fsync.
            self._anchor = self.engine.raw_connection()
        self._schema_ready = True

    def close(self) -> None:
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None
        if database.is_sqlite(self.engine):  # a server's pool is shared by the process
            self.engine.dispose()
        self._schema_ready = False

    def _maybe_purge(self, connection: Connection) -> None:
        if time.monotonic() - self._last_purge >= PURGE_EVERY_SECONDS:
            self._purge(connection)

    def _purge(self, connection: Connection) -> int:
        self._last_purge = time.monotonic()
        if self.retention_days <= 0:
            return 0
        cutoff = {"cutoff": timestamp(self.clock() - timedelta(days=self.retention_days))}
        connection.execute(sa.text("DELETE FROM feedback WHERE query_id IN "
                                   "(SELECT id FROM queries WHERE asked_at < :cutoff)"), cutoff)
        return connection.execute(sa.text("DELETE FROM queries WHERE asked_at < :cutoff"),
                                  cutoff).rowcount

    # ------------------------------------------------------------ writing

    def purge_expired(self) -> int:
        """Delete questions (and their feedback) older than the retention period."""
        with self.connection(write=True) as connection:
            purged = self._purge(connection)
        if purged and database.is_sqlite(self.engine):
            # Copy the overwritten pages into the file and empty the WAL.
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
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
            query_id: int = connection.execute(sa.text(
                "INSERT INTO queries (asked_at, question, entry_id, confidence, matched, channel,"
                " ambiguous) VALUES (:asked_at, :question, :entry_id, :confidence, :matched,"
                " :channel, :ambiguous) RETURNING id"),
                {"asked_at": asked_at, "question": answer.question, "entry_id": entry_id,
                 "confidence": confidence, "matched": int(answer.matched), "channel": channel,
                 "ambiguous": int(ambiguous)}).scalar_one()
            daily.count_asked(connection, asked_at, entry_id,
                              daily.outcome_of(answer.matched, ambiguous), channel, confidence)
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
            found = connection.execute(sa.text("SELECT 1 FROM queries WHERE id = :id FOR UPDATE"
                                               if self.shared else
                                               "SELECT 1 FROM queries WHERE id = :id"),
                                       {"id": query_id}).first()
            if found is None:
                raise QueryNotFound(query_id)
            if token is not None and not self.token_matches(query_id, token):
                raise QueryNotFound(query_id)
            old = connection.execute(sa.text("SELECT rating FROM feedback WHERE query_id = :id"),
                                     {"id": query_id}).scalar()
            daily.count_rating(connection, query_id, old, feedback.rating)
            connection.execute(sa.text(
                "INSERT INTO feedback (query_id, given_at, rating, picked_entry_id, none_of_these)"
                " VALUES (:id, :given_at, :rating, :picked, :none) ON CONFLICT (query_id) DO UPDATE"
                " SET given_at = excluded.given_at, rating = excluded.rating,"
                " picked_entry_id = excluded.picked_entry_id,"
                " none_of_these = excluded.none_of_these"),
                {"id": query_id, "given_at": timestamp(self.clock()), "rating": feedback.rating,
                 "picked": feedback.picked_entry_id, "none": int(feedback.none_of_these)})

    def set_review_status(self, query_ids: list[int], status: ReviewStatus,
                          added_to: str | None = None) -> None:
        if not query_ids:
            return
        with self.connection(write=True) as connection:
            connection.execute(
                sa.text("UPDATE queries SET review_status = :status, reviewed_at = :at,"
                        " added_to = :added_to WHERE id = :id"),
                [{"status": status, "at": timestamp(self.clock()), "added_to": added_to,
                  "id": qid} for qid in query_ids])

    def backup(self, destination: Path) -> int:
        """A consistent copy of the database while it is in use (SQLite's online backup API:
        a plain copy of a WAL database can miss committed rows or be torn). Returns the row
        count of the copy's query log, checked by reading it back. PostgreSQL is backed up
        with its own tools (README, Operations: pg_dump)."""
        if self.shared:
            raise FeedbackNotSaved("the store is a PostgreSQL database: back it up with "
                                   "pg_dump (README, Operations), not to a file here")
        if destination.exists():
            raise FeedbackNotSaved(f"{destination} already exists; back up to a new file")
        destination.parent.mkdir(parents=True, exist_ok=True)
        with self.connection(write=False):
            pass  # the schema exists before it is copied
        source = sqlite3.connect(self.path)
        copy = sqlite3.connect(destination)
        try:
            source.backup(copy)
            if copy.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                raise FeedbackNotSaved(f"the backup in {destination} failed its check")
            (rows,) = copy.execute("SELECT count(*) FROM queries").fetchone()
        except sqlite3.Error as exc:
            raise FeedbackNotSaved(str(exc)) from exc
        finally:
            copy.close()
            source.close()
        return int(rows)

    # ------------------------------------------------------------ reading

    def query(self, query_id: int) -> LoggedQuery:
        found = self._select("WHERE q.id = :id", {"id": query_id})
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
            return self._select("", {})
        return self._select("WHERE q.review_status = :status", {"status": status})

    def _select(self, where: str, params: dict[str, object]) -> list[LoggedQuery]:
        with self.connection(write=False) as connection:
            rows = connection.execute(sa.text(
                "SELECT q.id, q.asked_at, q.question, q.entry_id, q.confidence, q.matched,"
                " q.channel, q.review_status, q.added_to,"
                " f.rating, f.picked_entry_id, f.none_of_these"
                f" FROM queries q LEFT JOIN feedback f ON f.query_id = q.id {where}"
                " ORDER BY q.id"), params).all()
        return [
            LoggedQuery(
                id=row[0], asked_at=parse_timestamp(row[1]), question=row[2], entry_id=row[3],
                confidence=row[4], matched=bool(row[5]), channel=row[6], review_status=row[7],
                added_to=row[8],
                feedback=Feedback(row[9], row[10], bool(row[11])) if row[9] else None)
            for row in rows
        ]
