"""The chat's JSON API: ask (answered and logged for review) and 👍 / 👎 feedback."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.records import Answer, confidence_band
from app.store.asking import ask_and_log
from app.store.feedback import Feedback
from app.web.deps import MAX_QUERY_ID, EngineDep, StoreDep
from app.web.middleware.request_log import note_answer
from app.web.schemas import (
    STRICT_BODY,
    AlternativeOut,
    AnswerOut,
    AskRequest,
    WholeNumber,
    error_responses,
    json_response,
)

router = APIRouter(prefix="/api", responses=error_responses(400, 404, 413, 415, 422, 429, 503))


class ChatAlternativeOut(AlternativeOut):
    band: str = Field(description="high / medium / low, from the calibrated confidence.")


class ChatAnswerOut(AnswerOut):
    band: str = Field(description="high / medium / low, from the calibrated confidence.")
    query_id: int | None = Field(description="Attach feedback to this; null when not logged.")
    feedback_token: str | None = Field(
        description="Send it back with feedback on this answer: it proves you were given it.")
    alternatives: list[ChatAlternativeOut]  # type: ignore[assignment]

    @classmethod
    def build(cls, answer: Answer, query_id: int | None, token: str | None) -> ChatAnswerOut:
        plain = AnswerOut.from_answer(answer).model_dump()
        plain["alternatives"] = [
            ChatAlternativeOut(**alt, band=confidence_band(alt["confidence"]))
            for alt in plain["alternatives"]
        ]
        return cls(**plain, band=confidence_band(plain["confidence"]), query_id=query_id,
                   feedback_token=token)


_NO_PICK = {"anyOf": [{"type": "null"}, {"const": ""}]}
# app.store.feedback.Feedback's rules, stated in the schema: only a 👎 picks an entry or "none of
# these", and not both.
FEEDBACK_RULES: dict[str, Any] = {"allOf": [
    {"if": {"properties": {"rating": {"const": "up"}}},
     "then": {"properties": {"picked_entry_id": _NO_PICK, "none_of_these": {"const": False}}}},
    {"if": {"properties": {"none_of_these": {"const": True}}, "required": ["none_of_these"]},
     "then": {"properties": {"picked_entry_id": _NO_PICK}}},
]}


class FeedbackOut(BaseModel):
    model_config = ConfigDict(**STRICT_BODY, json_schema_extra=FEEDBACK_RULES)

    query_id: WholeNumber = Field(ge=1, le=MAX_QUERY_ID)
    rating: Literal["up", "down"]
    picked_entry_id: str | None = Field(default=None, description="The right entry, on 👎.")
    none_of_these: bool = Field(default=False, description="On 👎: no entry fits.")


class FeedbackIn(FeedbackOut):
    feedback_token: str = Field(min_length=1, max_length=64,
                                description="The answer's feedback_token.")


@router.post("/chat/ask", response_model=ChatAnswerOut,
               summary="Answer a question and log it for review (the chat page uses this)")
async def chat_ask(body: AskRequest, engine: EngineDep, store: StoreDep,
                   request: Request) -> Response:
    # One thread hop for the engine and the log (see app.web.api's /api/ask).
    answer, query_id = await run_in_threadpool(
        lambda: ask_and_log(engine, store, body.question, channel="web", top_k=body.top_k,
                            tags=body.tags or ()))
    note_answer(request.state, answer)
    token = store.feedback_token(query_id) if query_id is not None else None
    return json_response(ChatAnswerOut.build(answer, query_id, token))


@router.post("/feedback", response_model=FeedbackOut, summary="👍 / 👎 on one answer")
def feedback(body: FeedbackIn, engine: EngineDep, store: StoreDep) -> FeedbackOut:
    if body.picked_entry_id is not None:
        engine.entry(body.picked_entry_id)  # 404 for an unknown entry
    store.record_feedback(body.query_id, Feedback(body.rating, body.picked_entry_id,
                                                  body.none_of_these), token=body.feedback_token)
    return FeedbackOut(**body.model_dump(exclude={"feedback_token"}))
