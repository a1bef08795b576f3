from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.engine import Engine
from app.store import database
from app.store.feedback import Feedback, FeedbackStore
from app.web.app import create_app
from app.web.middleware.security_headers import CONTENT_SECURITY_POLICY
from tests.fakes import FakeEmbedder

TOKEN = "s3cret-token"
SECURITY = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
CANCEL_ANSWER = {
    "question": "cancel my order please",
    "matched": True,
    "answer": "send #SD - Too Late to Cancel",
    "macro": "#SD - Too Late to Cancel",
    "source_question": "Customer wants to cancel an order",
    "entry_id": "cancel-order",
    "tags": ["cancellation"],
    "confidence": 1.0,
    "band": "high",
    "ambiguous": False,
    "applies_when": [],
    "ruled_out": [], "out_of_scope": None,
    "alternatives": [
        {"entry_id": "change-address",
         "source_question": "Customer wants to change the shipping address",
         "answer": "#SD - Too Late - Can't Change Shipping Address (RP)",
         "macro": "#SD - Too Late - Can't Change Shipping Address (RP)",
         "confidence": 0.0, "band": "low", "applies_when": []},
        {"entry_id": "shipping-sla", "source_question": "What is our SLA for shipping most orders",
         "answer": "3-5 business days", "macro": None, "confidence": 0.0, "band": "low",
         "applies_when": []},
    ],
    "query_id": 1,
}


def make_client(settings: Settings, engine: Engine) -> TestClient:
    return TestClient(create_app(settings, engine))


@pytest.fixture
def admin_settings(tiny_settings: Settings) -> Settings:
    return tiny_settings.model_copy(update={"admin_token": TOKEN})


@pytest.fixture
def client(admin_settings: Settings, tiny_engine: Engine) -> TestClient:
    return make_client(admin_settings, tiny_engine)


def store_of(client: TestClient) -> FeedbackStore:
    store: FeedbackStore = client.app.state.feedback_store  # type: ignore[attr-defined]
    return store


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------ pages and headers


def test_chat_page_renders_the_template_with_examples(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.template.name == "chat.html"  # type: ignore[attr-defined]
    context = response.context  # type: ignore[attr-defined]
    assert {k: context[k] for k in ("page", "examples", "max_question_chars", "retention_days")} == {
        "page": "chat",
        "examples": ["cx wants a different delivery address", "cancel my order please",
                     "how long does shipping take"],
        "max_question_chars": 4000,
        "retention_days": 30,
    }
    scripts = re.findall(r"<script[^>]*>", response.text)
    assert scripts == ['<script src="/static/common.js" defer>',
                       '<script src="/static/chat.js" defer>',
                       '<script src="/static/playbook.js" defer>']
    assert re.findall(r"\son[a-z]+=", response.text) == []  # no inline event handlers


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for response in (client.get("/"), client.get("/static/style.css"), client.get("/healthz"),
                     client.post("/api/chat/ask", json={"question": ""})):
        assert {k: response.headers.get(k) for k in SECURITY} == SECURITY


def test_the_api_docs_load_only_the_apps_own_files(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    assert re.findall(r'(?:src|href)="([^"]+)"', response.text) == [
        "/static/vendor/swagger-ui/swagger-ui.css", "data:,",
        "/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/docs.js"]
    bundle = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert (bundle.status_code, len(bundle.content)) == (200, 1_525_208)
    assert client.get("/redoc").status_code == 404


def test_static_files_are_served_by_the_app(client: TestClient) -> None:
    js = client.get("/static/chat.js")
    css = client.get("/static/style.css")
    assert (js.status_code, css.status_code) == (200, 200)
    assert js.headers["content-type"].split(";")[0] in ("text/javascript",
                                                        "application/javascript")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    for name in ("common.js", "chat.js", "playbook.js", "review.js"):
        assert ".innerHTML" not in client.get(f"/static/{name}").text


def test_dynamic_text_in_the_page_is_escaped(
        tiny_settings: Settings, tiny_knowledge: Path, fake_embedder: FakeEmbedder) -> None:
    playbook = tiny_knowledge / "playbook.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace(
        "cx wants a different delivery address", "<img src=x onerror=alert(1)> <script>x</script>"),
        encoding="utf-8")
    engine = Engine(tiny_settings, fake_embedder)
    engine.load()
    page = make_client(tiny_settings, engine).get("/").text
    assert "<img src=x" not in page and "<script>x" not in page
    assert ('data-question="&lt;img src=x onerror=alert(1)&gt; &lt;script&gt;x&lt;/script&gt;">'
            "&lt;img src=x onerror=alert(1)&gt; &lt;script&gt;x&lt;/script&gt;</button>") in page


