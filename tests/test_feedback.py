from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.errors import FeedbackNotSaved, InvalidFeedback, QueryNotFound
from app.records import Answer, Entry, Match
from app.store import database
from app.store import feedback as feedback_module
from app.store.feedback import Feedback, FeedbackStore, LoggedQuery

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
CANCEL = Entry(id="cancel-order", question="Customer wants to cancel an order",
               answer="send #SD - Too Late to Cancel", macro="#SD - Too Late to Cancel")


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def matched(question: str = "cancel my order please", confidence: float = 0.93) -> Answer:
    return Answer(question, True, Match(CANCEL, 0.9, confidence, question), False)


def unmatched(question: str = "what is the weather tomorrow") -> Answer:
    return Answer(question, False, None, False, (Match(CANCEL, 0.2, 0.31, question),))


def count(store: FeedbackStore, table: str) -> int:
    with store.connection(write=False) as connection:
        return int(connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock, database_url: str) -> FeedbackStore:
    """On both backends: the SQLite file and a PostgreSQL database."""
    return FeedbackStore(tmp_path / "db" / "feedback.sqlite3", clock=clock, url=database_url)


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: Clock) -> FeedbackStore:
    """For what only a file has: WAL, file modes, locks, the online backup."""
    return FeedbackStore(tmp_path / "db" / "feedback.sqlite3", clock=clock)


def test_logged_questions_are_stored_with_time_entry_confidence_and_channel(
        store: FeedbackStore) -> None:
    assert store.log_query(matched(), "web") == 1
    assert store.log_query(unmatched(), "slack") == 2

    assert store.queries() == [
        LoggedQuery(id=1, asked_at=T0, question="cancel my order please",
                    entry_id="cancel-order", confidence=0.93, matched=True, channel="web",
                    review_status="open", added_to=None, feedback=None),
        LoggedQuery(id=2, asked_at=T0, question="what is the weather tomorrow", entry_id=None,
                    confidence=0.31, matched=False, channel="slack", review_status="open",
                    added_to=None, feedback=None),
    ]


