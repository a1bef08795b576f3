"""The browser chat, feedback and the review pages: routes that translate HTTP to the engine, the
feedback store and the review queue. `install_chat(app, settings)` wires it all into the app."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app import review
from app.config import Settings
from app.deps import EngineDep, SettingsDep, require_admin
from app.engine import Engine
from app.errors import EntryNotFound
from app.feedback import Feedback, FeedbackNotSaved, FeedbackStore
from app.records import Answer, confidence_band
from app.request_log import note_answer
from app.schemas import (
    STRICT_BODY,
    AlternativeOut,
    AnswerOut,
    AskRequest,
    WholeNumber,
    error_responses,
)
from app.security_headers import SecurityHeadersMiddleware

log = logging.getLogger("playbook.chat")

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True))
REVIEW_DISABLED = "review is disabled: set PLAYBOOK_ADMIN_TOKEN"
# The largest integer every JSON client (and float comparison) holds exactly; it keeps ids far
# below SQLite's 2**63 - 1, which would overflow into a 500 instead of a 404.
MAX_QUERY_ID = 2**53 - 1


# ---------------------------------------------------------------- JSON shapes


class ChatAlternativeOut(AlternativeOut):
    band: str = Field(description="high / medium / low, from the calibrated confidence.")


class ChatAnswerOut(AnswerOut):
    band: str = Field(description="high / medium / low, from the calibrated confidence.")
    query_id: int | None = Field(description="Attach feedback to this; null when not logged.")
    alternatives: list[ChatAlternativeOut]  # type: ignore[assignment]

    @classmethod
    def build(cls, answer: Answer, query_id: int | None) -> ChatAnswerOut:
        plain = AnswerOut.from_answer(answer).model_dump()
        plain["alternatives"] = [
            ChatAlternativeOut(**alt, band=confidence_band(alt["confidence"]))
            for alt in plain["alternatives"]
        ]
        return cls(**plain, band=confidence_band(plain["confidence"]), query_id=query_id)


_NO_PICK = {"anyOf": [{"type": "null"}, {"const": ""}]}
# app.feedback.Feedback's rules, stated in the schema: only a 👎 picks an entry or "none of
# these", and not both.
FEEDBACK_RULES: dict[str, Any] = {"allOf": [
    {"if": {"properties": {"rating": {"const": "up"}}},
     "then": {"properties": {"picked_entry_id": _NO_PICK, "none_of_these": {"const": False}}}},
    {"if": {"properties": {"none_of_these": {"const": True}}, "required": ["none_of_these"]},
     "then": {"properties": {"picked_entry_id": _NO_PICK}}},
]}


class FeedbackIn(BaseModel):
    model_config = ConfigDict(**STRICT_BODY, json_schema_extra=FEEDBACK_RULES)

    query_id: WholeNumber = Field(ge=1, le=MAX_QUERY_ID)
    rating: Literal["up", "down"]
    picked_entry_id: str | None = Field(default=None, description="The right entry, on 👎.")
    none_of_these: bool = Field(default=False, description="On 👎: no entry fits.")


class FeedbackOut(FeedbackIn):
    pass


class ReviewItemOut(BaseModel):
    query_id: int
    question: str
    count: int
    query_ids: list[int]
    last_asked_at: str
    entry_id: str | None
    entry_question: str | None
    confidence: float
    band: str
    picked_entry_id: str | None
    picked_question: str | None
    none_of_these: bool


class ReviewGroupOut(BaseModel):
    key: str
    title: str
    count: int
    items: list[ReviewItemOut]


class ReviewOut(BaseModel):
    total: int
    groups: list[ReviewGroupOut]


class AddAlternateIn(BaseModel):
    model_config = STRICT_BODY

    entry_id: str


class IndexOut(BaseModel):
    action: str
    entries: int
    vectors: int


class AddAlternateOut(BaseModel):
    query_id: int
    entry_id: str
    phrasing: str
    resolved: list[int]
    index: IndexOut


class DismissOut(BaseModel):
    query_id: int
    resolved: list[int]


# ---------------------------------------------------------------- dependencies


async def get_store(request: Request) -> FeedbackStore:
    store: FeedbackStore = request.app.state.feedback_store
    return store


StoreDep = Annotated[FeedbackStore, Depends(get_store)]
QueryId = Annotated[int, PathParam(ge=1, le=MAX_QUERY_ID)]

pages = APIRouter(include_in_schema=False)
chat_api = APIRouter(prefix="/api", responses=error_responses(400, 404, 413, 415, 422, 429, 503))
review_api = APIRouter(prefix="/api/review",
                       responses=error_responses(400, 401, 404, 413, 415, 422, 503),
                       dependencies=[Depends(require_admin)])


# ---------------------------------------------------------------- pages


def example_questions(engine: Engine, count: int = 3) -> list[str]:
    """A first phrasing from a few entries, to show a newcomer what to type."""
    return [(e.alternates[0] if e.alternates else e.question) for e in engine.entries()[:count]]


@pages.get("/", response_class=HTMLResponse)
def chat_page(request: Request, engine: EngineDep, settings: SettingsDep) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "chat.html", {
        "page": "chat",
        "examples": example_questions(engine),
        "max_question_chars": settings.max_question_chars,
    })


@pages.get("/review", response_class=HTMLResponse)
def review_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    # The page holds no data: it asks for the token and fetches the queue with it.
    if not settings.admin_token:
        return TEMPLATES.TemplateResponse(request, "review.html",
                                          {"page": "review", "enabled": False,
                                           "message": REVIEW_DISABLED},
                                          status_code=503)
    return TEMPLATES.TemplateResponse(request, "review.html",
                                      {"page": "review", "enabled": True, "message": ""})


# ---------------------------------------------------------------- chat API


@chat_api.post("/chat/ask", response_model=ChatAnswerOut,
               summary="Answer a question and log it for review (the chat page uses this)")
async def chat_ask(body: AskRequest, engine: EngineDep, store: StoreDep,
                   request: Request) -> ChatAnswerOut:
    # One thread hop for the engine and the log (see app/web.py's /api/ask).
    answer, query_id = await run_in_threadpool(answer_and_log, engine, store, body)
    note_answer(request.state, answer)
    return ChatAnswerOut.build(answer, query_id)


def answer_and_log(engine: Engine, store: FeedbackStore, body: AskRequest) -> tuple[Answer, int | None]:
    answer = engine.ask(body.question, top_k=body.top_k, tags=body.tags or ())
    try:
        return answer, store.log_query(answer, channel="web")
    except FeedbackNotSaved as exc:
        log.warning("question not logged, answering anyway: %s", exc)
        return answer, None


@chat_api.post("/feedback", response_model=FeedbackOut, summary="👍 / 👎 on one answer")
def feedback(body: FeedbackIn, engine: EngineDep, store: StoreDep) -> FeedbackOut:
    if body.picked_entry_id is not None:
        engine.entry(body.picked_entry_id)  # 404 for an unknown entry
    store.record_feedback(body.query_id, Feedback(body.rating, body.picked_entry_id,
                                                  body.none_of_these))
    return FeedbackOut(**body.model_dump())


# ---------------------------------------------------------------- review API


def _question_of(engine: Engine, entry_id: str | None) -> str | None:
    if entry_id is None:
        return None
    try:
        return engine.entry(entry_id).question
    except EntryNotFound:
        return None


@review_api.get("", response_model=ReviewOut, summary="The review queue, grouped and counted")
def review_queue(engine: EngineDep, store: StoreDep) -> ReviewOut:
    groups = [
        ReviewGroupOut(key=group.key, title=group.title, count=group.count, items=[
            ReviewItemOut(
                query_id=item.query_id, question=item.question, count=item.count,
                query_ids=list(item.query_ids),
                last_asked_at=item.last_asked_at.isoformat().replace("+00:00", "Z"),
                entry_id=item.entry_id, entry_question=_question_of(engine, item.entry_id),
                confidence=item.confidence, band=item.band,
                picked_entry_id=item.picked_entry_id,
                picked_question=_question_of(engine, item.picked_entry_id),
                none_of_these=item.none_of_these)
            for item in group.items])
        for group in review.review_groups(store)
    ]
    return ReviewOut(total=sum(g.count for g in groups), groups=groups)


@review_api.post("/{query_id}/add", response_model=AddAlternateOut,
                 summary="Teach an entry this question; the index is rebuilt and swapped")
def review_add(query_id: QueryId, body: AddAlternateIn, engine: EngineDep,
               store: StoreDep) -> AddAlternateOut:
    outcome = review.add_as_alternate(store, engine, query_id, body.entry_id)
    return AddAlternateOut(
        query_id=query_id, entry_id=outcome.entry_id, phrasing=outcome.phrasing,
        resolved=list(outcome.resolved),
        index=IndexOut(action=outcome.report.action, entries=outcome.report.entries,
                       vectors=outcome.report.vectors))


@review_api.post("/{query_id}/dismiss", response_model=DismissOut,
                 summary="Take a question off the queue")
def review_dismiss(query_id: QueryId, store: StoreDep) -> DismissOut:
    return DismissOut(query_id=query_id, resolved=list(review.dismiss(store, query_id)))


# ---------------------------------------------------------------- wiring


def install_chat(app: FastAPI, settings: Settings) -> None:
    app.state.feedback_store = FeedbackStore.from_settings(settings)
    docs = {path for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
            if path}
    app.add_middleware(SecurityHeadersMiddleware, csp_exempt=docs)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages)
    app.include_router(chat_api)
    app.include_router(review_api)
