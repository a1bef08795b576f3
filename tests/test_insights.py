"""Insights: figures from a store filled with known rows, asserted exactly; they outlive
retention; a query log from before the counts existed is counted when first opened."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import main
from app.config import Settings
from app.engine.engine import Engine
from app.records import Answer, Entry, Match
from app.store.feedback import Feedback, FeedbackStore
from app.store.insights import CardFigures, CardRef, DayFigures, Unanswered, insights
from tests.fakes import FakeEmbedder
from tests.test_feedback import T0, Clock

CANCEL = Entry(id="cancel-order", question="Customer wants to cancel an order", answer="A")
ADDRESS = Entry(id="change-address", question="Customer wants to change the address", answer="B")
SLA = Entry(id="shipping-sla", question="What is our SLA for shipping", answer="C")
ENTRIES = (CANCEL, ADDRESS, SLA)
DAY1, DAY2 = T0.date(), T0.date() + timedelta(days=1)


def answered(entry: Entry, confidence: float, ambiguous: bool = False,
             question: str = "q") -> Answer:
    return Answer(question, True, Match(entry, 0.9, confidence, question), ambiguous)


def refused(question: str, confidence: float) -> Answer:
    return Answer(question, False, None, False, (Match(SLA, 0.2, confidence, question),))


@pytest.fixture
def filled(tmp_path: Path, database_url: str) -> tuple[FeedbackStore, Clock]:
    clock = Clock()
    store = FeedbackStore(tmp_path / "feedback.sqlite3", clock=clock, url=database_url)
    store.log_query(answered(CANCEL, 0.9), "web")                     # 1
    store.log_query(answered(CANCEL, 0.8, ambiguous=True), "slack")   # 2
    store.log_query(refused("what is the weather", 0.3), "web")       # 3
    clock.now += timedelta(days=1)
    store.log_query(answered(ADDRESS, 0.95), "web")                   # 4
    store.log_query(refused("What is the weather?", 0.2), "web")      # 5
    store.record_feedback(1, Feedback("up"))
    store.record_feedback(2, Feedback("down"))
    store.record_feedback(2, Feedback("up"))                          # a verdict changed
    store.record_feedback(4, Feedback("down", picked_entry_id="cancel-order"))
    return store, clock


def test_the_week_in_figures(filled: tuple[FeedbackStore, Clock]) -> None:
    store, _ = filled
    figures = insights(store, ENTRIES, DAY1, DAY2 + timedelta(days=1))
    assert (figures.asked, figures.answered, figures.ambiguous, figures.refused) == (5, 2, 1, 2)
    assert (figures.up, figures.down) == (2, 1)
    # (0.9 + 0.8 + 0.95) / 3; spread 1.96 * sqrt(sum p(1 - p)) / 3
    assert (figures.estimated_accuracy, figures.accuracy_interval) == (0.8833, (0.5270, 1.0))
    assert figures.days == [
        DayFigures(DAY1.isoformat(), 3, 1, 1, 1),
        DayFigures(DAY2.isoformat(), 2, 1, 0, 1),
        DayFigures((DAY2 + timedelta(days=1)).isoformat(), 0, 0, 0, 0),
    ]
    assert figures.cards == [
        CardFigures("cancel-order", CANCEL.question, 2, 2, 0, 0.85, DAY1.isoformat()),
        CardFigures("change-address", ADDRESS.question, 1, 0, 1, 0.95, DAY2.isoformat()),
    ]
    assert figures.never_answered == [CardRef("shipping-sla", SLA.question)]
    assert figures.unanswered == [Unanswered("What is the weather?", 2, 5)]
    assert figures.to_dict()["shares"] == {"answered": 0.4, "ambiguous": 0.2, "refused": 0.4}
    assert figures.to_dict()["thumbs_up_rate"] == 0.6667


def test_a_period_counts_only_its_days(filled: tuple[FeedbackStore, Clock]) -> None:
    store, _ = filled
    figures = insights(store, ENTRIES, DAY2, DAY2)
    assert (figures.asked, figures.answered, figures.refused, figures.down) == (2, 1, 1, 1)
    assert [card.entry_id for card in figures.cards] == ["change-address"]
    assert [card.entry_id for card in figures.never_answered] == ["cancel-order",
                                                                  "shipping-sla"]


def test_retention_deletes_the_questions_but_keeps_the_counts(
        filled: tuple[FeedbackStore, Clock]) -> None:
    store, clock = filled
    before = insights(store, ENTRIES, DAY1, DAY2)
    clock.now += timedelta(days=31)
    assert store.purge_expired() == 5
    after = insights(store, ENTRIES, DAY1, DAY2)
    assert store.queries() == [] and after.unanswered == []
    assert (after.asked, after.up, after.down, after.cards, after.estimated_accuracy) == (
        before.asked, before.up, before.down, before.cards, before.estimated_accuracy)
    text = b"".join(p.read_bytes() for p in store.path.parent.glob("feedback.sqlite3*"))
    assert b"weather" not in text


def test_a_query_log_from_before_the_counts_is_counted_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:  # the schema of the previous release
        old.executescript("""
            CREATE TABLE queries (id INTEGER PRIMARY KEY AUTOINCREMENT, asked_at TEXT NOT NULL,
              question TEXT NOT NULL, entry_id TEXT, confidence REAL NOT NULL,
              matched INTEGER NOT NULL, channel TEXT NOT NULL,
              review_status TEXT NOT NULL DEFAULT 'open', reviewed_at TEXT, added_to TEXT);
            CREATE TABLE feedback (query_id INTEGER PRIMARY KEY, given_at TEXT NOT NULL,
              rating TEXT NOT NULL, picked_entry_id TEXT, none_of_these INTEGER NOT NULL DEFAULT 0);
        """)
        stamp = T0.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        old.executemany("INSERT INTO queries (asked_at, question, entry_id, confidence, matched,"
                        " channel) VALUES (?, ?, ?, ?, ?, ?)",
                        [(stamp, "cancel it", "cancel-order", 0.9, 1, "web"),
                         (stamp, "weather", None, 0.1, 0, "cli")])
        old.execute("INSERT INTO feedback VALUES (1, ?, 'down', NULL, 0)", (stamp,))
    store = FeedbackStore(path, clock=Clock())
    figures = insights(store, ENTRIES, DAY1, DAY1)
    assert (figures.asked, figures.answered, figures.refused, figures.down) == (2, 1, 1, 1)
    assert figures.cards == [CardFigures("cancel-order", CANCEL.question, 1, 0, 1, 0.9,
                                         DAY1.isoformat())]
    store.record_feedback(1, Feedback("up"))  # the migrated rows take new verdicts too
    assert (insights(store, ENTRIES, DAY1, DAY1).up, insights(store, ENTRIES, DAY1,
                                                              DAY1).down) == (1, 0)


def test_no_answers_no_estimate(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "empty.sqlite3", clock=Clock())
    figures = insights(store, ENTRIES, date(2025, 3, 1), date(2025, 3, 1))
    assert (figures.asked, figures.estimated_accuracy, figures.accuracy_interval) == (0, None, None)
    assert figures.to_dict()["thumbs_up_rate"] is None


def test_playbook_stats_prints_the_period(
        filled: tuple[FeedbackStore, Clock], tiny_settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = filled
    monkeypatch.setenv("PLAYBOOK_DB_PATH", str(store.path))
    monkeypatch.setenv("PLAYBOOK_DATABASE_URL", store.url)
    monkeypatch.setenv("PLAYBOOK_RETENTION_DAYS", "0")
    monkeypatch.setenv("PLAYBOOK_KNOWLEDGE_DIR", str(tiny_settings.knowledge_dir))
    args = ["stats", "--since", DAY1.isoformat(), "--until", DAY2.isoformat()]
    result = CliRunner().invoke(main, args, obj=lambda settings: FakeEmbedder())
    assert (result.exit_code, result.output) == (0, (
        f"{DAY1} … {DAY2}: 5 questions\n"
        "  answered 2 (40%), flagged ambiguous 1 (20%), no confident match 2 (40%)\n"
        "  agents: 2 👍, 1 👎\n"
        "  estimated accuracy 88% (95% 53%–100%; from the confidence, no labels)\n"
        "Cards (answered, 👎, mean confidence, last used):\n"
        f"  cancel-order: 2, 0, 85%, {DAY1}\n"
        f"  change-address: 1, 1, 95%, {DAY2}\n"
        "Never answered: shipping-sla\n"
        "Most asked without an answer:\n"
        "  #5  What is the weather?  x2\n"))
    as_json = CliRunner().invoke(main, [*args, "--json"], obj=lambda settings: FakeEmbedder())
    assert json.loads(as_json.output)["shares"] == {"answered": 0.4, "ambiguous": 0.2,
                                                   "refused": 0.4}
    backwards = CliRunner().invoke(main, ["stats", "--since", DAY2.isoformat(), "--until",
                                          DAY1.isoformat()])
    assert backwards.exit_code == 2


def test_the_insights_api_and_page(tiny_settings: Settings, tiny_engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from app.web.app import create_app

    settings = tiny_settings.model_copy(update={"admin_token": "t0ken"})
    client = TestClient(create_app(settings, tiny_engine))
    client.post("/api/chat/ask", json={"question": "cancel my order please"})
    client.post("/api/chat/ask", json={"question": "what is the weather tomorrow"})
    admin = {"Authorization": "Bearer t0ken"}
    today = datetime.now(UTC).date()

    body = client.get("/api/insights", headers=admin).json()

    assert (body["since"], body["until"]) == ((today - timedelta(days=6)).isoformat(),
                                              today.isoformat())
    assert (body["asked"], body["answered"], body["refused"]) == (2, 1, 1)
    assert [card["entry_id"] for card in body["cards"]] == ["cancel-order"]
    assert body["unanswered"] == [{"question": "what is the weather tomorrow", "count": 1,
                                   "query_id": 2}]
    assert len(body["days"]) == 7 and body["days"][-1]["asked"] == 2
    assert client.get("/api/insights").status_code == 401
    backwards = client.get(f"/api/insights?since={today}&until={today - timedelta(days=1)}",
                           headers=admin).json()
    assert (backwards["asked"], backwards["days"]) == (0, [])
    long = client.get("/api/insights?since=0370-01-27", headers=admin).json()
    assert (long["since"], len(long["days"])) == ((today - timedelta(days=365)).isoformat(), 366)
    early = client.get("/api/insights?until=0001-01-03", headers=admin).json()
    assert (early["since"], early["until"], early["asked"]) == ("0001-01-01", "0001-01-03", 0)
    for bad in ("6.5e-52", "20261201", "2026-02-30"):
        refused = client.get(f"/api/insights?until={bad}", headers=admin)
        assert refused.status_code == 422, bad
    page = client.get("/insights")
    assert page.status_code == 200 and '<script src="/static/insights.js" defer>' in page.text
    off = TestClient(create_app(tiny_settings, tiny_engine)).get("/insights")
    assert off.status_code == 503


def test_metrics_count_requests_outcomes_and_the_index(
        tiny_settings: Settings, tiny_engine: Engine) -> None:
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from app.web.app import create_app

    client = TestClient(create_app(tiny_settings, tiny_engine))
    for question in ("cancel my order please", "cancel my order please", "weather tomorrow"):
        client.post("/api/ask", json={"question": question})
    client.post("/api/ask", json={"question": ""})
    client.get("/no/such/page")
    response = client.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=1.0.0; charset=utf-8"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text)
               for s in family.samples}
    assert samples[("playbook_requests_total", (("method", "POST"), ("route", "/api/ask"),
                                                ("status", "200")))] == 3
    assert samples[("playbook_requests_total", (("method", "POST"), ("route", "/api/ask"),
                                                ("status", "422")))] == 1
    assert samples[("playbook_requests_total", (("method", "GET"), ("route", "unmatched"),
                                                ("status", "404")))] == 1
    assert samples[("playbook_answers_total", (("outcome", "answered"),))] == 2
    assert samples[("playbook_answers_total", (("outcome", "refused"),))] == 1
    assert samples[("playbook_request_seconds_count", (("route", "/api/ask"),))] == 4
    assert {name: samples[(name, ())] for name in (
        "playbook_index_entries", "playbook_index_vectors", "playbook_index_loads",
        "playbook_index_load_failures", "playbook_ready")} == {
        "playbook_index_entries": 3, "playbook_index_vectors": 9, "playbook_index_loads": 1,
        "playbook_index_load_failures": 0, "playbook_ready": 1}


def test_the_store_knows_its_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.store import database

    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [database.SCHEMA_REVISION]