def test_the_database_is_in_wal_mode(sqlite_store: FeedbackStore) -> None:
    sqlite_store.log_query(matched(), "cli")
    with sqlite3.connect(sqlite_store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_feedback_is_attached_to_a_question_and_the_latest_verdict_wins(
        store: FeedbackStore) -> None:
    query_id = store.log_query(matched(), "web")
    assert query_id == 1
    store.record_feedback(query_id, Feedback("down"))
    store.record_feedback(query_id, Feedback("down", picked_entry_id="change-address"))

    assert store.query(query_id).feedback == Feedback("down", "change-address", False)
    assert count(store, "feedback") == 1


def test_none_of_these_is_stored(store: FeedbackStore) -> None:
    query_id = store.log_query(unmatched(), "web")
    assert query_id == 1
    store.record_feedback(query_id, Feedback("down", none_of_these=True))
    assert store.query(query_id).feedback == Feedback("down", None, True)


def test_feedback_on_an_unknown_question_is_refused(store: FeedbackStore) -> None:
    with pytest.raises(QueryNotFound) as caught:
        store.record_feedback(42, Feedback("up"))
    assert str(caught.value) == ("no logged question with id 42 "
                                 "(query logging may be off, or the question has expired)")
    assert caught.value.http_status == 404


@pytest.mark.parametrize(("feedback", "message"), [
    (lambda: Feedback("up", picked_entry_id="cancel-order"),
     "only a thumbs-down can pick another entry"),
    (lambda: Feedback("up", none_of_these=True), "only a thumbs-down can pick another entry"),
    (lambda: Feedback("down", picked_entry_id="cancel-order", none_of_these=True),
     "pick an entry or 'none of these', not both"),
])
def test_contradictory_feedback_is_rejected(feedback: object, message: str) -> None:
    with pytest.raises(InvalidFeedback) as caught:
        feedback()  # type: ignore[operator]
    assert str(caught.value) == message


def test_with_query_logging_off_nothing_is_stored(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3", log_queries=False)
    assert store.log_query(matched(), "web") is None
    assert store.queries() == []


def test_twenty_threads_writing_at_once_lose_no_row(store: FeedbackStore) -> None:
    errors: list[BaseException] = []
    ids: list[int | None] = []
    ids_lock = threading.Lock()
    start = threading.Barrier(20)

    def writer(worker: int) -> None:
        start.wait()
        try:
            for n in range(25):
                query_id = store.log_query(matched(f"question {worker}-{n}"), "web")
                with ids_lock:
                    ids.append(query_id)
        except BaseException as exc:  # collected, re-checked below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(i for i in ids if i is not None) == list(range(1, 501))
    questions = {q.question for q in store.queries()}
    assert questions == {f"question {w}-{n}" for w in range(20) for n in range(25)}


def test_rows_older_than_the_retention_are_deleted_when_the_store_opens(
        tmp_path: Path, clock: Clock, database_url: str) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path, retention_days=30, clock=clock, url=database_url)
    old = store.log_query(matched("old question"), "web")
    assert old == 1
    store.record_feedback(old, Feedback("down", none_of_these=True))
    clock.now = T0 + timedelta(days=29)
    store.log_query(matched("recent question"), "web")

    clock.now = T0 + timedelta(days=30, seconds=1)
    reopened = FeedbackStore(path, retention_days=30, clock=clock, url=database_url)

    assert [q.question for q in reopened.queries()] == ["recent question"]
    assert count(reopened, "feedback") == 0


def test_a_long_running_store_purges_again_when_writing(
        tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = [1000.0]
    monkeypatch.setattr(feedback_module.time, "monotonic", lambda: ticks[0])
    store = FeedbackStore(tmp_path / "feedback.sqlite3", retention_days=1, clock=clock)
    store.log_query(matched("day one"), "web")

    clock.now = T0 + timedelta(days=2)
    store.log_query(matched("day three, same hour"), "web")
    assert [q.question for q in store.queries()] == ["day one", "day three, same hour"]

    ticks[0] += feedback_module.PURGE_EVERY_SECONDS
    store.log_query(matched("day three, later"), "web")
    assert [q.question for q in store.queries()] == ["day three, same hour", "day three, later"]


def test_retention_zero_keeps_everything(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "feedback.sqlite3"
    FeedbackStore(path, retention_days=0, clock=clock).log_query(matched(), "web")
    clock.now = T0 + timedelta(days=3650)
    assert len(FeedbackStore(path, retention_days=0, clock=clock).queries()) == 1


def test_a_locked_database_raises_feedback_not_saved(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3", busy_timeout=0.05)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(FeedbackNotSaved) as caught:
            store.log_query(matched(), "web")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert str(caught.value) == "feedback not saved: database is locked"
    assert caught.value.http_status == 503
    assert store.log_query(matched(), "web") == 1


def test_a_read_only_database_raises_feedback_not_saved(
        sqlite_store: FeedbackStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = sqlite_store
    query_id = store.log_query(matched(), "web")
    assert query_id == 1
    # Tests may run as root, which ignores file modes; open the file read-only instead.
    monkeypatch.setattr(store, "engine", database.create_engine(
        f"sqlite+pysqlite:///file:{store.path}?mode=ro&uri=true"))
    with pytest.raises(FeedbackNotSaved) as caught:
        store.record_feedback(query_id, Feedback("up"))
    assert str(caught.value) == "feedback not saved: attempt to write a readonly database"


def test_an_unreachable_database_does_not_stop_the_store_from_opening(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be", encoding="utf-8")
    store = FeedbackStore(blocker / "feedback.sqlite3")
    with pytest.raises(FeedbackNotSaved) as caught:
        store.log_query(matched(), "web")
    assert str(caught.value) == (
        f"feedback not saved: cannot open {blocker / 'feedback.sqlite3'}: File exists")


def test_feedback_tokens_are_shared_by_every_process_on_one_database_and_no_other(
        tmp_path: Path, store: FeedbackStore, clock: Clock) -> None:
    query_id = store.log_query(matched(), "web")
    assert query_id == 1
    token = store.feedback_token(1)
    other_worker = FeedbackStore(store.path, clock=clock, url=store.url)
    assert other_worker.feedback_token(1) == token
    assert other_worker.feedback_token(2) != token
    assert FeedbackStore(tmp_path / "other.sqlite3", clock=clock).feedback_token(1) != token
    with pytest.raises(QueryNotFound):
        other_worker.record_feedback(1, Feedback("up"), token=other_worker.feedback_token(2))
    other_worker.record_feedback(1, Feedback("up"), token=token)
    assert store.query(1).feedback == Feedback("up")
