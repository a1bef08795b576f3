"""The review queue: groups, clusters by meaning (fake embedder: texts sharing words are near),
the actions on one question and on a whole cluster, the API and the CLI."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli.main import main
from app.cli.workbench import who
from app.config import Settings
from app.engine.engine import Change, Engine, LoadReport
from app.errors import AlternateConflict, FeedbackNotSaved, QueryNotFound
from app.records import Answer, Entry, Match
from app.store import database
from app.store.feedback import Feedback, FeedbackStore
from app.store.review_batch import add_all_as_alternates, dismiss_all
from app.store.review_clusters import (
    SAME_MEANING,
    ClusteredGroup,
    ReviewCluster,
    cluster_items,
    encoder,
    review_clusters,
)
from app.store.review_queue import (
    ReviewGroup,
    ReviewItem,
    add_as_alternate,
    dismiss,
    review_groups,
)
from app.web.app import create_app
from tests.fakes import FakeEmbedder

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


# ------------------------------------------------------------------ clusters by meaning


def item(query_id: int, question: str, count: int = 1) -> ReviewItem:
    return ReviewItem(query_id=query_id, question=question, count=count, query_ids=(query_id,),
                      last_asked_at=T0 + timedelta(minutes=query_id), entry_id=None,
                      confidence=0.2, band="low", picked_entry_id=None, none_of_these=False)


def at(degrees: float) -> list[float]:
    return [float(np.cos(np.radians(degrees))), float(np.sin(np.radians(degrees)))]


def test_a_question_joins_the_first_cluster_whose_representative_is_near() -> None:
    a, b, c, d, e = (item(5, "a", 3), item(4, "b", 2), item(3, "c"), item(2, "d"), item(1, "e"))
    # cos 30 deg = 0.87 joins; cos 60 deg = 0.5 does not. c is near b (30 deg) but b is no
    # representative; d is near both a and c, and joins a, the first. Vectors need not be unit.
    vectors = np.array([at(0), at(30), at(60), at(-20), [0.0, -3.0]], dtype=np.float32)
    assert cluster_items([a, b, c, d, e], vectors, 0.8) == (
        ReviewCluster((a, b, d)), ReviewCluster((c,)), ReviewCluster((e,)))
    # Ranked by volume: e, asked 9 times, heads the list though it was last in.
    e9 = item(1, "e", 9)
    assert cluster_items([a, b, c, d, e9], vectors, 0.8) == (
        ReviewCluster((e9,)), ReviewCluster((a, b, d)), ReviewCluster((c,)))
    assert cluster_items([], np.zeros((0, 2), dtype=np.float32)) == ()


@pytest.fixture
def queue(store: FeedbackStore) -> FeedbackStore:
    """Questions chosen for the fake embedder's cosines: 0.91 for the two weather questions,
    0.89 for the jokes, 0.87 between "stop the order" and each of "stop the order now" and
    "please stop the order", but 0.75 between those two; 1.0 for the two cancels."""
    log = store.log_query
    log(unmatched("what is the weather tomorrow"), "web")                    # 1
    log(matched("stop the order now", 0.62), "web")                          # 2
    log(unmatched("tell me a joke", 0.12), "web")                            # 3
    log(matched("stop the order now", 0.60), "slack")                        # 4
    log(matched("stop the order", 0.55), "web")                              # 5
    log(unmatched("What is the weather tomorrow please", 0.30), "web")       # 6
    log(matched("please stop the order", 0.58), "web")                       # 7
    log(unmatched("tell me a funny joke", 0.2), "cli")                       # 8
    log(unmatched("reset my laptop password", 0.1), "web")                   # 9
    log(unmatched("tell me a joke", 0.15), "web")                            # 10
    store.record_feedback(log(matched("cancel my order please", 0.97), "web"),  # 11
                          Feedback("down", picked_entry_id="change-address"))
    store.record_feedback(log(matched("please cancel my order", 0.95), "web"),  # 12
                          Feedback("down", none_of_these=True))
    return store


def shape(groups: list[ClusteredGroup]) -> list[tuple[str, int, list[list[tuple[int, str, int]]]]]:
    return [(group.key, group.count,
             [[(m.query_id, m.question, m.count) for m in cluster.members]
              for cluster in group.clusters])
            for group in groups]


def test_the_queue_clusters_questions_that_mean_the_same(queue: FeedbackStore) -> None:
    fake = FakeEmbedder()
    groups = review_clusters(queue, ENTRIES, encoder(fake, {}))
    assert shape(groups) == [
        ("thumbs_down", 2, [[(12, "please cancel my order", 1), (11, "cancel my order please", 1)]]),
        ("no_match", 6, [
            [(10, "tell me a joke", 2), (8, "tell me a funny joke", 1)],
            [(6, "What is the weather tomorrow please", 1), (1, "what is the weather tomorrow", 1)],
            [(9, "reset my laptop password", 1)],
        ]),
        ("low_confidence", 4, [
            # "stop the order" joins the representative; "please stop the order" is as near to
            # it, but compared with the representative, it is not near enough.
            [(4, "stop the order now", 2), (5, "stop the order", 1)],
            [(7, "please stop the order", 1)],
        ]),
    ]
    # One batched encode of every open question, identical ones (case, spacing) once.
    assert fake.calls == [["please cancel my order", "cancel my order please", "tell me a joke",
                           "reset my laptop password", "tell me a funny joke",
                           "What is the weather tomorrow please", "what is the weather tomorrow",
                           "stop the order now", "please stop the order", "stop the order"]]
    # A cluster reads as its representative, with the volume, askings and verdict of them all
    # (an agent's pick wins over another's "none of these").
    assert groups[0].clusters[0].to_dict() == {
        "query_id": 12, "question": "please cancel my order", "count": 2, "query_ids": [11, 12],
        "last_asked_at": (T0 + timedelta(minutes=14)).isoformat().replace("+00:00", "Z"),
        "entry_id": "cancel-order", "confidence": 0.95, "band": "high",
        "picked_entry_id": "change-address", "none_of_these": False,
        "members": [groups[0].clusters[0].members[0].to_dict(),
                    groups[0].clusters[0].members[1].to_dict()]}
    assert groups[1].clusters[0].to_dict()["query_ids"] == [3, 8, 10]
    # At a threshold of 1, only identical texts would merge: every question its own cluster.
    assert [len(g.clusters) for g in review_clusters(queue, ENTRIES, encoder(fake, {}), 1.01)] \
        == [2, 5, 3]
    assert SAME_MEANING == 0.80


def test_questions_are_embedded_as_the_engine_embeds_them() -> None:
    fake = FakeEmbedder()
    vectors = encoder(fake, {"OOS": "out of stock"})(["item OOS", "in stock"])
    assert fake.calls == [["item OOS (out of stock)", "in stock"]]
    assert vectors.shape == (2, 64)


def test_dismissing_a_cluster_dismisses_every_asking_of_every_member(
        queue: FeedbackStore) -> None:
    assert dismiss_all(queue, [10, 8, 8]) == (3, 8, 10)
    assert [q.id for q in queue.queries(status="dismissed")] == [3, 8, 10]
    with pytest.raises(QueryNotFound):  # nothing changes when one is unknown
        dismiss_all(queue, [9, 99])
    assert queue.query(9).review_status == "open"


@pytest.fixture
def packages(store: FeedbackStore, tiny_engine: Engine) -> FeedbackStore:
    """A cluster (cosine 0.89) the tiny playbook does not answer; "where is my package" sits
    nearest the cancel card, "... now" nearest the shipping card."""
    for question in ("where is my package", "where is my package now", "where is my package"):
        store.log_query(tiny_engine.ask(question), "web")
    groups = review_clusters(store, tiny_engine.entries(), encoder(tiny_engine.embedder, {}))
    assert shape(groups)[1] == ("no_match", 3, [
        [(3, "where is my package", 2), (2, "where is my package now", 1)]])
    return store


def test_adding_a_cluster_is_checked_first_and_a_refusal_adds_none(
        packages: FeedbackStore, tiny_engine: Engine) -> None:
    before = tiny_engine.entry("shipping-sla").alternates
    with pytest.raises(AlternateConflict) as refused:
        add_all_as_alternates(packages, tiny_engine, [3, 2], "shipping-sla")
    assert str(refused.value) == (
        "nothing added: 'where is my package' sits closer to 'cancel-order' (0.25) than to "
        "'shipping-sla' (0.18). Leave those out, reword them, or add them anyway (force)")
    assert tiny_engine.entry("shipping-sla").alternates == before
    assert [q.review_status for q in packages.queries()] == ["open"] * 3
    with pytest.raises(AlternateConflict) as taken:  # even forced
        add_all_as_alternates(packages, tiny_engine, [
            packages.log_query(unmatched("cancel my order please"), "web"), 2],
            "shipping-sla", force=True)
    assert str(taken.value) == ("nothing added: 'cancel my order please' is already a phrasing "
                                "of 'cancel-order'. Leave those out or reword them")


def test_adding_a_cluster_teaches_the_entry_every_member(
        packages: FeedbackStore, tiny_engine: Engine) -> None:
    outcome = add_all_as_alternates(packages, tiny_engine, [3, 2, 1], "shipping-sla", force=True,
                                    who="alice")
    assert (outcome.entry_id, outcome.query_ids, outcome.resolved) == (
        "shipping-sla", (3, 2), (1, 2, 3))
    assert [(a.phrasing, a.resolved) for a in outcome.added] == [
        ("where is my package", (1, 3)), ("where is my package now", (2,))]
    assert (outcome.report.action, outcome.report.vectors) == ("built", 11)
    assert tiny_engine.entry("shipping-sla").alternates[-2:] == (
        "where is my package", "where is my package now")
    assert [(q.review_status, q.added_to) for q in packages.queries()] == [
        ("added", "shipping-sla")] * 3
    assert tiny_engine.ask("where is my package").best.entry.id == "shipping-sla"  # type: ignore[union-attr]


def test_a_cluster_is_one_write_one_rebuild_and_one_change(
        packages: FeedbackStore, tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    changes: list[Change] = []
    publish = tiny_engine.publish

    def recorded(edit: Any, change: Change, base_hash: str | None = None) -> LoadReport:
        changes.append(change)
        return publish(edit, change, base_hash)

    monkeypatch.setattr(tiny_engine, "publish", recorded)
    add_all_as_alternates(packages, tiny_engine, [3, 2], "cancel-order", force=True, who="bob")
    assert changes == [Change("bob", "review-add")]


def test_a_failed_playbook_write_puts_the_cluster_back_in_the_queue(
        packages: FeedbackStore, tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(*args: Any, **kwargs: Any) -> LoadReport:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tiny_engine, "publish", full_disk)
    with pytest.raises(OSError):
        add_all_as_alternates(packages, tiny_engine, [3, 2], "shipping-sla", force=True)
    assert [(q.review_status, q.added_to) for q in packages.queries()] == [("open", None)] * 3


def test_an_entry_without_a_list_of_alternates_gets_one(
        packages: FeedbackStore, tiny_engine: Engine) -> None:
    playbook = tiny_engine.settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace(
        "  alternates:\n  - how long does shipping take\n  - delivery time for most orders\n",
        "  alternates: []\n"), encoding="utf-8")
    tiny_engine.load()
    add_all_as_alternates(packages, tiny_engine, [3, 2], "shipping-sla", force=True)
    assert tiny_engine.entry("shipping-sla").alternates == (
        "where is my package", "where is my package now")
    assert "  - where is my package now\n" in playbook.read_text(encoding="utf-8")


# ------------------------------------------------------------------ API

TOKEN = "s3cret-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tiny_settings: Settings, tiny_engine: Engine) -> TestClient:
    return TestClient(create_app(tiny_settings.model_copy(update={"admin_token": TOKEN}),
                                 tiny_engine))


def app_store(client: TestClient) -> FeedbackStore:
    store: FeedbackStore = client.app.state.feedback_store  # type: ignore[attr-defined]
    return store


def without_times(body: Any) -> Any:
    """The body with every last_asked_at checked for its form and removed (real clock)."""
    if isinstance(body, dict):
        stamp = body.pop("last_asked_at", None)
        assert stamp is None or re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
        return {key: without_times(value) for key, value in body.items()}
    if isinstance(body, list):
        return [without_times(value) for value in body]
    return body


def test_the_api_serves_the_queue_clustered(client: TestClient, tiny_engine: Engine) -> None:
    store = app_store(client)
    for question in ("where is my package", "where is my package now", "where is my package"):
        store.log_query(tiny_engine.ask(question), "web")
    store.record_feedback(store.log_query(tiny_engine.ask("please cancel my order"), "web"),
                          Feedback("down", picked_entry_id="change-address"))
    response = client.get("/api/review/clusters", headers=ADMIN)
    assert response.status_code == 200
    package = {"entry_id": None, "entry_question": None, "band": "low", "picked_entry_id": None,
               "picked_question": None, "none_of_these": False}
    cancel = {"query_id": 4, "question": "please cancel my order", "count": 1, "query_ids": [4],
              "entry_id": "cancel-order", "entry_question": "Customer wants to cancel an order",
              "confidence": 1.0, "band": "high", "picked_entry_id": "change-address",
              "picked_question": "Customer wants to change the shipping address",
              "none_of_these": False}
    assert without_times(response.json()) == {"total": 4, "threshold": 0.8, "groups": [
        {"key": "thumbs_down", "title": "Thumbs down", "count": 1, "clusters": [
            {**cancel, "members": [cancel], "now_entry_id": "cancel-order",
             "now_question": "Customer wants to cancel an order", "now_confidence": 1.0}]},
        {"key": "no_match", "title": "No confident match", "count": 3, "clusters": [
            {"query_id": 3, "question": "where is my package", "count": 3,
             "query_ids": [1, 2, 3], **package, "confidence": 0.0137,
             "members": [
                 {"query_id": 3, "question": "where is my package", "count": 2,
                  "query_ids": [1, 3], **package, "confidence": 0.0137},
                 {"query_id": 2, "question": "where is my package now", "count": 1,
                  "query_ids": [2], **package, "confidence": 0.0618}],
             "now_entry_id": None, "now_question": None, "now_confidence": 0.0137}]},
        {"key": "low_confidence", "title": "Low confidence", "count": 0, "clusters": []},
    ]}
    # The per-question listing is unchanged.
    flat = client.get("/api/review", headers=ADMIN).json()
    assert [[i["question"] for i in g["items"]] for g in flat["groups"]] == [
        ["please cancel my order"], ["where is my package", "where is my package now"], []]
    assert client.get("/api/review/clusters").status_code == 401


def test_the_api_adds_a_cluster_or_refuses_it_whole(client: TestClient,
                                                    tiny_engine: Engine) -> None:
    store = app_store(client)
    for question in ("where is my package", "where is my package now", "where is my package"):
        store.log_query(tiny_engine.ask(question), "web")
    refused = client.post("/api/review/add", headers=ADMIN,
                          json={"query_ids": [3, 2], "entry_id": "shipping-sla"})
    assert (refused.status_code, refused.json()) == (409, {"detail": (
        "nothing added: 'where is my package' sits closer to 'cancel-order' (0.25) than to "
        "'shipping-sla' (0.18). Leave those out, reword them, or add them anyway (force)")})
    assert client.get("/api/review", headers=ADMIN).json()["total"] == 3

    added = client.post("/api/review/add", headers=ADMIN,
                        json={"query_ids": [3, 2], "entry_id": "shipping-sla", "force": True})
    assert (added.status_code, added.json()) == (200, {
        "entry_id": "shipping-sla",
        "added": [{"query_id": 3, "phrasing": "where is my package", "resolved": [1, 3]},
                  {"query_id": 2, "phrasing": "where is my package now", "resolved": [2]}],
        "resolved": [1, 2, 3], "index": {"action": "built", "entries": 3, "vectors": 11}})
    assert client.get("/api/review/clusters", headers=ADMIN).json()["total"] == 0
    again = client.post("/api/chat/ask", json={"question": "where is my package"}).json()
    assert (again["matched"], again["entry_id"]) == (True, "shipping-sla")


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"query_ids": [1], "entry_id": "nope"}, 404, "no entry with id 'nope'"),
    ({"query_ids": [1, 99], "entry_id": "shipping-sla"}, 404, None),
    ({"query_ids": [], "entry_id": "shipping-sla"}, 422, None),
    ({"query_ids": ["1"], "entry_id": "shipping-sla"}, 422, None),
    ({"query_ids": [0], "entry_id": "shipping-sla"}, 422, None),
    ({"query_ids": [1], "entry_id": "shipping-sla", "forse": True}, 422, None),
])
def test_a_bad_cluster_add_changes_nothing(client: TestClient, tiny_engine: Engine,
                                           body: dict[str, Any], status: int,
                                           detail: str | None) -> None:
    app_store(client).log_query(tiny_engine.ask("where is my package"), "web")
    response = client.post("/api/review/add", headers=ADMIN, json=body)
    assert response.status_code == status
    if detail is not None:
        assert response.json() == {"detail": detail}
    assert app_store(client).query(1).review_status == "open"
    assert "where is my package" not in tiny_engine.entry("shipping-sla").alternates


def test_the_api_dismisses_a_cluster(client: TestClient, tiny_engine: Engine) -> None:
    store = app_store(client)
    for question in ("tell me a joke", "tell me a funny joke", "Tell me a joke", "track my package"):
        store.log_query(tiny_engine.ask(question), "web")
    response = client.post("/api/review/dismiss", headers=ADMIN, json={"query_ids": [3, 2]})
    assert (response.status_code, response.json()) == (200, {"resolved": [1, 2, 3]})
    left = client.get("/api/review/clusters", headers=ADMIN).json()["groups"][1]["clusters"]
    assert [c["question"] for c in left] == ["track my package"]
    assert client.post("/api/review/dismiss", headers=ADMIN,
                       json={"query_ids": [4, 9]}).status_code == 404
    assert store.query(4).review_status == "open"


def test_the_api_marks_a_cluster_out_of_scope_and_it_is_refused_from_then_on(
        client: TestClient, tiny_engine: Engine) -> None:
    store = app_store(client)
    for question in ("gift wrap this order", "is there a student discount",
                     "gift wrap this order", "cancel my order please"):
        store.log_query(tiny_engine.ask(question), "web")
    before = client.post("/api/ask", json={"question": "gift wrap this order"}).json()
    assert (before["entry_id"], before["out_of_scope"]) == ("cancel-order", None)
    refused = client.post("/api/review/out-of-scope", headers=ADMIN,
                          json={"query_ids": [4, 2]})
    assert (refused.status_code, refused.json()) == (409, {"detail": (
        "nothing marked out of scope: 'cancel my order please' is a phrasing of "
        "'cancel-order'")})
    close = client.post("/api/review/out-of-scope", headers=ADMIN, json={"query_ids": [3, 2]})
    assert (close.status_code, close.json()) == (409, {"detail": (
        "nothing marked out of scope: 'gift wrap this order' sits close to 'cancel-order' "
        "(0.50). As out of scope it would refuse questions meant for that card; if the card "
        "does not apply to it (another vendor, another time), its conditions refuse it already. "
        "Leave it out, or mark it anyway (force)")})
    assert [store.query(i).review_status for i in (1, 2, 3, 4)] == ["open"] * 4

    marked = client.post("/api/review/out-of-scope", headers=ADMIN,
                         json={"query_ids": [3, 2], "force": True})
    assert (marked.status_code, marked.json()) == (200, {
        "lines": ["gift wrap this order", "is there a student discount"], "resolved": [1, 2, 3],
        "index": {"action": "built", "entries": 3, "vectors": 9}})
    oos = tiny_engine.settings.knowledge_dir / "out_of_scope.txt"
    assert oos.read_text(encoding="utf-8").endswith(
        "reset my laptop password\ngift wrap this order\nis there a student discount\n")
    assert [store.query(i).review_status for i in (1, 2, 3, 4)] == [
        "dismissed", "dismissed", "dismissed", "open"]
    after = client.post("/api/ask", json={"question": "gift wrap this order"}).json()
    assert (after["matched"], after["out_of_scope"]) == (False, "gift wrap this order")
    assert client.post("/api/review/out-of-scope", json={"query_ids": [4]}).status_code == 401


@pytest.mark.parametrize(("body", "status"), [
    ({"query_ids": [1, 99]}, 404), ({"query_ids": []}, 422), ({"query_ids": ["1"]}, 422),
    ({"query_ids": [0]}, 422), ({"query_ids": [1], "forse": True}, 422),
])
def test_a_bad_out_of_scope_mark_changes_nothing(client: TestClient, tiny_engine: Engine,
                                                 body: dict[str, Any], status: int) -> None:
    app_store(client).log_query(tiny_engine.ask("is there a student discount"), "web")
    oos = tiny_engine.settings.knowledge_dir / "out_of_scope.txt"
    before = oos.read_text(encoding="utf-8")
    response = client.post("/api/review/out-of-scope", headers=ADMIN, json=body)
    assert response.status_code == status
    assert app_store(client).query(1).review_status == "open"
    assert oos.read_text(encoding="utf-8") == before


def test_a_new_entry_link_carries_the_representative() -> None:
    # What the page links to (review.js: "/workbench?from=" + encodeURIComponent(question)).
    assert "/workbench?from=" + quote("where's my #1 package & co?", safe="") == (
        "/workbench?from=where's%20my%20%231%20package%20%26%20co%3F".replace("'", "%27"))


# ------------------------------------------------------------------ CLI


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filled: FeedbackStore,
            tiny_engine: Engine) -> Engine:
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("PLAYBOOK_DB_PATH", str(filled.path))
    monkeypatch.setenv("PLAYBOOK_KNOWLEDGE_DIR", str(tiny_engine.settings.knowledge_dir))
    monkeypatch.setenv("PLAYBOOK_INDEX_DIR", str(tiny_engine.settings.index_dir))
    return tiny_engine


def test_cli_lists_the_groups_with_counts_by_text(cli_env: Engine) -> None:
    result = CliRunner().invoke(main, ["review", "--by-text"], obj=lambda settings: cli_env.embedder)
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
    history = json.loads(runner.invoke(main, ["history", "--json"],
                                       obj=lambda settings: cli_env.embedder).output)
    newest = history[0]
    assert (newest["action"], newest["who"].endswith(" (cli)"),
            [c["entry_id"] for c in newest["changes"]]) == ("review-add", True, ["change-address"])

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


@pytest.fixture
def cli_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, queue: FeedbackStore,
              tiny_engine: Engine) -> Engine:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAYBOOK_DB_PATH", str(queue.path))
    monkeypatch.setenv("PLAYBOOK_KNOWLEDGE_DIR", str(tiny_engine.settings.knowledge_dir))
    monkeypatch.setenv("PLAYBOOK_INDEX_DIR", str(tiny_engine.settings.index_dir))
    return tiny_engine


def test_cli_lists_the_clusters_with_what_the_playbook_answers_now(cli_queue: Engine) -> None:
    result = CliRunner().invoke(main, ["review"], obj=lambda settings: cli_queue.embedder)
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Thumbs down (2)\n"
        "  #12  please cancel my order  x2  [answered cancel-order 95% (high), agent picked "
        "change-address; now cancel-order 100%]\n"
        "      #12  please cancel my order  x1\n"
        "      #11  cancel my order please  x1\n"
        "No confident match (6)\n"
        "  #10  tell me a joke  x3  [no match, best guess 15%; now no match]\n"
        "      #10  tell me a joke  x2\n"
        "      #8  tell me a funny joke  x1\n"
        "  #6  What is the weather tomorrow please  x2  [no match, best guess 30%; now no match]\n"
        "      #6  What is the weather tomorrow please  x1\n"
        "      #1  what is the weather tomorrow  x1\n"
        "  #9  reset my laptop password  x1  [no match, best guess 10%; now no match]\n"
        "Low confidence (4)\n"
        "  #4  stop the order now  x3  [answered cancel-order 60% (medium); now cancel-order 100%]\n"
        "      #4  stop the order now  x2\n"
        "      #5  stop the order  x1\n"
        "  #7  please stop the order  x1  [answered cancel-order 58% (medium); "
        "now cancel-order 100%]\n"
    )
    as_json = CliRunner().invoke(main, ["review", "--json"], obj=lambda settings: cli_queue.embedder)
    body = json.loads(as_json.output)
    assert body["threshold"] == 0.8
    assert [(g["key"], g["count"], [(c["query_id"], c["count"], [m["query_id"] for m in c["members"]],
                                     c["now_entry_id"]) for c in g["clusters"]])
            for g in body["groups"]] == [
        ("thumbs_down", 2, [(12, 2, [12, 11], "cancel-order")]),
        ("no_match", 6, [(10, 3, [10, 8], None), (6, 2, [6, 1], None), (9, 1, [9], None)]),
        ("low_confidence", 4, [(4, 3, [4, 5], "cancel-order"), (7, 1, [7], "cancel-order")]),
    ]


def test_cli_adds_and_dismisses_a_cluster(cli_queue: Engine) -> None:
    runner = CliRunner()
    model = {"obj": lambda settings: cli_queue.embedder}
    refused = runner.invoke(main, ["review", "add-all", "shipping-sla", "10", "8"], **model)
    assert (refused.exit_code, refused.output) == (9, (
        "error: nothing added: 'tell me a joke' sits closer to 'cancel-order' (0.20) than to "
        "'shipping-sla' (0.00). Leave those out, reword them, or add them anyway (force)\n"))
    added = runner.invoke(main, ["review", "add-all", "cancel-order", "4", "5"], **model)
    assert (added.exit_code, added.output) == (0, (
        "added 2 phrasing(s) to cancel-order: 'stop the order now', 'stop the order'; index "
        "built: 3 entries, 11 vectors (resolved 3 question(s))\n"))
    dismissed = runner.invoke(main, ["review", "dismiss", "10", "8"], **model)
    assert (dismissed.exit_code, dismissed.output) == (0, "dismissed 3 question(s)\n")
    listing = runner.invoke(main, ["review", "--by-text"], **model)
    assert listing.output == (
        "Thumbs down (2)\n"
        "  #12  please cancel my order  x1  [answered cancel-order 95% (high), agent said none "
        "of these]\n"
        "  #11  cancel my order please  x1  [answered cancel-order 97% (high), agent picked "
        "change-address]\n"
        "No confident match (3)\n"
        "  #9  reset my laptop password  x1  [no match, best guess 10%]\n"
        "  #6  What is the weather tomorrow please  x1  [no match, best guess 30%]\n"
        "  #1  what is the weather tomorrow  x1  [no match, best guess 31%]\n"
        "Low confidence (1)\n"
        "  #7  please stop the order  x1  [answered cancel-order 58% (medium)]\n")


def test_cli_marks_questions_out_of_scope(cli_queue: Engine) -> None:
    runner = CliRunner()
    model = {"obj": lambda settings: cli_queue.embedder}
    marked = runner.invoke(main, ["review", "out-of-scope", "10", "8"], **model)
    assert (marked.exit_code, marked.output) == (0, (
        "marked 2 question(s) out of scope: 'tell me a joke', 'tell me a funny joke'; index "
        "built: 3 entries, 9 vectors (resolved 3 question(s))\n"))
    asked = runner.invoke(main, ["ask", "tell me a funny joke", "--json"], **model)
    assert json.loads(asked.output)["out_of_scope"] == "tell me a funny joke"
    history = runner.invoke(main, ["history"], **model)
    newest = history.output.splitlines()[0]
    assert newest.startswith("version 2  ")
    assert newest.endswith(f"  {who()}  review-out-of-scope: out_of_scope.txt: 1 added")


def test_queued_questions_are_encoded_once_across_looks() -> None:
    from tests.fakes import FakeEmbedder

    calls: list[list[str]] = []

    class Counting(FakeEmbedder):
        def encode(self, texts: list[str]) -> Any:
            calls.append(list(texts))
            return super().encode(texts)

    encode = encoder(Counting(), {"cx": "customer"})
    first = encode(["cx wants a refund", "where is my parcel"])
    again = encode(["where is my parcel", "cx wants a refund", "a new question"])
    assert calls == [["cx (customer) wants a refund", "where is my parcel"], ["a new question"]]
    assert np.array_equal(again[:2], first[::-1])
