"""Every endpoint refuses bad input with a clear 4xx and {"detail": message}; any script is fine.

Routes that take JSON: /api/ask, /api/chat/ask, /api/feedback, /api/review/{id}/add. Routes that
take a query or a path: /api/search, /api/entries/{id}, /api/review/{id}/dismiss. Bodiless:
/api/admin/reload. Signed Slack routes: /slack/command (form) and /slack/events (JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.engine import Engine
from app.web.app import create_app
from tests.fakes import TINY_OUT_OF_SCOPE, TINY_PLAYBOOK, FakeEmbedder

TOKEN = "admin-token-for-bad-input"
SECRET = "slack-secret-for-bad-input"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
JSON_TYPE = {"content-type": "application/json"}

NOT_JSON = "the request body must be JSON, sent with Content-Type: application/json"
NOT_AN_OBJECT = "the request body must be a JSON object"
MALFORMED = "the request body is not valid JSON"
NOT_UTF8_BODY = "the request body is not valid JSON: it is not UTF-8 text"
TOO_DEEP = "the request body is not valid JSON: it is nested too deeply"
EMPTY = "the question is empty"
CONTROL = "the question contains control characters"
SURROGATE = "the question is not valid Unicode: it holds an unpaired surrogate"
NOT_SIGNED = "the request does not carry a valid, current Slack signature"

# (method, path, a valid JSON body) for every route that reads a JSON body.
JSON_ROUTES = [
    ("/api/ask", {"question": "cancel my order please"}),
    ("/api/chat/ask", {"question": "cancel my order please"}),
    ("/api/feedback", {"query_id": 1, "rating": "up", "feedback_token": "0" * 32}),
    ("/api/review/1/add", {"entry_id": "cancel-order"}),
]
QUESTION_ROUTES = ["/api/ask", "/api/chat/ask"]
PROOF = {"feedback_token": "0" * 32}
POST_ROUTES = [path for path, _ in JSON_ROUTES] + [
    "/api/review/1/dismiss", "/api/admin/reload", "/slack/command", "/slack/events"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The tiny playbook, shared by the whole module: every request here is refused before it
    changes anything, or only adds a logged question."""
    folder = tmp_path_factory.mktemp("bad-input")
    knowledge = folder / "knowledge"
    knowledge.mkdir()
    (knowledge / "playbook.yaml").write_text(TINY_PLAYBOOK, encoding="utf-8")
    (knowledge / "glossary.yaml").write_text("cx: customer\n", encoding="utf-8")
    (knowledge / "out_of_scope.txt").write_text(TINY_OUT_OF_SCOPE, encoding="utf-8")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        knowledge_dir=knowledge, index_dir=folder / "index", db_path=folder / "feedback.sqlite3",
        admin_token=TOKEN, slack_signing_secret=SECRET, watch_seconds=0,
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> TestClient:
    engine = Engine(settings, FakeEmbedder())
    engine.load()
    client = TestClient(create_app(settings, engine), headers=ADMIN)
    # One logged question, so feedback and review routes have something to point at.
    assert client.post("/api/chat/ask", json={"question": "cancel my order please"}).json()[
        "query_id"] == 1
    return client


def post_json(client: TestClient, path: str, body: Any) -> Any:
    """json.dumps escapes what httpx would refuse to encode (a lone surrogate stays "\\ud800")."""
    return client.post(path, content=json.dumps(body), headers=JSON_TYPE)


