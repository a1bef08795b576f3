"""Access: security headers on every HTML page, no secret in any log line, per-client rate limit."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.engine import Engine
from app.web.app import create_app
from app.web.middleware.security_headers import CONTENT_SECURITY_POLICY
from tests.fakes import FakeEmbedder

TOKEN = "admin-token-that-must-never-be-logged"
SECRET = "slack-signing-secret-that-must-never-be-logged"
BOT_TOKEN = "xoxb-bot-token-that-must-never-be-logged"
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _app(settings: Settings, fake_embedder: FakeEmbedder, **update: object) -> TestClient:
    configured = settings.model_copy(update={"watch_seconds": 0, **update})
    engine = Engine(configured, fake_embedder)
    engine.load()
    return TestClient(create_app(configured, engine))


def test_the_policy_allows_no_inline_script_and_no_framing() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives == {
        "default-src": "'self'", "script-src": "'self'", "style-src": "'self'",
        "img-src": "'self' data:", "frame-ancestors": "'none'", "base-uri": "'none'",
        "form-action": "'self'",
    }


@pytest.mark.parametrize(("token", "path", "status"), [
    (TOKEN, "/", 200),
    (TOKEN, "/review", 200),
    (None, "/review", 503),  # the "review is disabled" page
])
def test_every_html_page_carries_the_security_headers_and_no_inline_script(
    tiny_settings: Settings, fake_embedder: FakeEmbedder, token: str | None, path: str,
    status: int,
) -> None:
    response = _app(tiny_settings, fake_embedder, admin_token=token).get(path)
    assert (response.status_code, response.headers["content-type"]) == (
        status, "text/html; charset=utf-8")
    assert {name: response.headers.get(name) for name in HEADERS} == HEADERS
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, flags=re.S)
    assert scripts and all('src="/static/' in attributes and body == ""
                           for attributes, body in scripts)
    assert re.findall(r"\son[a-z]+=", response.text) == []
    assert "javascript:" not in response.text


def _signed(body: bytes, content_type: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {"content-type": content_type, "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest.hexdigest()}"}


def test_logs_never_hold_the_admin_token_or_the_slack_secrets(
    tiny_settings: Settings, fake_embedder: FakeEmbedder, caplog: pytest.LogCaptureFixture,
) -> None:
    client = _app(tiny_settings, fake_embedder, admin_token=TOKEN, slack_signing_secret=SECRET,
                  slack_bot_token=BOT_TOKEN)
    admin = {"Authorization": f"Bearer {TOKEN}"}
    command = urlencode({"command": "/playbook", "text": "cancel my order please",
                         "user_id": "U1", "channel_id": "C1", "response_url": ""}).encode()
    command_headers = _signed(command, "application/x-www-form-urlencoded")
    challenge = json.dumps({"type": "url_verification", "challenge": "c"}).encode()
    challenge_headers = _signed(challenge, "application/json")
    with caplog.at_level(logging.DEBUG):
        responses = [
            client.post("/api/admin/reload", headers=admin),
            client.post("/api/admin/reload", headers={"Authorization": f"Bearer {TOKEN}x"}),
            client.get("/api/review", headers=admin),
            client.post("/api/review/1/dismiss", headers=admin),
            client.post("/slack/command", content=command, headers=command_headers),
            client.post("/slack/events", content=challenge, headers=challenge_headers),
            client.post("/slack/command", content=command,
                        headers={**command_headers, "X-Slack-Signature": f"v0={SECRET}"}),
        ]
    assert [r.status_code for r in responses] == [200, 401, 200, 404, 200, 200, 401]
    logged = "\n".join([record.getMessage() for record in caplog.records]
                       + [record.exc_text or "" for record in caplog.records])
    secrets = [TOKEN, SECRET, BOT_TOKEN, command_headers["X-Slack-Signature"],
               challenge_headers["X-Slack-Signature"]]
    assert [secret for secret in secrets if secret in logged] == []
    access = [r.fields for r in caplog.records if r.name == "playbook.access"]
    assert [(line["method"], line["path"], line["status"]) for line in access] == [
        ("POST", "/api/admin/reload", 200), ("POST", "/api/admin/reload", 401),
        ("GET", "/api/review", 200), ("POST", "/api/review/1/dismiss", 404),
        ("POST", "/slack/command", 200), ("POST", "/slack/events", 200),
        ("POST", "/slack/command", 401)]


def test_the_rate_limit_is_per_client_and_spares_admin_routes(
    tiny_settings: Settings, fake_embedder: FakeEmbedder,
) -> None:
    first = _app(tiny_settings, fake_embedder, rate_limit_per_minute=2, admin_token=TOKEN)
    app = first.app
    second = TestClient(app, client=("10.0.0.2", 40000))
    ask = {"question": "cancel my order please"}
    assert [first.post("/api/ask", json=ask).status_code for _ in range(3)] == [200, 200, 429]
    assert [second.post("/api/chat/ask", json=ask).status_code for _ in range(2)] == [200, 200]
    assert second.get("/api/entries").status_code == 429  # one budget for all public routes
    reloads = [first.post("/api/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
               for _ in range(3)]
    assert [r.status_code for r in reloads] == [200, 200, 200]
    limited = first.post("/api/feedback",
                         json={"query_id": 1, "rating": "up", "feedback_token": "0" * 32})
    assert (limited.status_code, limited.json()) == (
        429, {"detail": "too many requests: the limit is 2 a minute per client"})


# ------------------------------------------------------------------ the review page's session


def test_the_review_page_holds_a_session_cookie_scripts_cannot_read(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    client = _app(tiny_settings, fake_embedder, admin_token=TOKEN)
    refused = client.post("/api/admin/session", json={"token": "guess"})
    assert (refused.status_code, refused.json()) == (401, {"detail": "that admin token was not accepted"})
    assert "set-cookie" not in refused.headers

    opened = client.post("/api/admin/session", json={"token": TOKEN})
    assert opened.status_code == 204
    cookie = opened.headers["set-cookie"]
    assert re.fullmatch(rf"playbook_admin=\d+\.{b'admin'.hex()}\.[0-9a-f]{{64}}; HttpOnly; "
                        r"Max-Age=43200; "
                        r"Path=/api/; SameSite=strict", cookie), cookie
    assert TOKEN not in cookie
    admin = {"X-Playbook-Admin": "1"}
    assert client.get("/api/admin/session").json() == {"active": True, "name": "admin"}
    assert client.get("/api/review", headers=admin).status_code == 200
    # Without the header (a cross-site form cannot add one) the cookie alone is not enough.
    assert client.get("/api/review").status_code == 401

    closed = client.delete("/api/admin/session")
    assert closed.status_code == 204
    assert client.get("/api/admin/session").json() == {"active": False, "name": None}
    assert client.get("/api/review", headers=admin).status_code == 401


def test_a_session_cookie_dies_with_its_lifetime_or_a_new_token(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    from app.web import admin_session

    now = 1_800_000_000.0
    tokens = {TOKEN: "alice", "bobs-token-123": "bob"}
    cookie = admin_session.issue(TOKEN, "alice", clock=lambda: now)
    assert admin_session.admin_of(cookie, tokens, clock=lambda: now + 3600) == "alice"
    assert admin_session.admin_of(cookie, tokens, clock=lambda: now + 12 * 3600 + 1) is None
    assert admin_session.admin_of(cookie, {"a-rotated-token": "alice"}, clock=lambda: now) is None
    issued, name, signature = cookie.split(".")
    assert admin_session.admin_of(f"{int(issued) + 1}.{name}.{signature}", tokens,
                                  clock=lambda: now) is None
    # Claiming another admin's name with one's own signature is refused.
    assert admin_session.admin_of(f"{issued}.{b'bob'.hex()}.{signature}", tokens,
                                  clock=lambda: now) is None
    assert admin_session.admin_of("not-a-cookie", tokens, clock=lambda: now) is None
    client = _app(tiny_settings, fake_embedder, admin_token=TOKEN)
    client.cookies.set("playbook_admin", f"{issued}.{name}.{'0' * 64}", path="/api/")
    assert client.get("/api/review", headers={"X-Playbook-Admin": "1"}).status_code == 401
