"""FastAPI app factory and the JSON API. Handlers only translate HTTP to engine calls and back."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

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
    QUESTION_PATTERN,
    QUESTION_SCHEMA,
    AnswerOut,
    AskRequest,
    EntryOut,
    HealthOut,
    SearchOut,
    error_responses,
)
from app.slack import install_slack

api = APIRouter(prefix="/api", responses=error_responses(400, 404, 413, 415, 422, 429, 503))


# The question routes are `async def` and send the engine call to the thread pool themselves: a
# plain `def` route with a response model costs FastAPI two thread hops (the call, then the
# response's validation), measured at about 1 ms a request under load.
@api.post("/ask", response_model=AnswerOut, summary="Answer a question with the best entry")
async def ask(body: AskRequest, engine: EngineDep, request: Request) -> AnswerOut:
    answer = await run_in_threadpool(engine.ask, body.question, top_k=body.top_k,
                                     tags=body.tags or ())
    note_answer(request.state, answer)
    return AnswerOut.from_answer(answer)


@api.get("/search", response_model=SearchOut, summary="Ranked entries with scores")
async def search(
    engine: EngineDep,
    q: Annotated[str, Query(description="The query text.", json_schema_extra=QUESTION_SCHEMA)],
    k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = 5,
) -> SearchOut:
    return SearchOut.from_matches(q.strip(), await run_in_threadpool(engine.search, q, k=k))


@api.get("/entries", response_model=list[EntryOut], summary="Every playbook entry")
def entries(engine: EngineDep) -> list[EntryOut]:
    return [EntryOut.from_entry(e) for e in engine.entries()]


@api.get("/entries/{entry_id}", response_model=EntryOut, summary="One playbook entry")
def entry(entry_id: str, engine: EngineDep) -> EntryOut:
    return EntryOut.from_entry(engine.entry(entry_id))


NOT_JSON = "the request body must be JSON, sent with Content-Type: application/json"
NOT_AN_OBJECT = "the request body must be a JSON object"


def _validation_error(exc: RequestValidationError) -> tuple[int, str]:
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return 422, "the request body is not valid JSON"
        if tuple(error.get("loc", ())) == ("body",):
            # FastAPI hands over the raw bytes when the content type is not JSON.
            if isinstance(error.get("input"), bytes):
                return 415, NOT_JSON
            return 422, NOT_AN_OBJECT
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return 422, "; ".join(parts) or "invalid request"


def _unreadable_body(exc: StarletteHTTPException) -> str | None:
    """A clearer word for FastAPI's "There was an error parsing the body" (its cause says why)."""
    if isinstance(exc.__cause__, UnicodeDecodeError):
        return "the request body is not valid JSON: it is not UTF-8 text"
    if isinstance(exc.__cause__, RecursionError):
        return "the request body is not valid JSON: it is nested too deeply"
    return None


async def require_utf8_url(request: Request) -> None:
    """Starlette decodes bad percent-escapes to U+FFFD; refuse them instead of answering a
    question nobody asked."""
    for part, raw in (("path", request.scope.get("raw_path") or b""),
                      ("query string", request.scope.get("query_string") or b"")):
        try:
            unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(400, f"the {part} is not valid UTF-8") from None


def _with_question_limit(node: Any, limit: int) -> None:
    """Give every question in the OpenAPI schema this deployment's length limit."""
    if isinstance(node, dict):
        if node.get("pattern") == QUESTION_PATTERN:
            node["maxLength"] = limit
        for value in node.values():
            _with_question_limit(value, limit)
    elif isinstance(node, list):
        for value in node:
            _with_question_limit(value, limit)


class ChangeWatchMiddleware:
    """Lets the engine look for knowledge or index changes on disk (at most every
    PLAYBOOK_WATCH_SECONDS). Plain ASGI: a decorator middleware costs a task per request."""

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.engine.refresh_if_changed()
        await self.app(scope, receive, send)


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    app = FastAPI(title="Playbook Assistant", version="0.1.0",
                  description="Answers support agents from the playbook, locally.",
                  max_body_size=settings.max_body_bytes,
                  dependencies=[Depends(require_utf8_url)])
    app.state.settings = settings
    app.state.engine = engine

    def openapi_with_limits() -> dict[str, Any]:
        if app.openapi_schema is None:
            _with_question_limit(FastAPI.openapi(app), settings.max_question_chars)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi_with_limits  # type: ignore[method-assign]

    @app.exception_handler(PlaybookError)
    async def playbook_error(_: Request, exc: PlaybookError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, detail = _validation_error(exc)
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 400 and (detail := _unreadable_body(exc)):
            return JSONResponse({"detail": detail}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.get("/healthz", response_model=HealthOut, summary="Liveness and index identity",
             responses=error_responses(400, 413, 503))
    def healthz(engine: EngineDep) -> HealthOut:
        return HealthOut(**engine.health())

    app.include_router(api)
    app.include_router(admin_router)
    install_chat(app, settings)
    install_slack(app, settings)
    # The middleware added last runs first: each request is logged, then rate-limited.
    if settings.rate_limit_per_minute:
        app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute)
    app.add_middleware(ChangeWatchMiddleware, engine=engine)
    app.add_middleware(RequestLogMiddleware)
    return app
