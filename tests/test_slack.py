"""The Slack routes: signatures, slash commands, delayed replies, events, escaping."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from slack_sdk.signature import Clock, SignatureVerifier

from app.config import Settings
from app.embedding.embedder import Embedder
from app.engine.engine import Engine
from app.records import Answer, Entry, Match
from app.store.feedback import Feedback
from app.web.app import create_app
from app.web.slack.blocks import (
    answer_message,
    no_match_message,
    question_from_slack,
    split_public_keyword,
)
from app.web.slack.dedupe import EventDeduper
from app.web.slack.routes import allowed_response_url

SECRET = "test-signing-secret-1234"
HOOK = "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"
BOT_TOKEN = "xoxb-test-token"
MACRO = "#SD - Too Late - Can't Change Shipping Address (RP)"

# Slack's documented example (docs.slack.dev, "Verifying requests from Slack").
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = 1531420618
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    "&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    "%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

NOT_SIGNED = {"detail": "the request does not carry a valid, current Slack signature"}
DISABLED = {"detail": "Slack is disabled: set PLAYBOOK_SLACK_SIGNING_SECRET"}


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self.fixed = now

    def now(self) -> float:
        return self.fixed


def sign(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers as Slack computes them: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


def slash_body(text: str, response_url: str = HOOK, command: str = "/playbook") -> bytes:
    return urlencode({
        "token": "xyzz0WbapA4vBCDEFasx0q6G", "team_id": "T1DC2JH3J", "team_domain": "testteamnow",
        "enterprise_id": "E0001", "enterprise_name": "Globular%20Construct%20Inc",
        "channel_id": "G8PSS9T3V", "channel_name": "foobar", "user_id": "U2CERLKJA",
        "user_name": "roadrunner", "command": command, "text": text, "api_app_id": "A123456",
        "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
    }).encode()


def form_headers(body: bytes, **sign_args: Any) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded", **sign(body, **sign_args)}


def json_headers(body: bytes, **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", **sign(body), **extra}


def ask(client: TestClient, text: str, response_url: str = HOOK) -> Any:
    body = slash_body(text, response_url)
    response = client.post("/slack/command", content=body, headers=form_headers(body))
    assert response.status_code == 200
    return response.json()


# ------------------------------------------------------------------ expected messages


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def asked(question: str) -> dict[str, Any]:
    return context(f"You asked: “{question}”")


def button(label: str, action_id: str, **value: object) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": label, "emoji": True},
            "action_id": action_id, "value": json.dumps(value, separators=(",", ":"))}


def actions(q: int, t: str, share: bool = True, **up: object) -> dict[str, Any]:
    return {"type": "actions", "elements": [
        button("👍 Right", "feedback_up", q=q, t=t, **up),
        button("👎 Wrong", "feedback_down", q=q, t=t),
        *([button("Share in channel", "share", q=q, t=t)] if share else [])]}


def token_of(client: TestClient, query_id: int) -> str:
    token: str = client.app.state.feedback_store.feedback_token(query_id)  # type: ignore[attr-defined]
    return token


# The answer is the macro itself, so it is shown once; the other cards are at 0 %: left out.
CHANGE_ADDRESS_BLOCKS = [
    asked("update address on order"),
    section(f"*Macro to send*\n```{MACRO}```"),
    context("Matched “Customer wants to change the shipping address” · confidence 100% (high)"),
]
CHANGE_ADDRESS = {"text": MACRO, "blocks": CHANGE_ADDRESS_BLOCKS}

HELP_TEXT = (
    "*Ask the support playbook* for the policy answer and the macro to send.\n"
    "`/playbook <question>`: e.g. `/playbook customer wants to change address on a best buy "
    "order` (only you see the answer)\n"
    "`/playbook public <question>`: post the answer in the channel\n"
    "`/playbook help`: this message\n"
    "You can also mention the app in a channel, or send it a direct message."
)
HELP = {"response_type": "ephemeral", "text": "How to ask the support playbook.",
        "blocks": [section(HELP_TEXT)]}


# ------------------------------------------------------------------ fixtures


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A loopback HTTP server standing in for Slack: response_url hooks and the Web API."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(Received(self.path, dict(self.headers.items()), body))
            if self.path.endswith("chat.postMessage"):
                reply, kind = b'{"ok": true, "channel": "C0LAN2Q65", "ts": "2.0"}', "json"
            else:
                reply, kind = b"ok", "plain"
            self.send_response(200)
            self.send_header("Content-Type", f"application/{kind}" if kind == "json"
                             else "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Receiver(server, received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def slack_settings(tiny_settings: Settings, receiver: Receiver) -> Settings:
    return tiny_settings.model_copy(update={
        "slack_signing_secret": SECRET,
        "slack_bot_token": BOT_TOKEN,
        "slack_api_url": f"{receiver.url}api/",
        "slack_response_url_base": f"{receiver.url}commands/",
    })


@pytest.fixture
def client(slack_settings: Settings, tiny_engine: Engine) -> TestClient:
    return TestClient(create_app(slack_settings, tiny_engine))


# ------------------------------------------------------------------ signatures


def test_slacks_documented_example_passes_the_verifier() -> None:
    verifier = SignatureVerifier(VECTOR_SECRET, clock=FixedClock(VECTOR_TIMESTAMP))
    assert verifier.generate_signature(timestamp=str(VECTOR_TIMESTAMP), body=VECTOR_BODY) \
        == VECTOR_SIGNATURE
    assert verifier.is_valid(VECTOR_BODY, str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE) is True
    assert sign(VECTOR_BODY.encode(), VECTOR_SECRET, VECTOR_TIMESTAMP)["X-Slack-Signature"] \
        == VECTOR_SIGNATURE


def test_slacks_documented_request_is_answered_with_help_at_its_own_time(
    tiny_settings: Settings, tiny_engine: Engine
) -> None:
    settings = tiny_settings.model_copy(update={"slack_signing_secret": VECTOR_SECRET})
    app = create_app(settings, tiny_engine)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": str(VECTOR_TIMESTAMP),
               "X-Slack-Signature": VECTOR_SIGNATURE}
    client = TestClient(app)

    stale = client.post("/slack/command", content=VECTOR_BODY, headers=headers)
    app.state.slack.verifier.clock = FixedClock(VECTOR_TIMESTAMP + 299)
    current = client.post("/slack/command", content=VECTOR_BODY, headers=headers)

    assert (stale.status_code, stale.json()) == (401, NOT_SIGNED)
    assert current.status_code == 200
    assert current.json() == {
        "response_type": "ephemeral", "text": "How to ask the support playbook.",
        "blocks": [section(HELP_TEXT.replace("/playbook", "/webhook-collect"))],
    }


@pytest.mark.parametrize("route", ["/slack/command", "/slack/events", "/slack/interactions"])
@pytest.mark.parametrize("case", ["unsigned", "wrong secret", "tampered body", "6 minutes old",
                                  "timestamp not a number"])
def test_requests_without_a_valid_current_signature_get_401_and_no_answer(
    client: TestClient, receiver: Receiver, route: str, case: str
) -> None:
    if route == "/slack/command":
        body = slash_body("update address on order")
    elif route == "/slack/interactions":
        body = press_body("feedback_up", f"{receiver.url}commands/1", q=1, t="a" * 32,
                          e="change-address")
    else:
        body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
    sent = body
    headers = sign(body)
    if case == "unsigned":
        headers = {}
    elif case == "wrong secret":
        headers = sign(body, secret="not-the-secret")
    elif case == "tampered body":
        sent = body.replace(b"address", b"adress!").replace(b"c-123", b"c-666")
    elif case == "6 minutes old":
        headers = sign(body, timestamp=int(time.time()) - 360)
    else:
        headers["X-Slack-Request-Timestamp"] = "soon"

    response = client.post(route, content=sent, headers=headers)

    assert (response.status_code, response.json()) == (401, NOT_SIGNED)
    assert receiver.requests == []


def test_without_a_signing_secret_slack_is_disabled_and_says_so(
    tiny_settings: Settings, tiny_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="playbook.slack"):
        client = TestClient(create_app(tiny_settings, tiny_engine))
    body = slash_body("update address on order")

    command = client.post("/slack/command", content=body, headers=form_headers(body))
    events = client.post("/slack/events", content=b"{}", headers=json_headers(b"{}"))

    assert (command.status_code, command.json()) == (503, DISABLED)
    assert (events.status_code, events.json()) == (503, DISABLED)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "playbook.slack"] == [
        ("playbook.slack", "INFO", "Slack is disabled: set PLAYBOOK_SLACK_SIGNING_SECRET")
    ]


def test_slack_routes_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert [p for p in paths if p.startswith("/slack")] == []


# ------------------------------------------------------------------ slash command


def test_a_matched_question_gets_the_answer_card_with_its_buttons(client: TestClient) -> None:
    assert ask(client, "update address on order") == {
        "response_type": "ephemeral", "text": MACRO,
        "blocks": [*CHANGE_ADDRESS_BLOCKS, actions(1, token_of(client, 1))]}


def test_slack_questions_are_logged_for_review(client: TestClient) -> None:
    ask(client, "update address on order")
    store = client.app.state.feedback_store  # type: ignore[attr-defined]
    assert [(q.question, q.entry_id, q.matched, q.channel) for q in store.queries()] == [
        ("update address on order", "change-address", True, "slack")]


SLA_CONFIDENCE, CANCEL_CONFIDENCE, ADDRESS_CONFIDENCE = 0.1235, 0.0148, 0.0


def test_a_question_without_a_confident_match_says_so_and_suggests(client: TestClient) -> None:
    reply = ask(client, "the weather &lt;today&gt; please")
    token = token_of(client, 1)
    answer = client.app.state.engine.ask("the weather <today> please")  # type: ignore[attr-defined]
    assert [(m.entry.id, round(m.confidence, 4)) for m in answer.alternatives] == [
        ("shipping-sla", SLA_CONFIDENCE), ("cancel-order", CANCEL_CONFIDENCE),
        ("change-address", ADDRESS_CONFIDENCE)]

    def show(text: str, entry_id: str, confidence: float) -> dict[str, Any]:
        return {**section(text), "accessory": button("Show", "show_alternative", q=1, t=token,
                                                     e=entry_id, c=confidence)}

    assert reply == {
        "response_type": "ephemeral",
        "text": "No confident match in the playbook.",
        "blocks": [
            section("*No confident match* in the playbook for “the weather &lt;today&gt; "
                    "please”."),
            section("*Closest entries* (check before using)"),
            show("• “What is our SLA for shipping most orders” · confidence 12% (low)\n"
                 "3-5 business days", "shipping-sla", SLA_CONFIDENCE),
            show("• “Customer wants to cancel an order” · confidence 1% (low)\n"
                 "send #SD - Too Late to Cancel\nMacro: `#SD - Too Late to Cancel`",
                 "cancel-order", CANCEL_CONFIDENCE),
            show("• “Customer wants to change the shipping address” · confidence 0% (low)\n"
                 f"Macro: `{MACRO}`", "change-address", ADDRESS_CONFIDENCE),
            actions(1, token),
        ],
    }
    public = ask(client, "public the weather &lt;today&gt; please")
    assert public["blocks"][1:] == [  # in the channel, only what is likely; no buttons
        section("*Closest entries* (check before using)"),
        section("• “What is our SLA for shipping most orders” · confidence 12% (low)\n"
                "3-5 business days")]


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "public", "public help"])
def test_empty_text_or_help_gets_usage_help(client: TestClient, text: str) -> None:
    assert ask(client, text) == HELP


@pytest.mark.parametrize("text", ["public update address on order",
                                  "update address on order public"])
def test_the_public_keyword_answers_in_channel(client: TestClient, text: str) -> None:
    assert ask(client, text) == {"response_type": "in_channel", **CHANGE_ADDRESS}


def test_the_public_replies_setting_answers_in_channel(
    slack_settings: Settings, tiny_engine: Engine
) -> None:
    settings = slack_settings.model_copy(update={"slack_public_replies": True})
    client = TestClient(create_app(settings, tiny_engine))
    assert ask(client, "update address on order") == {"response_type": "in_channel",
                                                      **CHANGE_ADDRESS}


def test_an_unusable_question_gets_a_friendly_private_message(client: TestClient) -> None:
    assert ask(client, "public " + "x" * 4001) == {
        "response_type": "ephemeral",
        "text": "Sorry, I can't answer that: the question is 4001 characters long; "
                "the limit is 4000.",
    }


def test_a_busy_engine_acknowledges_then_delivers_to_the_response_url(
    client: TestClient, tiny_engine: Engine, receiver: Receiver
) -> None:
    tiny_engine.busy = True
    response_url = f"{receiver.url}commands/T1DC2JH3J/397700885554/abc"

    reply = ask(client, "public update address on order", response_url=response_url)

    assert reply == {
        "response_type": "ephemeral",
        "text": "Working on it: the playbook is loading. The answer will follow here shortly.",
    }
    assert [(r.path, r.headers["Content-Type"], r.json()) for r in receiver.requests] == [
        ("/commands/T1DC2JH3J/397700885554/abc", "application/json;charset=utf-8",
         {"response_type": "in_channel", **CHANGE_ADDRESS}),
    ]


@pytest.mark.parametrize("response_url", [
    "http://169.254.169.254/latest/meta-data/",
    "https://hooks.slack.com.evil.example/commands/1",
    "",
])
def test_a_busy_engine_never_calls_a_response_url_outside_slack(
    client: TestClient, tiny_engine: Engine, receiver: Receiver, response_url: str
) -> None:
    tiny_engine.busy = True
    assert ask(client, "update address on order", response_url=response_url) == {
        "response_type": "ephemeral",
        "text": "The playbook is loading; please ask again in a minute.",
    }
    assert receiver.requests == []


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://hooks.slack.com/commands/T1/2/x", True),
    ("https://HOOKS.slack.com/commands/T1/2/x", True),
    ("http://hooks.slack.com/commands/T1/2/x", False),
    ("https://hooks.slack.com.evil.example/commands", False),
    ("https://user@hooks.slack.com/commands", False),
    ("https://hooks.slack.com:8443/commands", False),
    ("https://example.com/?https://hooks.slack.com/", False),
    ("http://127.0.0.1:8123/commands/1", True),
    ("http://127.0.0.1:8123/elsewhere", False),
    ("http://127.0.0.1:81234/commands/1", False),
    ("file:///etc/passwd", False),
])
def test_response_urls_are_limited_to_slack_and_the_configured_base(
    url: str, allowed: bool
) -> None:
    assert allowed_response_url(url, "http://127.0.0.1:8123/commands/") is allowed


# ------------------------------------------------------------------ events


def mention(text: str, event_id: str = "Ev0LAH5KK6", **event: str) -> bytes:
    return json.dumps({
        "token": "ZZZZZZWSxiZZZ2yIvs3peJ", "team_id": "T1DC2JH3J", "api_app_id": "A123456",
        "type": "event_callback", "event_id": event_id, "event_time": 1515449522,
        "authorizations": [{"enterprise_id": None, "team_id": "T1DC2JH3J", "user_id": "U0BOT",
                            "is_bot": True, "is_enterprise_install": False}],
        "event": {"type": "app_mention", "user": "U2CERLKJA", "text": text,
                  "ts": "1515449522.000016", "channel": "C0LAN2Q65",
                  "event_ts": "1515449522.000016", **event},
    }).encode()


def test_url_verification_returns_the_challenge(client: TestClient) -> None:
    body = json.dumps({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "type": "url_verification",
                       "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    response = client.post("/slack/events", content=body, headers=json_headers(body.encode()))
    assert (response.status_code, response.json()) == (
        200, {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})


def test_a_mention_is_answered_in_its_thread(client: TestClient, receiver: Receiver) -> None:
    body = mention("<@U0BOT> update address on order")
    response = client.post("/slack/events", content=body, headers=json_headers(body))

    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert [(r.path, r.headers["Authorization"], r.json()) for r in receiver.requests] == [
        ("/api/chat.postMessage", f"Bearer {BOT_TOKEN}",
         {"channel": "C0LAN2Q65", "thread_ts": "1515449522.000016", **CHANGE_ADDRESS}),
    ]


def test_a_mention_inside_a_thread_is_answered_in_that_thread(
    client: TestClient, receiver: Receiver
) -> None:
    body = mention("<@U0BOT|playbook> update address on order", thread_ts="1515449000.000001")
    client.post("/slack/events", content=body, headers=json_headers(body))
    assert [r.json()["thread_ts"] for r in receiver.requests] == ["1515449000.000001"]


def test_a_direct_message_is_answered_and_a_bare_mention_gets_help(
    client: TestClient, receiver: Receiver
) -> None:
    direct = mention("update address on order", event_id="Ev1", type="message",
                     channel_type="im", channel="D0PNCRP9N")
    bare = mention("<@U0BOT>", event_id="Ev2")
    for body in (direct, bare):
        client.post("/slack/events", content=body, headers=json_headers(body))

    assert [r.json() for r in receiver.requests] == [
        {"channel": "D0PNCRP9N", "thread_ts": "1515449522.000016", **CHANGE_ADDRESS},
        {"channel": "C0LAN2Q65", "thread_ts": "1515449522.000016",
         "text": "How to ask the support playbook.", "blocks": [section(HELP_TEXT)]},
    ]


def test_a_retried_event_is_answered_once(client: TestClient, receiver: Receiver) -> None:
    body = mention("<@U0BOT> update address on order")
    first = client.post("/slack/events", content=body, headers=json_headers(body))
    retry = client.post("/slack/events", content=body, headers=json_headers(
        body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}))

    assert [first.json(), retry.json()] == [{"ok": True}, {"ok": True}]
    assert [r.path for r in receiver.requests] == ["/api/chat.postMessage"]


@pytest.mark.parametrize("event", [
    {"bot_id": "B0BOT", "user": "U0BOT"},  # our own reply coming back
    {"user": "U0BOT", "type": "message", "channel_type": "im"},
    {"subtype": "message_changed", "type": "message", "channel_type": "im"},
    {"type": "message", "channel_type": "channel"},
    {"type": "reaction_added"},
])
def test_bot_messages_edits_and_other_events_are_ignored(
    client: TestClient, receiver: Receiver, event: dict[str, str]
) -> None:
    body = mention("<@U0BOT> update address on order", **event)
    response = client.post("/slack/events", content=body, headers=json_headers(body))
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert receiver.requests == []


def test_events_without_a_bot_token_are_acknowledged_but_not_answered(
    slack_settings: Settings, tiny_engine: Engine, receiver: Receiver
) -> None:
    settings = slack_settings.model_copy(update={"slack_bot_token": None})
    client = TestClient(create_app(settings, tiny_engine))
    body = mention("<@U0BOT> update address on order")
    response = client.post("/slack/events", content=body, headers=json_headers(body))
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert receiver.requests == []


def test_a_body_that_is_not_json_is_a_400(client: TestClient) -> None:
    response = client.post("/slack/events", content=b"nope", headers=json_headers(b"nope"))
    assert (response.status_code, response.json()) == (400, {"detail": "the body is not JSON"})


# ------------------------------------------------------------------ escaping

HOSTILE_ENTRY = """\
- id: outage-announcement
  question: How do I announce an outage <!channel>
  answer: 'Tell everyone <!channel> & see <https://evil|click>'
  macro: '#SD - Outage <Notice> & <!here>'
  alternates:
  - announce outage to everyone
  tags: [outage]
  source: {file: tiny.txt, line: 9}
