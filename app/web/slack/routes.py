"""Slack routes: verify the signature, translate slash commands and events, reply in Block Kit.

POST /slack/command answers `/playbook <question>`; POST /slack/events answers app mentions and
direct messages in their thread. Every request must carry a valid Slack signature; without a
signing secret the routes answer 503.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeGuard
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.engine.engine import Engine
from app.errors import IndexInvalid, PlaybookError
from app.store.asking import ask_and_log
from app.store.feedback import FeedbackStore
from app.web.deps import EngineDep, StoreDep
from app.web.slack.blocks import (
    Buttons,
    Message,
    answer_message,
    help_message,
    notice_message,
    question_from_slack,
    split_public_keyword,
)
from app.web.slack.dedupe import Deduper, SharedDeduper

# slack_sdk is imported where it is used, so a server without Slack never loads it (~40 ms of
# `playbook serve`'s start).
if TYPE_CHECKING:
    from slack_sdk.signature import Clock, SignatureVerifier

log = logging.getLogger("playbook.slack")

DISABLED = "Slack is disabled: set PLAYBOOK_SLACK_SIGNING_SECRET"
NOT_SIGNED = "the request does not carry a valid, current Slack signature"
REPLAYED = "This request was already received and answered."
# Signatures older than five minutes are refused anyway; remember them a little longer.
REPLAY_WINDOW_SECONDS = 600.0
SLACK_HOOKS_BASE = "https://hooks.slack.com/"
WORKING = "Working on it: the playbook is loading. The answer will follow here shortly."
TRY_AGAIN = "The playbook is loading; please ask again in a minute."
ASKED_ALTERNATIVES = 3
LOAD_WAIT_SECONDS = 120.0  # a response_url stays valid for 30 minutes
OUTBOUND_TIMEOUT_SECONDS = 10


@dataclass
class SlackContext:
    """What the Slack routes share, kept on `app.state.slack`. Tests may swap the verifier's
    clock (`app.state.slack.verifier.clock`) to replay a request signed in the past."""

    settings: Settings
    verifier: SignatureVerifier | None
    seen_events: Deduper
    seen_signatures: Deduper


@dataclass(frozen=True)
class SlashCommand:
    """The fields of Slack's slash-command form this app uses; the others (token, team_domain,
    trigger_id, the Enterprise Grid ones, ...) are accepted and ignored."""

    text: str
    command: str
    response_url: str
    user_id: str
    channel_id: str

    @classmethod
    def from_form(cls, body: bytes) -> SlashCommand:
        """Percent-escapes that are not UTF-8 are refused (400), never read as U+FFFD."""
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise HTTPException(400, "the form is not UTF-8 text") from None
        form = {k: v[0] for k, v in fields.items()}
        return cls(text=form.get("text", ""), command=form.get("command") or "/playbook",
                   response_url=form.get("response_url", ""), user_id=form.get("user_id", ""),
                   channel_id=form.get("channel_id", ""))


def install_slack(app: FastAPI, settings: Settings, clock: Clock | None = None) -> None:
    """Mount /slack/*; without a signing secret the routes stay mounted and answer 503."""
    secret = (settings.slack_signing_secret or "").strip()
    verifier = None
    if secret:
        from slack_sdk.signature import Clock, SignatureVerifier

        verifier = SignatureVerifier(secret, clock or Clock())
    if verifier is None:
        log.info(DISABLED)  # teams without Slack need no warning on every start
    elif not settings.slack_bot_token:
        log.warning("PLAYBOOK_SLACK_BOT_TOKEN is not set: slash commands work, "
                    "mentions and direct messages get no reply")
    store = app.state.feedback_store
    app.state.slack = SlackContext(
        settings, verifier, SharedDeduper(store, "event"),
        SharedDeduper(store, "signature", ttl_seconds=REPLAY_WINDOW_SECONDS))
    app.include_router(router)
    from app.web.slack.interactions import router as interactions  # it imports this module

    app.include_router(interactions)


async def slack_context(request: Request) -> SlackContext:
    context: SlackContext = request.app.state.slack
    return context


async def verified_body(request: Request) -> bytes:
    """The raw body, once its signature checks out (Slack signs the exact bytes it sent)."""
    verifier = (await slack_context(request)).verifier
    if verifier is None:
        raise HTTPException(503, DISABLED)
    body = await request.body()
    if not signed_by_slack(verifier, body, request.headers):
        raise HTTPException(401, NOT_SIGNED)
    return body


def signed_by_slack(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    try:
        return verifier.is_valid(body, headers.get("x-slack-request-timestamp"),
                                 headers.get("x-slack-signature"))
    except ValueError:  # a timestamp that is not a number, or a body that is not UTF-8
        return False


Context = Annotated[SlackContext, Depends(slack_context)]
VerifiedBody = Annotated[bytes, Depends(verified_body)]
router = APIRouter(prefix="/slack", include_in_schema=False)


@router.post("/command")
async def command(body: VerifiedBody, context: Context, engine: EngineDep, store: StoreDep,
                  request: Request, background: BackgroundTasks) -> Message:
    # A slash command carries no id; its signature is unique to one delivery, so one seen
    # before is a replay: answered with a notice, neither asked nor logged again.
    if not context.seen_signatures.first_time(request.headers.get("x-slack-signature", "")):
        return ephemeral(notice_message(REPLAYED))
    slash = SlashCommand.from_form(body)
    question, public = split_public_keyword(question_from_slack(slash.text))
    if not question or question.casefold() == "help":
        return ephemeral(help_message(slash.command))
    response_type = "in_channel" if public or context.settings.slack_public_replies else "ephemeral"
    log.info("slash command from %s in %s", slash.user_id, slash.channel_id)
    if engine.ready:
        message, answered = await run_in_threadpool(
            lambda: answer_for(engine, question, store, private=response_type == "ephemeral"))
        return {"response_type": response_type if answered else "ephemeral", **message}
    if not allowed_response_url(slash.response_url, context.settings.slack_response_url_base):
        log.warning("not delivering to response_url %r: not a Slack URL", slash.response_url)
        return ephemeral(notice_message(TRY_AGAIN))
    background.add_task(deliver_later, engine, question, slash.response_url, response_type,
                        store)
    return ephemeral(notice_message(WORKING))


@router.post("/events")
async def events(body: VerifiedBody, context: Context, engine: EngineDep, store: StoreDep,
                 request: Request, background: BackgroundTasks) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise HTTPException(400, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise HTTPException(400, "the body is not a JSON object")
    if payload.get("type") == "url_verification":
        return {"challenge": str(payload.get("challenge", ""))}
    event = payload.get("event")
    bot_user_id = authorized_bot_user(payload)
    if payload.get("type") != "event_callback" or not is_question(event, bot_user_id):
        return {"ok": True}
    event_id = payload.get("event_id")
    if isinstance(event_id, str) and not context.seen_events.first_time(event_id):
        log.info("event %s already answered (retry %s)", event_id,
                 request.headers.get("x-slack-retry-num"))
        return {"ok": True}
    question = question_from_slack(str(event.get("text", "")), bot_user_id)
    thread_ts = str(event.get("thread_ts") or event.get("ts", ""))
    background.add_task(reply_in_thread, engine, context.settings,
                        str(event.get("channel", "")), thread_ts, question,
                        store)
    return {"ok": True}


def ephemeral(message: Message) -> Message:
    return {"response_type": "ephemeral", **message}


def answer_for(engine: Engine, question: str, store: FeedbackStore | None = None,
               wait_seconds: float = 0.0, private: bool = False) -> tuple[Message, bool]:
    """The reply to a question and whether it is an answer (apologies are never public).
    Waits up to `wait_seconds` for an engine that has not loaded an index yet. The question is
    logged for review like the chat's, when a store is given; a `private` reply to a logged
    question gets the feedback, show and share buttons."""
    if not question or question.casefold() == "help":
        return help_message(), True
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if store is None:
                answer, query_id = engine.ask(question, top_k=ASKED_ALTERNATIVES), None
            else:
                answer, query_id = ask_and_log(engine, store, question, channel="slack",
                                               top_k=ASKED_ALTERNATIVES)
            buttons = None
            if private and store is not None and query_id is not None:
                buttons = Buttons(query_id, store.feedback_token(query_id))
            return answer_message(answer, buttons), True
        except IndexInvalid:
            if time.monotonic() >= deadline:
                return notice_message(TRY_AGAIN), False
            time.sleep(0.5)
        except PlaybookError as exc:
            return notice_message(f"Sorry, I can't answer that: {exc}."), False
        except Exception:  # Slack shows a bare "failed" for a 500; say something useful
            log.exception("answering a Slack question failed")
            return notice_message("Sorry, something went wrong; the details are in the "
                                  "server log."), False


def allowed_response_url(url: str, override_base: str | None) -> bool:
    """Only Slack's own hooks (or the configured test base): the URL comes from the request
    body, and fetching whatever it names would let anyone who can sign make us call anywhere."""
    target = urlsplit(url)
    for base in filter(None, (SLACK_HOOKS_BASE, override_base)):
        allowed = urlsplit(base)
        if (target.scheme == allowed.scheme and target.netloc.lower() == allowed.netloc.lower()
                and target.path.startswith(allowed.path or "/")):
            return True
    return False


def deliver_later(engine: Engine, question: str, response_url: str, response_type: str,
                  store: FeedbackStore | None = None) -> None:
    message, answered = answer_for(engine, question, store, wait_seconds=LOAD_WAIT_SECONDS,
                                   private=response_type == "ephemeral")
    post_to_response_url(response_url,
                         {"response_type": response_type if answered else "ephemeral", **message})


def post_to_response_url(response_url: str, payload: dict[str, Any]) -> None:
    """Send to a response_url already checked by `allowed_response_url`; failures are logged."""
    from slack_sdk.errors import SlackClientError
    from slack_sdk.webhook import WebhookClient

    try:
        response = WebhookClient(response_url, timeout=OUTBOUND_TIMEOUT_SECONDS).send_dict(payload)
    except (OSError, SlackClientError) as exc:
        log.warning("delivering to response_url failed: %s", exc)
        return
    if response.status_code != 200:
        log.warning("response_url answered %s: %s", response.status_code, response.body)


def authorized_bot_user(payload: dict[str, Any]) -> str | None:
    """This app's bot user id, from the authorizations Slack sends with each event."""
    authorizations = payload.get("authorizations")
    for authorization in authorizations if isinstance(authorizations, list) else []:
        if isinstance(authorization, dict) and authorization.get("is_bot"):
            user_id = authorization.get("user_id")
            return str(user_id) if user_id else None
    return None


def is_question(event: object, bot_user_id: str | None) -> TypeGuard[dict[str, Any]]:
    """A mention of the app, or a direct message to it; never a bot's own message (our replies
    come back as events and would otherwise loop) nor an edit, join or other subtype."""
    if not isinstance(event, dict) or event.get("bot_id") or event.get("subtype"):
        return False
    if bot_user_id is not None and event.get("user") == bot_user_id:
        return False
    kind = event.get("type")
    return kind == "app_mention" or (kind == "message" and event.get("channel_type") == "im")


def reply_in_thread(engine: Engine, settings: Settings, channel: str, thread_ts: str,
                    question: str, store: FeedbackStore | None = None) -> None:
    if not settings.slack_bot_token:
        log.warning("cannot answer a mention: set PLAYBOOK_SLACK_BOT_TOKEN")
        return
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError

    message, _ = answer_for(engine, question, store, wait_seconds=LOAD_WAIT_SECONDS)
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url,
                       timeout=OUTBOUND_TIMEOUT_SECONDS)
    try:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=message["text"],
                                blocks=message.get("blocks"))
    except (OSError, SlackApiError, SlackClientError) as exc:
        log.warning("chat.postMessage failed: %s", exc)