# ------------------------------------------------------------------ asking and feedback


def test_chat_ask_answers_logs_and_returns_a_query_id(client: TestClient) -> None:
    response = client.post("/api/chat/ask", json={"question": "cancel my order please"})
    assert response.status_code == 200
    body = response.json()
    token = body.pop("feedback_token")
    assert body == CANCEL_ANSWER
    assert re.fullmatch(r"[0-9a-f]{32}", token) and token == store_of(client).feedback_token(1)
    logged = store_of(client).query(1)
    assert (logged.question, logged.entry_id, logged.matched, logged.channel) == (
        "cancel my order please", "cancel-order", True, "web")


def test_chat_ask_no_match_is_its_own_state(client: TestClient) -> None:
    response = client.post("/api/chat/ask",
                           json={"question": "what is the weather tomorrow", "top_k": 1})
    assert response.json() == {
        "question": "what is the weather tomorrow", "matched": False, "answer": None,
        "macro": None, "source_question": None, "entry_id": None, "tags": [],
        "confidence": 0.4563, "band": "low", "ambiguous": False, "applies_when": [],
        "ruled_out": [], "out_of_scope": "what is the weather tomorrow",
        "alternatives": [{"entry_id": "shipping-sla",
                          "source_question": "What is our SLA for shipping most orders",
                          "answer": "3-5 business days", "macro": None, "confidence": 0.4563,
                          "band": "low", "applies_when": []}],
        "query_id": 1, "feedback_token": store_of(client).feedback_token(1),
    }


def asked(client: TestClient, question: str = "cancel my order please") -> dict[str, Any]:
    """Ask in the chat; the answer's feedback fields, to send feedback on it."""
    answer = client.post("/api/chat/ask", json={"question": question}).json()
    return {"query_id": answer["query_id"], "feedback_token": answer["feedback_token"]}


def test_chat_ask_reports_a_bad_question_as_422(client: TestClient) -> None:
    response = client.post("/api/chat/ask", json={"question": "   "})
    assert (response.status_code, response.json()) == (422, {"detail": "the question is empty"})
    assert store_of(client).queries() == []


def test_thumbs_down_with_a_picked_entry_is_stored(client: TestClient) -> None:
    proof = asked(client)
    body = {"query_id": 1, "rating": "down", "picked_entry_id": "change-address",
            "none_of_these": False}
    response = client.post("/api/feedback", json={**body, **proof})
    assert (response.status_code, response.json()) == (200, body)
    feedback = store_of(client).query(1).feedback
    assert feedback is not None
    assert (feedback.rating, feedback.picked_entry_id) == ("down", "change-address")


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"query_id": 1, "rating": "down", "picked_entry_id": "nope"}, 404, "no entry with id 'nope'"),
    ({"query_id": 1, "rating": "up", "picked_entry_id": "cancel-order"}, 422,
     "only a thumbs-down can pick another entry"),
    ({"query_id": 7, "rating": "up"}, 404,
     "no logged question with id 7 (query logging may be off, or the question has expired)"),
    ({"query_id": 1, "rating": "meh"}, 422, "rating: Input should be 'up' or 'down'"),
])
def test_bad_feedback_is_refused_with_a_readable_detail(
        client: TestClient, body: dict[str, object], status: int, detail: str) -> None:
    proof = asked(client)
    response = client.post("/api/feedback", json={"feedback_token": proof["feedback_token"], **body})
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_feedback_needs_the_token_given_with_that_answer(client: TestClient) -> None:
    mine = asked(client)
    theirs = asked(client, "where is my package")
    client.post("/api/feedback", json={**theirs, "rating": "down", "none_of_these": True})
    unknown = {"detail": "no logged question with id 2 (query logging may be off, or the "
               "question has expired)"}
    for proof in ({**theirs, "feedback_token": mine["feedback_token"]},
                  {**theirs, "feedback_token": "0" * 32}):
        response = client.post("/api/feedback", json={**proof, "rating": "up"})
        assert (response.status_code, response.json()) == (404, unknown)
    missing = client.post("/api/feedback", json={"query_id": 2, "rating": "up"})
    assert (missing.status_code, missing.json()) == (422, {"detail": "feedback_token: Field required"})
    assert store_of(client).query(2).feedback == Feedback("down", None, True)
    assert store_of(client).query(1).feedback is None