"""


@pytest.fixture
def hostile_client(slack_settings: Settings, tiny_knowledge: Path,
                   fake_embedder: Embedder) -> TestClient:
    playbook = tiny_knowledge / "playbook.yaml"
    text = playbook.read_text(encoding="utf-8")
    playbook.write_text(text.replace("needs_review:", HOSTILE_ENTRY + "needs_review:"),
                        encoding="utf-8")
    engine = Engine(slack_settings, fake_embedder)
    engine.load()
    return TestClient(create_app(slack_settings, engine))


def test_knowledge_base_text_arrives_escaped(hostile_client: TestClient) -> None:
    assert ask(hostile_client, "announce outage to everyone") == {
        "response_type": "ephemeral",
        "text": "Tell everyone &lt;!channel&gt; &amp; see &lt;https://evil|click&gt; "
                "(macro: #SD - Outage &lt;Notice&gt; &amp; &lt;!here&gt;)",
        "blocks": [
            asked("announce outage to everyone"),
            section("Tell everyone &lt;!channel&gt; &amp; see &lt;https://evil|click&gt;"),
            section("*Macro to send*\n```#SD - Outage &lt;Notice&gt; &amp; &lt;!here&gt;```"),
            context("Matched “How do I announce an outage &lt;!channel&gt;” · "
                    "confidence 100% (high)"),
            actions(1, token_of(hostile_client, 1)),
        ],
    }


def test_user_text_arrives_escaped(hostile_client: TestClient) -> None:
    reply = ask(hostile_client, "the weather <!channel> <https://evil|click>")
    assert reply["blocks"][0] == section(
        "*No confident match* in the playbook for “the weather &lt;!channel&gt; "
        "&lt;https://evil|click&gt;”.")


# ------------------------------------------------------------------ text helpers


def test_long_text_is_clipped_to_slacks_limit_without_breaking_an_escape() -> None:
    entry = Entry(id="long", question="Long one", answer="a" * 2997 + "&b")
    answer = Answer("long", True, Match(entry, 0.9, 0.9, "Long one"), False)
    assert answer_message(answer)["blocks"][1] == section("a" * 2997 + "…")



@pytest.mark.parametrize(("text", "bot", "question"), [
    ("<@U0BOT> update &amp; check", "U0BOT", "update & check"),
    ("hey <@U0BOT|playbook>, is &lt;this&gt; ok", "U0BOT", "hey , is <this> ok"),
    ("<@U0BOT> ask <@U2CERLKJA>", "U0BOT", "ask <@U2CERLKJA>"),
    ("<@U0BOT> <@W0ALSO> cancel order", None, "cancel order"),
])
def test_questions_lose_the_bots_mention_and_slacks_escapes(
    text: str, bot: str | None, question: str
) -> None:
    assert question_from_slack(text, bot) == question


@pytest.mark.parametrize(("text", "expected"), [
    ("public cancel my order", ("cancel my order", True)),
    ("cancel my order PUBLIC", ("cancel my order", True)),
    ("is the publication public-facing", ("is the publication public-facing", False)),
    ("cancel  my order", ("cancel my order", False)),
])
def test_the_public_keyword(text: str, expected: tuple[str, bool]) -> None:
    assert split_public_keyword(text) == expected


def test_event_ids_are_remembered_for_a_while_and_within_a_bound() -> None:
    now = [1000.0]
    seen = EventDeduper(max_size=2, ttl_seconds=60.0, clock=lambda: now[0])
    answers = [seen.first_time("a"), seen.first_time("a"), seen.first_time("b")]
    now[0] += 61
    answers += [seen.first_time("a"), seen.first_time("c"), seen.first_time("d"),
                seen.first_time("a")]
    assert answers == [True, False, True, True, True, True, True]


# ------------------------------------------------------------------ the real model


@pytest.mark.model
def test_the_best_buy_address_question_gets_the_too_late_macro(seed_engine: Engine) -> None:
    settings = seed_engine.settings.model_copy(update={"slack_signing_secret": SECRET})
    client = TestClient(create_app(settings, seed_engine))

    reply = ask(client, "customer wants to change address on a best buy order")

    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == MACRO
    assert reply["blocks"][1:3] == [
        section(f"*Macro to send*\n```{MACRO}```"),
        context("Matched “Customer is requesting change to shipping address and the vendor is "
                "best buy.” · confidence 100% (high) · applies when vendor is Best Buy; address "
                "is the shipping address"),
    ]


# ------------------------------------------------------------------ buttons (interactions)


def press_body(action_id: str, response_url: str, **value: object) -> bytes:
    """A `block_actions` payload as Slack posts it when one of our buttons is pressed."""
    payload = {
        "type": "block_actions", "user": {"id": "U2CERLKJA", "username": "roadrunner"},
        "api_app_id": "A123456", "token": "xyzz0WbapA4vBCDEFasx0q6G",
        "container": {"type": "message", "is_ephemeral": True},
        "trigger_id": "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        "team": {"id": "T1DC2JH3J"}, "channel": {"id": "G8PSS9T3V"},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b1",
                     "value": json.dumps(value, separators=(",", ":")),
                     "action_ts": "1548426417.840180"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def press(client: TestClient, receiver: Receiver, action_id: str, **value: object) -> Any:
    """Press a button; what the app then sent to the response_url."""
    before = len(receiver.requests)
    body = press_body(action_id, f"{receiver.url}commands/T1/2/x", **value)
    response = client.post("/slack/interactions", content=body, headers=form_headers(body))
    assert (response.status_code, response.content) == (200, b"")
    assert len(receiver.requests) == before + 1
    return receiver.requests[-1].json()


def test_thumbs_from_slack_land_in_the_chats_feedback_store(
        client: TestClient, receiver: Receiver) -> None:
    ask(client, "update address on order")
    token = token_of(client, 1)
    store = client.app.state.feedback_store  # type: ignore[attr-defined]

    assert press(client, receiver, "feedback_down", q=1, t=token) == {
        "response_type": "ephemeral", "replace_original": False,
        "text": "Thanks: noted as wrong; it goes to the review queue."}
    assert store.query(1).feedback == Feedback("down")
    assert press(client, receiver, "feedback_up", q=1, t=token) == {
        "response_type": "ephemeral", "replace_original": False, "text": "Thanks: noted as right."}
    assert store.query(1).feedback == Feedback("up")


def test_show_replaces_the_answer_and_its_thumbs_up_picks_that_card(
        client: TestClient, receiver: Receiver) -> None:
    ask(client, "the weather today please")
    token = token_of(client, 1)

    shown = press(client, receiver, "show_alternative", q=1, t=token, e="shipping-sla", c=0.1235)

    assert shown == {"response_type": "ephemeral", "replace_original": True,
                     "text": "3-5 business days", "blocks": [
                         asked("the weather today please"),
                         section("3-5 business days"),
                         context("You chose “What is our SLA for shipping most orders” from the "
                                 "alternatives · confidence 12% (low)"),
                         actions(1, token, share=False, e="shipping-sla")]}
    assert press(client, receiver, "feedback_up", q=1, t=token, e="shipping-sla") == {
        "response_type": "ephemeral", "replace_original": False,
        "text": "Thanks: noted that “What is our SLA for shipping most orders” was the right card."}
    store = client.app.state.feedback_store  # type: ignore[attr-defined]
    assert store.query(1).feedback == Feedback("down", picked_entry_id="shipping-sla")


def test_share_posts_the_answer_in_the_channel_without_buttons_or_noise(
        client: TestClient, receiver: Receiver) -> None:
    ask(client, "update address on order")
    shared = press(client, receiver, "share", q=1, t=token_of(client, 1))
    assert shared == {"response_type": "in_channel", "replace_original": False, **CHANGE_ADDRESS}
    store = client.app.state.feedback_store  # type: ignore[attr-defined]
    assert len(store.queries()) == 1  # shared, not asked again


@pytest.mark.parametrize("action_id", ["feedback_up", "show_alternative", "share"])
def test_a_button_with_a_forged_token_changes_nothing(
        client: TestClient, receiver: Receiver, action_id: str) -> None:
    ask(client, "update address on order")
    reply = press(client, receiver, action_id, q=1, t="0" * 32, e="shipping-sla", c=0.5)
    assert reply == {"response_type": "ephemeral", "replace_original": False, "text": (
        "That answer is no longer on record (it may have expired), so nothing was done.")}
    assert client.app.state.feedback_store.query(1).feedback is None  # type: ignore[attr-defined]


def test_a_replayed_press_is_handled_once_and_foreign_payloads_are_refused(
        client: TestClient, receiver: Receiver) -> None:
    ask(client, "update address on order")
    body = press_body("feedback_down", f"{receiver.url}commands/T1/2/x", q=1, t=token_of(client, 1))
    headers = form_headers(body)
    replies = [client.post("/slack/interactions", content=body, headers=headers).status_code
               for _ in range(3)]
    assert (replies, len(receiver.requests)) == ([200, 200, 200], 1)
    for bad in (b"payload=%7B%7D", b"payload=%ff%fe", b"nothing=here",
                press_body("delete_everything", f"{receiver.url}commands/1", q=1, t="x"),
                press_body("feedback_up", f"{receiver.url}commands/1", q=2**70, t="x"),
                press_body("show_alternative", f"{receiver.url}commands/1", q=1, t="x",
                           e="shipping-sla", c=float("nan"))):
        response = client.post("/slack/interactions", content=bad, headers=form_headers(bad))
        assert (response.status_code, response.json()) == (
            400, {"detail": "not a Slack button press this app sent"})
    outside = press_body("share", "http://169.254.169.254/latest/", q=1, t=token_of(client, 1))
    assert client.post("/slack/interactions", content=outside,
                       headers=form_headers(outside)).status_code == 200
    assert len(receiver.requests) == 1  # nothing sent outside Slack


def test_a_question_several_cards_fit_asks_for_a_detail() -> None:
    answer = Answer("PO status", False, None, True)
    assert no_match_message(answer)["blocks"] == [
        section("*No confident match* in the playbook for “PO status”."),
        section("Several entries could fit and the question does not say which: add a detail "
                "(the vendor, how long ago, the order's status) and ask again."),
        section("Nothing in the playbook comes close."),
    ]
    # Named out of scope, it is not asked for a detail.
    named = Answer("PO status", False, None, True, out_of_scope="po status of a gift card")
    assert len(no_match_message(named)["blocks"]) == 3


def test_a_question_the_playbook_marks_out_of_scope_is_named_as_such() -> None:
    answer = Answer("is the <b>office</b> open", False, None, False,
                    out_of_scope="is the <b>office</b> open today")
    assert no_match_message(answer)["blocks"] == [
        section("*No confident match* in the playbook for “is the &lt;b&gt;office&lt;/b&gt; "
                "open”."),
        section("*Not in the playbook*: it is nearest to “is the &lt;b&gt;office&lt;/b&gt; open "
                "today”, a question the playbook marks as one it does not answer."),
        section("Nothing in the playbook comes close."),
    ]
