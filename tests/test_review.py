from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import main
from app.engine.engine import Engine
from app.errors import AlternateConflict, FeedbackNotSaved
from app.records import Answer, Entry, Match
from app.store import database
from app.store.feedback import Feedback, FeedbackStore
from app.store.review_queue import ReviewGroup, ReviewItem, add_as_alternate, dismiss, review_groups

# Recent, so the CLI's store (default 30-day retention) keeps these rows when it opens.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
CANCEL = Entry(id="cancel-order", question="Customer wants to cancel an order",
               answer="send #SD - Too Late to Cancel", macro="#SD - Too Late to Cancel")
ENTRIES = (CANCEL,)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def matched(question: str, confidence: float) -> Answer:
    return Answer(question, True, Match(CANCEL, 0.9, confidence, question), False)


def unmatched(question: str, confidence: float = 0.31) -> Answer:
    return Answer(question, False, None, False, (Match(CANCEL, 0.2, confidence, question),))


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "feedback.sqlite3", clock=Clock())


@pytest.fixture
def filled(store: FeedbackStore) -> FeedbackStore:
    store.log_query(matched("cancel my order please", 0.97), "web")           # 1: fine, no review
    store.log_query(unmatched("What is the weather tomorrow"), "web")         # 2
    store.log_query(matched("stop the order", 0.62), "slack")                 # 3: medium
    store.log_query(unmatched("what is the  weather tomorrow", 0.28), "web")  # 4: same as 2
    thumbs = store.log_query(matched("change the addr", 0.91), "web")         # 5: high but 👎
    assert thumbs == 5
    store.record_feedback(thumbs, Feedback("down", picked_entry_id="change-address"))
    store.log_query(unmatched("tell me a joke", 0.12), "cli")                 # 6
    return store


def test_the_queue_groups_and_counts_open_questions(filled: FeedbackStore) -> None:
    assert review_groups(filled, ENTRIES) == [
        ReviewGroup("thumbs_down", "Thumbs down", (
            ReviewItem(query_id=5, question="change the addr", count=1, query_ids=(5,),
                       last_asked_at=T0 + timedelta(minutes=6), entry_id="cancel-order",
                       confidence=0.91, band="high", picked_entry_id="change-address",
                       none_of_these=False),
        )),
        ReviewGroup("no_match", "No confident match", (
            ReviewItem(query_id=4, question="what is the  weather tomorrow", count=2,
                       query_ids=(2, 4), last_asked_at=T0 + timedelta(minutes=5),
                       entry_id=None, confidence=0.28, band="low", picked_entry_id=None,
                       none_of_these=False),
            ReviewItem(query_id=6, question="tell me a joke", count=1, query_ids=(6,),
                       last_asked_at=T0 + timedelta(minutes=8), entry_id=None, confidence=0.12,
                       band="low", picked_entry_id=None, none_of_these=False),
        )),
        ReviewGroup("low_confidence", "Low confidence", (
            ReviewItem(query_id=3, question="stop the order", count=1, query_ids=(3,),
                       last_asked_at=T0 + timedelta(minutes=4), entry_id="cancel-order",
                       confidence=0.62, band="medium", picked_entry_id=None,
                       none_of_these=False),
        )),
    ]
    assert [group.count for group in review_groups(filled, ENTRIES)] == [1, 3, 1]


def test_dismissing_resolves_every_asking_of_the_question(filled: FeedbackStore) -> None:
    assert dismiss(filled, 2) == (2, 4)
    assert [q.review_status for q in filled.queries()] == [
        "open", "dismissed", "open", "dismissed", "open", "open"]
    no_match = review_groups(filled, ENTRIES)[1]
    assert [item.question for item in no_match.items] == ["tell me a joke"]


def test_adding_an_alternate_teaches_the_entry_and_clears_the_queue(
        store: FeedbackStore, tiny_engine: Engine) -> None:
    before = tiny_engine.ask("shipping order")
    assert (before.matched, before.best) == (False, None)
    query_id = store.log_query(before, "web")
    assert query_id == 1

    # "shipping order" sits nearer the cancel card's texts; the reviewer adds it on purpose.
    outcome = add_as_alternate(store, tiny_engine, query_id, "shipping-sla", force=True)

    assert (outcome.entry_id, outcome.phrasing, outcome.resolved) == (
        "shipping-sla", "shipping order", (1,))
    assert (outcome.report.action, outcome.report.entries) == ("built", 3)
    assert tiny_engine.entry("shipping-sla").alternates == (
        "how long does shipping take", "delivery time for most orders", "shipping order")
    playbook = (tiny_engine.settings.knowledge_dir / "playbook.yaml").read_text(encoding="utf-8")
    assert "  - shipping order\n" in playbook
    after = tiny_engine.ask("shipping order")
    assert (after.matched, after.best.entry.id if after.best else None) == (True, "shipping-sla")
    assert store.query(1).review_status == "added"
    assert store.query(1).added_to == "shipping-sla"
    assert [group.count for group in review_groups(store, tiny_engine.entries())] == [0, 0, 0]


