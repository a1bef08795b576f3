"""FastAPI app factory and the JSON API. Handlers only translate HTTP to engine calls and back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.admin import router as admin_router
from app.chat import install_chat
from app.config import Settings
from app.deps import EngineDep
from app.engine import Engine
from app.errors import PlaybookError
from app.rate_limit import RateLimitMiddleware
from app.request_log import RequestLogMiddleware, note_answer
from app.schemas import (
    MAX_TOP_K,
    AnswerOut,
    AskRequest,
    EntryOut,
    ErrorOut,
    HealthOut,
    SearchOut,
)
from app.slack import install_slack

ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}
}

api = APIRouter(prefix="/api", responses=ERRORS)


@api.post("/ask", response_model=AnswerOut, summary="Answer a question with the best entry")
def ask(body: AskRequest, engine: EngineDep, request: Request) -> AnswerOut:
    answer = engine.ask(body.question, top_k=body.top_k, tags=body.tags or ())
    note_answer(request.state, answer)
    return AnswerOut.from_answer(answer)


@api.get("/search", response_model=SearchOut, summary="Ranked entries with scores")
def search(
    engine: EngineDep,
    q: Annotated[str, Query(description="The query text.")],
    k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = 5,
) -> SearchOut:
    return SearchOut.from_matches(q.strip(), engine.search(q, k=k))


@api.get("/entries", response_model=list[EntryOut], summary="Every playbook entry")
def entries(engine: EngineDep) -> list[EntryOut]:
    return [EntryOut.from_entry(e) for e in engine.entries()]


@api.get("/entries/{entry_id}", response_model=EntryOut, summary="One playbook entry")
def entry(entry_id: str, engine: EngineDep) -> EntryOut:
    return EntryOut.from_entry(engine.entry(entry_id))


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return "the request body is not valid JSON"
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    app = FastAPI(title="Playbook Assistant", version="0.1.0",
                  description="Answers support agents from the playbook, locally.",
                  max_body_size=settings.max_body_bytes)
    app.state.settings = settings
    app.state.engine = engine

    @app.exception_handler(PlaybookError)
    async def playbook_error(_: Request, exc: PlaybookError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.get("/healthz", response_model=HealthOut, summary="Liveness and index identity")
    def healthz(engine: EngineDep) -> HealthOut:
        return HealthOut(**engine.health())

    @app.middleware("http")
    async def pick_up_changes(request: Request, call_next: Any) -> Any:
        request.app.state.engine.refresh_if_changed()
        return await call_next(request)

    app.include_router(api)
    app.include_router(admin_router)
    install_chat(app, settings)
    install_slack(app, settings)
    # The middleware added last runs first: each request is logged, then rate-limited.
    if settings.rate_limit_per_minute:
        app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute)
    app.add_middleware(RequestLogMiddleware)
    return app
