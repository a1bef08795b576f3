"""Slack buttons: POST /slack/interactions receives the `block_actions` Slack sends when an
agent presses 👍/👎, "Show" on an alternative, or "Share in channel" on a private answer.

Signed and replay-checked like the other Slack routes. Each button carries the logged
question's id and feedback token (the chat's proof of having been given the answer), so the
feedback lands in the same store, review queue and figures as the chat's. Slack wants a 200
within three seconds; the work is done after it and the result sent to the `response_url`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request, Response

from app.engine.engine import Engine
from app.errors import EntryNotFound, FeedbackNotSaved, QueryNotFound
from app.store.feedback import Feedback, FeedbackStore
from app.web.deps import MAX_QUERY_ID, EngineDep, StoreDep
from app.web.slack.blocks import Buttons, Message, answer_message, notice_message, shown_entry_message
from app.web.slack.routes import (
    ASKED_ALTERNATIVES,
    Context,
    VerifiedBody,
    allowed_response_url,
    post_to_response_url,
)

log = logging.getLogger("playbook.slack")

ACTIONS = ("feedback_up", "feedback_down", "show_alternative", "share")
EXPIRED = "That answer is no longer on record (it may have expired), so nothing was done."

router = APIRouter(prefix="/slack", include_in_schema=False)


@dataclass(frozen=True)
class ButtonPress:
    """One pressed button of ours, read from Slack's interaction payload."""

    action_id: str
    query_id: int
    token: str
    entry_id: str | None
    confidence: float
    response_url: str
    user_id: str

    @classmethod
    def from_form(cls, body: bytes) -> ButtonPress:
        """Anything that is not one of our buttons in a well-formed payload is a 400."""
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True, errors="strict")
            payload = json.loads(form["payload"][0])
            action = payload["actions"][0]
            value = json.loads(action["value"])
            press = cls(action_id=str(action["action_id"]), query_id=int(value["q"]),
                        token=str(value["t"]), entry_id=_optional_str(value.get("e")),
                        confidence=float(value.get("c", 0.0)),
                        response_url=str(payload["response_url"]),
                        user_id=str(payload.get("user", {}).get("id", "")))
        except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise HTTPException(400, "not a Slack button press this app sent") from None
        if (payload.get("type") != "block_actions" or press.action_id not in ACTIONS
                or not 1 <= press.query_id <= MAX_QUERY_ID or not 0 <= press.confidence <= 1):
            raise HTTPException(400, "not a Slack button press this app sent")
        return press


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("an entry id is a string")
    return value


@router.post("/interactions")
async def interactions(body: VerifiedBody, context: Context, engine: EngineDep,
                       store: StoreDep, request: Request,
                       background: BackgroundTasks) -> Response:
    if not context.seen_signatures.first_time(request.headers.get("x-slack-signature", "")):
        return Response(status_code=200)  # a replay: already handled
    press = ButtonPress.from_form(body)
    if not allowed_response_url(press.response_url, context.settings.slack_response_url_base):
        log.warning("not answering a button press at %r: not a Slack URL", press.response_url)
        return Response(status_code=200)
    log.info("button %s from %s", press.action_id, press.user_id)
    background.add_task(handle_press, engine, store, press)
    return Response(status_code=200)


def handle_press(engine: Engine, store: FeedbackStore, press: ButtonPress) -> None:
    try:
        reply = _reply(engine, store, press)
    except QueryNotFound:
        reply = _private(notice_message(EXPIRED))
    except (EntryNotFound, FeedbackNotSaved) as exc:
        reply = _private(notice_message(f"Sorry, that did not work: {exc}."))
    post_to_response_url(press.response_url, reply)


def _reply(engine: Engine, store: FeedbackStore, press: ButtonPress) -> dict[str, Any]:
    if press.action_id in ("feedback_up", "feedback_down"):
        return _private(notice_message(_record_feedback(engine, store, press)))
    if not store.token_matches(press.query_id, press.token):
        raise QueryNotFound(press.query_id)
    question = store.query(press.query_id).question
    if press.action_id == "show_alternative":
        entry = engine.entry(press.entry_id or "")
        buttons = Buttons(press.query_id, press.token, shareable=False)
        return {"response_type": "ephemeral", "replace_original": True,
                **shown_entry_message(question, entry, press.confidence, buttons)}
    answer = engine.ask(question, top_k=ASKED_ALTERNATIVES)  # share: the same answer, in public
    return {"response_type": "in_channel", "replace_original": False, **answer_message(answer)}


def _record_feedback(engine: Engine, store: FeedbackStore, press: ButtonPress) -> str:
    if press.action_id == "feedback_down":
        feedback, thanks = Feedback("down"), "Thanks: noted as wrong; it goes to the review queue."
    elif press.entry_id:  # 👍 on a card chosen from the alternatives
        entry = engine.entry(press.entry_id)
        feedback = Feedback("down", picked_entry_id=entry.id)
        thanks = f"Thanks: noted that “{entry.question}” was the right card."
    else:
        feedback, thanks = Feedback("up"), "Thanks: noted as right."
    store.record_feedback(press.query_id, feedback, token=press.token)
    return thanks


def _private(message: Message) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, **message}