def test_a_database_that_refuses_the_write_leaves_the_playbook_untouched(
        store: FeedbackStore, tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    query_id = store.log_query(tiny_engine.ask("shipping order"), "web")
    assert query_id == 1
    playbook = tiny_engine.settings.knowledge_dir / "playbook.yaml"
    before = playbook.read_text(encoding="utf-8")
    monkeypatch.setattr(store, "engine", database.create_engine(
        f"sqlite+pysqlite:///file:{store.path}?mode=ro&uri=true"))
    with pytest.raises(FeedbackNotSaved, match="attempt to write a readonly database"):
        add_as_alternate(store, tiny_engine, 1, "shipping-sla", force=True)
    assert playbook.read_text(encoding="utf-8") == before
    assert "shipping order" not in tiny_engine.entry("shipping-sla").alternates


def test_a_refused_alternate_leaves_the_question_open(
        store: FeedbackStore, tiny_engine: Engine) -> None:
    store.log_query(tiny_engine.ask("shipping order"), "web")
    with pytest.raises(AlternateConflict):  # nearer the cancel card, and not forced
        add_as_alternate(store, tiny_engine, 1, "shipping-sla")
    assert (store.query(1).review_status, store.query(1).added_to) == ("open", None)


def test_the_queue_heals_an_add_interrupted_on_either_side(
        store: FeedbackStore, tiny_engine: Engine) -> None:
    # Crash after the playbook write: the question is a phrasing, the queue still says open.
    store.log_query(unmatched("How long does shipping take?"), "web")
    # Crash after the queue write: the queue says added, the playbook never got it.
    store.log_query(unmatched("tell me a joke"), "web")
    store.set_review_status([2], "added", added_to="shipping-sla")
    # A phrasing of the shipping card, but an agent's 👎 says the cancel card was right.
    store.log_query(matched("delivery time for most orders", 0.95), "web")
    store.record_feedback(3, Feedback("down", picked_entry_id="cancel-order"))

    groups = review_groups(store, tiny_engine.entries())

    assert [item.question for item in groups[0].items] == ["delivery time for most orders"]
    assert [item.question for item in groups[1].items] == ["tell me a joke"]
    assert [(q.review_status, q.added_to) for q in store.queries()] == [
        ("added", "shipping-sla"), ("open", None), ("open", None)]


# ------------------------------------------------------------------ CLI


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filled: FeedbackStore,
            tiny_engine: Engine) -> Engine:
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("PLAYBOOK_DB_PATH", str(filled.path))
    monkeypatch.setenv("PLAYBOOK_KNOWLEDGE_DIR", str(tiny_engine.settings.knowledge_dir))
    monkeypatch.setenv("PLAYBOOK_INDEX_DIR", str(tiny_engine.settings.index_dir))
    return tiny_engine


def test_cli_lists_the_groups_with_counts(cli_env: Engine) -> None:
    result = CliRunner().invoke(main, ["review"], obj=lambda settings: cli_env.embedder)
    assert result.exit_code == 0
    assert result.output == (
        "Thumbs down (1)\n"
        "  #5  change the addr  x1  [answered cancel-order 91% (high), "
        "agent picked change-address]\n"
        "No confident match (3)\n"
        "  #4  what is the  weather tomorrow  x2  [no match, best guess 28%]\n"
        "  #6  tell me a joke  x1  [no match, best guess 12%]\n"
        "Low confidence (1)\n"
        "  #3  stop the order  x1  [answered cancel-order 62% (medium)]\n"
    )


def test_cli_add_and_dismiss(cli_env: Engine) -> None:
    runner = CliRunner()
    added = runner.invoke(main, ["review", "add", "5", "change-address"],
                        obj=lambda settings: cli_env.embedder)
    assert added.exit_code == 0
    assert added.output == ("added 'change the addr' to change-address; index built: "
                            "3 entries, 10 vectors (resolved 1 question(s))\n")
    cli_env.load()  # the command ran its own engine over the same files
    assert cli_env.entry("change-address").alternates[-1] == "change the addr"

    dismissed = runner.invoke(main, ["review", "dismiss", "6"], obj=lambda settings: cli_env.embedder)
    assert (dismissed.exit_code, dismissed.output) == (0, "dismissed 1 question(s)\n")
    listing = runner.invoke(main, ["review"], obj=lambda settings: cli_env.embedder)
    assert listing.output.splitlines()[0::2] == [
        "Thumbs down (0)", "No confident match (2)", "Low confidence (1)"]


def test_cli_reports_an_unknown_question(cli_env: Engine) -> None:
    result = CliRunner().invoke(main, ["review", "dismiss", "99"], obj=lambda settings: cli_env.embedder)
    assert result.exit_code == 4
    assert result.output == ("error: no logged question with id 99 "
                             "(query logging may be off, or the question has expired)\n")