def test_with_query_logging_off_answers_have_no_query_id(
        tiny_settings: Settings, tiny_engine: Engine) -> None:
    client = make_client(tiny_settings.model_copy(update={"log_queries": False}), tiny_engine)
    answer = client.post("/api/chat/ask", json={"question": "cancel my order please"}).json()
    assert answer == {**CANCEL_ANSWER, "query_id": None, "feedback_token": None}
    response = client.post("/api/feedback",
                           json={"query_id": 1, "rating": "up", "feedback_token": "0" * 32})
    assert response.status_code == 404
    assert store_of(client).queries() == []


def test_an_unusable_database_still_answers_but_refuses_feedback(
        tmp_path: Path, tiny_settings: Settings, tiny_engine: Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder", encoding="utf-8")
    db_path = blocker / "feedback.sqlite3"
    client = make_client(tiny_settings.model_copy(update={"db_path": db_path}), tiny_engine)
    with caplog.at_level(logging.WARNING, logger="playbook.chat"):
        answer = client.post("/api/chat/ask", json={"question": "cancel my order please"})
    assert (answer.status_code, answer.json()) == (200, {**CANCEL_ANSWER, "query_id": None,
                                                           "feedback_token": None})
    assert [r.getMessage() for r in caplog.records if r.name == "playbook.chat"] == [
        f"question not logged, answering anyway: feedback not saved: cannot open {db_path}: "
        "File exists"]
    response = client.post("/api/feedback",
                           json={"query_id": 1, "rating": "up", "feedback_token": "0" * 32})
    assert (response.status_code, response.json()) == (
        503, {"detail": f"feedback not saved: cannot open {db_path}: File exists"})


def test_a_read_only_database_answers_503_feedback_not_saved(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    proof = asked(client)
    store = store_of(client)
    monkeypatch.setattr(store, "engine", database.create_engine(
        f"sqlite+pysqlite:///file:{store.path}?mode=ro&uri=true"))
    response = client.post("/api/feedback", json={"rating": "up", **proof})
    assert (response.status_code, response.json()) == (
        503, {"detail": "feedback not saved: attempt to write a readonly database"})


def test_a_locked_database_answers_503_feedback_not_saved(client: TestClient) -> None:
    proof = asked(client)
    store = store_of(client)
    store.engine = database.create_engine(store.url, busy_timeout=0.05)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = client.post("/api/feedback", json={"rating": "up", **proof})
        asked_again = client.post("/api/chat/ask", json={"question": "cancel my order please"})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (response.status_code, response.json()) == (
        503, {"detail": "feedback not saved: database is locked"})
    assert (asked_again.status_code, asked_again.json()["query_id"]) == (200, None)


# ------------------------------------------------------------------ review and admin token


def test_without_an_admin_token_review_is_disabled(
        tiny_settings: Settings, tiny_engine: Engine) -> None:
    client = make_client(tiny_settings, tiny_engine)
    page = client.get("/review")
    assert page.status_code == 503
    assert page.template.name == "review.html"  # type: ignore[attr-defined]
    assert page.context["enabled"] is False  # type: ignore[attr-defined]
    assert '<p id="disabled-message">review is disabled: set PLAYBOOK_ADMIN_TOKEN</p>' in page.text
    disabled = {"detail": "admin actions are disabled: set PLAYBOOK_ADMIN_TOKEN or PLAYBOOK_ADMINS"}
    for response in (client.get("/api/review", headers=bearer()),
                     client.post("/api/review/1/dismiss", headers=bearer()),
                     client.post("/api/review/1/add", headers=bearer(),
                                 json={"entry_id": "cancel-order"})):
        assert (response.status_code, response.json()) == (503, disabled)


def test_the_review_page_asks_for_the_token(client: TestClient) -> None:
    page = client.get("/review")
    assert page.status_code == 200
    assert page.template.name == "review.html"  # type: ignore[attr-defined]
    assert {k: page.context[k] for k in ("page", "enabled", "message")} == {  # type: ignore[attr-defined]
        "page": "review", "enabled": True, "message": ""}
    assert '<input id="token" name="token" type="password"' in page.text


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_review_api_needs_the_right_bearer_token(client: TestClient,
                                                 headers: dict[str, str]) -> None:
    for response in (client.get("/api/review", headers=headers),
                     client.post("/api/review/1/dismiss", headers=headers)):
        assert (response.status_code, response.json()) == (
            401, {"detail": "a valid admin token is required (Authorization: Bearer ...)"})
        assert response.headers["www-authenticate"] == "Bearer"


def test_review_queue_lists_feedback_and_no_match(client: TestClient) -> None:
    proof = asked(client)
    client.post("/api/feedback", json={**proof, "rating": "down",
                                       "picked_entry_id": "change-address"})
    client.post("/api/chat/ask", json={"question": "shipping order"})
    response = client.get("/api/review", headers=bearer())
    assert response.status_code == 200
    body = response.json()
    for group in body["groups"]:
        for item in group["items"]:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", item.pop("last_asked_at"))
    assert body == {"total": 2, "groups": [
        {"key": "thumbs_down", "title": "Thumbs down", "count": 1, "items": [
            {"query_id": 1, "question": "cancel my order please", "count": 1, "query_ids": [1],
             "entry_id": "cancel-order", "entry_question": "Customer wants to cancel an order",
             "confidence": 1.0, "band": "high", "picked_entry_id": "change-address",
             "picked_question": "Customer wants to change the shipping address",
             "none_of_these": False, "now_entry_id": "cancel-order",
             "now_question": "Customer wants to cancel an order", "now_confidence": 1.0}]},
        {"key": "no_match", "title": "No confident match", "count": 1, "items": [
            {"query_id": 2, "question": "shipping order", "count": 1, "query_ids": [2],
             "entry_id": None, "entry_question": None, "confidence": 0.0171, "band": "low",
             "picked_entry_id": None, "picked_question": None, "none_of_these": False,
             "now_entry_id": None, "now_question": None, "now_confidence": 0.0171}]},
        {"key": "low_confidence", "title": "Low confidence", "count": 0, "items": []},
    ]}


def test_the_queue_says_what_the_playbook_answers_now(client: TestClient) -> None:
    client.post("/api/chat/ask", json={"question": "when will my stuff ship"})
    before = client.get("/api/review", headers=bearer()).json()["groups"][1]["items"][0]
    assert (before["entry_id"], before["now_entry_id"]) == (None, None)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    playbook = engine.settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace(
        "  - how long does shipping take\n",
        "  - how long does shipping take\n  - when will my order ship\n"), encoding="utf-8")
    engine.load()  # a knowledge change made since the question was asked
    after = client.get("/api/review", headers=bearer()).json()["groups"][1]["items"][0]
    assert (after["question"], after["entry_id"], after["now_entry_id"], after["now_question"]) == (
        "when will my stuff ship", None, "shipping-sla", "What is our SLA for shipping most orders")


def test_adding_an_alternate_through_the_api_changes_the_answer(client: TestClient) -> None:
    client.post("/api/chat/ask", json={"question": "shipping order"})
    refused = client.post("/api/review/1/add", headers=bearer(), json={"entry_id": "shipping-sla"})
    assert (refused.status_code, refused.json()) == (409, {"detail": (
        "'shipping order' sits closer to 'cancel-order' (0.35) than to 'shipping-sla' (0.32): "
        "added, it would pull 'cancel-order''s questions away; reword it, or add it anyway "
        "(force)")})
    response = client.post("/api/review/1/add", headers=bearer(),
                           json={"entry_id": "shipping-sla", "force": True})
    assert (response.status_code, response.json()) == (200, {
        "query_id": 1, "entry_id": "shipping-sla", "phrasing": "shipping order",
        "resolved": [1], "index": {"action": "built", "entries": 3, "vectors": 10}})
    again = client.post("/api/chat/ask", json={"question": "shipping order"}).json()
    assert (again["matched"], again["entry_id"], again["query_id"]) == (True, "shipping-sla", 2)
    assert client.get("/api/review", headers=bearer()).json()["total"] == 0


def test_adding_to_an_unknown_entry_is_a_404(client: TestClient) -> None:
    client.post("/api/chat/ask", json={"question": "shipping order"})
    response = client.post("/api/review/1/add", headers=bearer(), json={"entry_id": "nope"})
    assert (response.status_code, response.json()) == (404, {"detail": "no entry with id 'nope'"})
    assert store_of(client).query(1).review_status == "open"


def test_dismiss_through_the_api(client: TestClient) -> None:
    client.post("/api/chat/ask", json={"question": "shipping order"})
    client.post("/api/chat/ask", json={"question": "Shipping  order"})
    response = client.post("/api/review/2/dismiss", headers=bearer())
    assert (response.status_code, response.json()) == (200, {"query_id": 2, "resolved": [1, 2]})
    missing = client.post("/api/review/9/dismiss", headers=bearer())
    assert missing.status_code == 404