def refused(response: Any, status: int, detail: str) -> None:
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def signed(body: bytes, content_type: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {"content-type": content_type, "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest.hexdigest()}"}


def slash(client: TestClient, text: str) -> Any:
    body = urlencode({"command": "/playbook", "text": text, "user_id": "U1",
                      "channel_id": "C1", "response_url": ""}).encode()
    response = client.post("/slack/command", content=body,
                           headers=signed(body, "application/x-www-form-urlencoded"))
    assert response.status_code == 200
    return response.json()


def sorry(reason: str) -> dict[str, str]:
    return {"response_type": "ephemeral", "text": f"Sorry, I can't answer that: {reason}."}


# ------------------------------------------------------------------ questions


@pytest.mark.parametrize("path", QUESTION_ROUTES)
@pytest.mark.parametrize(("question", "detail"), [
    ("", EMPTY),
    ("   \n\t ", EMPTY),
    ("\u00a0\u3000\u2003", EMPTY),  # no-break, ideographic and em spaces are whitespace too
    ("x" * 4001, "the question is 4001 characters long; the limit is 4000"),
    ("📦" * 4001, "the question is 4001 characters long; the limit is 4000"),
    ("where is my order\x00", CONTROL),
    ("refund\x1b[31m please", CONTROL),
    ("bell\x07", CONTROL),
    ("delete\x7f", CONTROL),
    ("refund \ud800 please", SURROGATE),
])
def test_unusable_questions_get_a_clear_422(
    client: TestClient, path: str, question: str, detail: str
) -> None:
    refused(post_json(client, path, {"question": question}), 422, detail)


def test_a_refused_question_is_not_logged_for_review(client: TestClient) -> None:
    store = client.app.state.feedback_store  # type: ignore[attr-defined]
    before = len(store.queries())
    refused(client.post("/api/chat/ask", json={"question": "x\x00"}), 422, CONTROL)
    assert len(store.queries()) == before


@pytest.mark.parametrize("path", QUESTION_ROUTES)
def test_the_longest_question_allowed_is_answered(client: TestClient, path: str) -> None:
    question = "cancel my order please " + "x" * 3977
    assert len(question) == 4000
    response = client.post(path, json={"question": question})
    assert (response.status_code, response.json()["entry_id"]) == (200, "cancel-order")


def test_the_length_limit_is_the_setting(tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    short = tiny_settings.model_copy(update={"max_question_chars": 10})
    engine = Engine(short, fake_embedder)
    engine.load()
    client = TestClient(create_app(short, engine))
    refused(client.post("/api/ask", json={"question": "cancel my order"}), 422,
            "the question is 15 characters long; the limit is 10")
    refused(client.get("/api/search", params={"q": "cancel my order"}), 422,
            "the question is 15 characters long; the limit is 10")
    assert client.post("/api/ask", json={"question": "  cancel  "}).status_code == 200


@pytest.mark.parametrize(("query", "status", "detail"), [
    ("q=", 422, EMPTY),
    ("q=%20%09%0A", 422, EMPTY),
    ("k=3", 422, "query.q: Field required"),
    ("q=" + "x" * 4001, 422, "the question is 4001 characters long; the limit is 4000"),
    ("q=cancel%00order", 422, CONTROL),
    ("q=cancel%1Border", 422, CONTROL),
    ("q=cancel&k=abc", 422, "query.k: Input should be a valid integer, unable to parse string as "
                            "an integer"),
    ("q=cancel&k=0", 422, "query.k: Input should be greater than or equal to 1"),
    ("q=cancel&k=21", 422, "query.k: Input should be less than or equal to 20"),
    ("q=caf%E9", 400, "the query string is not valid UTF-8"),
    ("q=%FF%FE", 400, "the query string is not valid UTF-8"),
    ("q=%ED%A0%80", 400, "the query string is not valid UTF-8"),  # an encoded surrogate
])
def test_bad_searches_get_a_clear_4xx(
    client: TestClient, query: str, status: int, detail: str
) -> None:
    refused(client.get(f"/api/search?{query}"), status, detail)


# ------------------------------------------------------------------ unicode is fine


MIXED = "クレジット 📦 refund لماذا"


@pytest.mark.parametrize("path", QUESTION_ROUTES)
@pytest.mark.parametrize(("question", "entry_id"), [
    (MIXED, "cancel-order"),
    ("cancel my order please 📦 クレジット", "cancel-order"),
    ("how long does shipping take? доставка 🚚", "shipping-sla"),
    ("Ünïcödé cx wants a different delivery address — ça va? 住所", "change-address"),
])
def test_unicode_emoji_and_mixed_scripts_are_answered(
    client: TestClient, path: str, question: str, entry_id: str
) -> None:
    response = post_json(client, path, {"question": question})
    assert response.status_code == 200
    body = response.json()
    assert (body["question"], body["matched"], body["entry_id"]) == (question, True, entry_id)


def test_unicode_searches_entries_and_slack_are_answered(client: TestClient) -> None:
    search = client.get("/api/search", params={"q": MIXED, "k": 1})
    assert (search.status_code, search.json()["query"],
            [hit["entry_id"] for hit in search.json()["results"]]) == (200, MIXED, ["cancel-order"])
    refused(client.get("/api/entries/📦"), 404, "no entry with id '📦'")
    refused(client.get("/api/entries/a%00b"), 404, "no entry with id 'a\\x00b'")
    answer = slash(client, MIXED)
    assert (answer["response_type"], answer["text"]) == (
        "ephemeral", "send #SD - Too Late to Cancel (macro: #SD - Too Late to Cancel)")


# ------------------------------------------------------------------ JSON bodies


@pytest.mark.parametrize(("path", "valid"), JSON_ROUTES)
@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml",
])
def test_a_body_that_is_not_declared_json_gets_415(
    client: TestClient, path: str, valid: dict[str, Any], content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    refused(client.post(path, content=json.dumps(valid).encode(), headers=headers), 415, NOT_JSON)


@pytest.mark.parametrize(("path", "valid"), JSON_ROUTES)
def test_a_form_posted_to_a_json_route_gets_415(
    client: TestClient, path: str, valid: dict[str, Any]
) -> None:
    refused(client.post(path, data={k: str(v) for k, v in valid.items()}), 415, NOT_JSON)


@pytest.mark.parametrize(("path", "valid"), JSON_ROUTES)
@pytest.mark.parametrize(("raw", "detail"), [
    (b'{"question": ', MALFORMED),
    (b"{'question': 'single quotes'}", MALFORMED),
    (b'{"a": 1,}', MALFORMED),
    (b"", NOT_AN_OBJECT),
    (b"null", NOT_AN_OBJECT),
    (b"[]", NOT_AN_OBJECT),
    (b'"cancel my order"', NOT_AN_OBJECT),
    (b"42", NOT_AN_OBJECT),
    (b'{"question": "caf\xe9"}', NOT_UTF8_BODY),  # latin-1
    (b'{"question": "\x80\xbf cancel"}', NOT_UTF8_BODY),
    (b"[" * 10_000 + b"]" * 10_000, TOO_DEEP),
])
def test_malformed_json_gets_a_clear_422(
    client: TestClient, path: str, valid: dict[str, Any], raw: bytes, detail: str
) -> None:
    refused(client.post(path, content=raw, headers=JSON_TYPE), 422, detail)


@pytest.mark.parametrize(("path", "body", "detail"), [
    ("/api/ask", {"question": 5}, "question: Input should be a valid string"),
    ("/api/ask", {"question": ["cancel"]}, "question: Input should be a valid string"),
    ("/api/ask", {"question": None}, "question: Input should be a valid string"),
    ("/api/ask", {}, "question: Field required"),
    ("/api/ask", {"question": "hi", "top_k": "3"}, "top_k: Input should be a valid integer"),
    ("/api/ask", {"question": "hi", "top_k": True}, "top_k: Input should be a valid integer"),
    ("/api/ask", {"question": "hi", "top_k": 2.5}, "top_k: Input should be a valid integer"),
    ("/api/ask", {"question": "hi", "top_k": -1},
     "top_k: Input should be greater than or equal to 0"),
    ("/api/ask", {"question": "hi", "tags": "address"}, "tags: Input should be a valid list"),
    ("/api/ask", {"question": "hi", "tags": [1]}, "tags.0: Input should be a valid string"),
    ("/api/ask", {"question": "hi", "topk": 2}, "topk: Extra inputs are not permitted"),
    ("/api/chat/ask", {"question": {"text": "hi"}}, "question: Input should be a valid string"),
    ("/api/chat/ask", {"question": "hi", "top_k": 99},
     "top_k: Input should be less than or equal to 20"),
    ("/api/feedback", {"query_id": "1", "rating": "up", **PROOF},
     "query_id: Input should be a valid integer"),
    ("/api/feedback", {"query_id": None, "rating": "up", **PROOF},
     "query_id: Input should be a valid integer"),
    ("/api/feedback", {"query_id": 0, "rating": "up", **PROOF},
     "query_id: Input should be greater than or equal to 1"),
    ("/api/feedback", {"query_id": 2**53, "rating": "up", **PROOF},
     "query_id: Input should be less than or equal to 9007199254740991"),
    ("/api/feedback", {"query_id": 1, "rating": 1, **PROOF}, "rating: Input should be 'up' or 'down'"),
    ("/api/feedback", {"query_id": 1, "feedback_token": "a"}, "rating: Field required"),
    ("/api/feedback", {"query_id": 1, "rating": "up", **PROOF, "none_of_these": "yes"},
     "none_of_these: Input should be a valid boolean"),
    ("/api/feedback", {"query_id": 1, "rating": "up", **PROOF, "comment": "great"},
     "comment: Extra inputs are not permitted"),
    ("/api/review/1/add", {"entry_id": 7}, "entry_id: Input should be a valid string"),
    ("/api/review/1/add", {}, "entry_id: Field required"),
])
def test_wrong_json_types_get_a_clear_422(
    client: TestClient, path: str, body: dict[str, Any], detail: str
) -> None:
    refused(client.post(path, json=body), 422, detail)


@pytest.mark.parametrize(("path", "status", "detail"), [
    ("/api/review/abc/dismiss", 422,
     "path.query_id: Input should be a valid integer, unable to parse string as an integer"),
    ("/api/review/0/dismiss", 422, "path.query_id: Input should be greater than or equal to 1"),
    ("/api/review/-5/dismiss", 422, "path.query_id: Input should be greater than or equal to 1"),
    (f"/api/review/{2**53}/add", 422,
     "path.query_id: Input should be less than or equal to 9007199254740991"),
    (f"/api/review/{2**70}/dismiss", 422,
     "path.query_id: Input should be less than or equal to 9007199254740991"),
    ("/api/review/%FF/dismiss", 400, "the path is not valid UTF-8"),
    ("/api/entries/%C3%28", 400, "the path is not valid UTF-8"),
])
def test_bad_path_parameters_get_a_clear_4xx(
    client: TestClient, path: str, status: int, detail: str
) -> None:
    body = {"entry_id": "cancel-order"} if path.endswith("/add") else None
    refused(client.post(path, json=body) if "/review/" in path else client.get(path),
            status, detail)


def test_feedback_naming_an_unknown_entry_is_a_404(client: TestClient) -> None:
    refused(client.post("/api/feedback", json={"query_id": 1, "rating": "down",
                                                "feedback_token": "0" * 32,
                                                "picked_entry_id": "nope\x00"}),
            404, "no entry with id 'nope\\x00'")


# ------------------------------------------------------------------ admin reload


def test_reload_ignores_a_body_and_refuses_a_bad_url(client: TestClient) -> None:
    junk = client.post("/api/admin/reload", content=b"\xff\xfe\x00",
                       headers={"content-type": "text/plain"})
    assert (junk.status_code, junk.json()["action"]) == (200, "loaded")
    refused(client.post("/api/admin/reload?x=%FF"), 400, "the query string is not valid UTF-8")


@pytest.mark.parametrize("authorization", [
    b"", b"Bearer", b"Bearer ", b"Basic " + TOKEN.encode(), TOKEN.encode(),
    b"Bearer " + TOKEN.encode() + b"x", b"Bearer t\xc3\xb6ken", b"Bearer \xff\xfe",
])
def test_reload_refuses_every_wrong_token_alike(client: TestClient, authorization: bytes) -> None:
    response = client.post("/api/admin/reload", headers={"Authorization": authorization})
    refused(response, 401, "a valid admin token is required (Authorization: Bearer ...)")
    assert response.headers["www-authenticate"] == "Bearer"


# ------------------------------------------------------------------ Slack


@pytest.mark.parametrize(("text", "reply"), [
    ("cancel\x00 order", sorry(CONTROL)),
    ("x" * 4001, sorry("the question is 4001 characters long; the limit is 4000")),
])
def test_slack_commands_explain_an_unusable_question(
    client: TestClient, text: str, reply: dict[str, str]
) -> None:
    # Slack shows its own error for any non-200, so the reason is sent as an ephemeral reply.
    assert slash(client, text) == reply


@pytest.mark.parametrize(("raw", "status", "detail"), [
    (b"{", 400, "the body is not JSON"),
    (b"[1, 2]", 400, "the body is not a JSON object"),
    (b'"event_callback"', 400, "the body is not a JSON object"),
    (b'{"type": "\xff"}', 401, NOT_SIGNED),  # Slack signs UTF-8 text: these bytes are not Slack's
])
def test_slack_events_refuse_bodies_that_are_not_a_json_object(
    client: TestClient, raw: bytes, status: int, detail: str
) -> None:
    refused(client.post("/slack/events", content=raw, headers=signed(raw, "application/json")),
            status, detail)


@pytest.mark.parametrize("path", ["/slack/command", "/slack/events"])
def test_unsigned_slack_requests_get_401(client: TestClient, path: str) -> None:
    refused(client.post(path, content=b"text=hi",
                        headers={"content-type": "application/x-www-form-urlencoded"}),
            401, NOT_SIGNED)


# ------------------------------------------------------------------ huge bodies


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_body_over_the_limit_gets_413(client: TestClient, path: str) -> None:
    huge = json.dumps({"question": "x" * 70_000}).encode()
    response = client.post(path, content=huge, headers=JSON_TYPE)
    # Starlette refuses a declared Content-Length over the limit before any handler runs.
    assert (response.status_code, response.headers["content-type"], response.text) == (
        413, "text/plain; charset=utf-8", "Content Too Large")


@pytest.mark.parametrize("path", ["/api/ask", "/api/chat/ask", "/api/feedback"])
def test_a_streamed_body_over_the_limit_gets_413(client: TestClient, path: str) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"question": "'
        for _ in range(70):
            yield b"x" * 1024

    refused(client.post(path, content=chunks(), headers=JSON_TYPE), 413, "Content Too Large")


def test_a_huge_form_to_slack_gets_413(client: TestClient) -> None:
    body = b"text=" + b"x" * 70_000
    response = client.post("/slack/command", content=body,
                           headers=signed(body, "application/x-www-form-urlencoded"))
    assert (response.status_code, response.text) == (413, "Content Too Large")


def test_the_body_limit_is_the_setting(tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    small = tiny_settings.model_copy(update={"max_body_bytes": 1024})
    engine = Engine(small, fake_embedder)
    engine.load()
    client = TestClient(create_app(small, engine))
    fits = json.dumps({"question": "cancel my order please", "tags": ["x" * 900]})
    too_big = json.dumps({"question": "cancel my order please", "tags": ["x" * 1100]})
    assert client.post("/api/ask", content=fits, headers=JSON_TYPE).status_code == 200
    assert client.post("/api/ask", content=too_big, headers=JSON_TYPE).status_code == 413
