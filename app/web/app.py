"""The one place the HTTP app is wired: settings, engine and store on app.state, the routers,
Slack, the error handlers and the middleware. Adapters get all of it through app.web.deps.

Wired in two parts: what answers a question (the JSON API, the probes, /metrics, the error
handlers, the middleware), then the rest (the database, the pages, chat, review, the workbench,
admin, Slack). `create_app` wires both before it returns; with `early=True` (`playbook serve`)
the app starts serving after the first part and wires the rest in a thread once the first
question has been answered; a request for the rest waits for it (app.web.middleware.startup_gate).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

from app.config import Settings
from app.engine.engine import Engine
from app.web import api, metrics
from app.web.deps import EngineDep, require_utf8_url
from app.web.errors import install_error_handlers
from app.web.middleware.change_watch import ChangeWatchMiddleware
from app.web.middleware.rate_limit import RateLimitMiddleware
from app.web.middleware.request_log import RequestLogMiddleware
from app.web.middleware.security_headers import (
    DOCS_CONTENT_SECURITY_POLICY,
    SecurityHeadersMiddleware,
)
from app.web.middleware.startup_gate import StartupGateMiddleware, Wiring
from app.web.schemas import QUESTION_MARK, HealthOut, error_responses

if TYPE_CHECKING:
    from app.store.feedback import FeedbackStore
    from app.store.history import KnowledgeHistory

log = logging.getLogger(__name__)


def _with_question_limit(node: Any, limit: int) -> None:
    """Give every question in the OpenAPI schema this deployment's length limit."""
    if isinstance(node, dict):
        if node.get(QUESTION_MARK):
            node["maxLength"] = limit
        for value in node.values():
            _with_question_limit(value, limit)
    elif isinstance(node, list):
        for value in node:
            _with_question_limit(value, limit)


def create_app(settings: Settings, engine: Engine, *, early: bool = False,
               on_failure: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The app, whole; with `early`, serving before the rest is wired (see the module's
    docstring). If wiring the rest fails, `on_failure` gets the error (the server stops)."""
    wiring = Wiring() if early else None
    app = FastAPI(title="Playbook Assistant", version="0.1.0",
                  description="Answers support agents from the playbook, locally.",
                  max_body_size=settings.max_body_bytes,
                  docs_url=None, redoc_url=None,  # /docs is app.web.pages', from vendored files
                  dependencies=[Depends(require_utf8_url)],
                  lifespan=_wiring_the_rest(wiring, on_failure) if wiring else None)
    app.state.settings = settings
    app.state.engine = engine

    def openapi_with_limits() -> dict[str, Any]:
        if app.openapi_schema is None:
            _with_question_limit(FastAPI.openapi(app), settings.max_question_chars)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi_with_limits  # type: ignore[method-assign]

    install_error_handlers(app)

    def health(engine: Engine) -> dict[str, Any]:
        health = engine.health()
        if wiring is not None and not wiring.finished and health["status"] == "ok":
            health["status"] = "starting"  # questions are answered; the rest is being wired
        return health

    @app.get("/healthz", response_model=HealthOut,
             summary="Liveness and index identity (status: ok, starting, reloading or degraded)",
             responses=error_responses(400, 413, 503))
    def healthz(engine: EngineDep) -> HealthOut:
        return HealthOut(**health(engine))

    @app.get("/readyz", response_model=HealthOut,
             summary="Readiness: 503 while starting or loading, or when the last reload failed "
             "and older knowledge is being served", responses={
                 **error_responses(400, 413),
                 503: {"model": HealthOut, "description": "Not ready: starting, loading, or "
                       "degraded"}})
    def readyz(engine: EngineDep) -> HealthOut | JSONResponse:
        state = health(engine)
        if state["status"] != "ok":
            return JSONResponse(state, status_code=503)
        return HealthOut(**state)

    # Monitors often probe with HEAD.
    for path, probe in (("/healthz", healthz), ("/readyz", readyz)):
        app.add_api_route(path, probe, methods=["HEAD"], response_model=HealthOut,
                          include_in_schema=False)

    app.state.metrics = metrics.Metrics()
    for router in (api.router, metrics.router):
        app.include_router(router)
    if wiring is None:
        _include(app, _Rest.prepare(settings, engine))
    else:
        # Every route there is now may serve before the rest is wired, but the OpenAPI
        # schema: it would be made (and kept) without the rest's routes.
        wiring.early = [route for route in app.router.routes
                        if getattr(route, "path", None) != app.openapi_url]
        app.add_middleware(StartupGateMiddleware, wiring=wiring)
    # The middleware added last runs first: each request is logged, given the security headers
    # (a 429 too), then rate-limited.
    if settings.rate_limit_per_minute:
        app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute)
    app.add_middleware(SecurityHeadersMiddleware, policies={"/docs": DOCS_CONTENT_SECURITY_POLICY})
    app.add_middleware(ChangeWatchMiddleware, engine=engine)
    app.add_middleware(RequestLogMiddleware, observe=app.state.metrics.observe)
    return app


@dataclass
class _Rest:
    """The second part, made ready without touching the app (so in any thread)."""

    settings: Settings
    engine: Engine
    store: FeedbackStore
    history: KnowledgeHistory
    routers: list[APIRouter]
    static_dir: str
    install_slack: Callable[[FastAPI, Settings], None]

    @classmethod
    def prepare(cls, settings: Settings, engine: Engine) -> _Rest:
        from app.store.feedback import FeedbackStore
        from app.store.history import attach_history
        from app.web import admin, chat, insights, pages, review, workbench
        from app.web.slack.routes import install_slack

        store = FeedbackStore.from_settings(settings)
        return cls(settings, engine, store, attach_history(engine, store),
                   [pages.router, chat.router, review.router, insights.router, workbench.router,
                    admin.router, admin.session_router], str(pages.STATIC_DIR), install_slack)


def _include(app: FastAPI, rest: _Rest) -> None:
    """Put the second part into the app (on the server's event loop, if it is serving)."""
    from fastapi.staticfiles import StaticFiles

    from app.store.replication import KnowledgeFollower

    app.state.feedback_store = rest.store
    if rest.store.shared and rest.settings.watch_seconds:  # replicas follow each other's changes
        KnowledgeFollower(rest.history, rest.engine, rest.settings.watch_seconds).start()
    app.mount("/static", StaticFiles(directory=rest.static_dir), name="static")
    for router in rest.routers:
        app.include_router(router)
    rest.install_slack(app, rest.settings)


def _wiring_the_rest(
    wiring: Wiring, on_failure: Callable[[BaseException], None] | None
) -> Callable[[FastAPI], Any]:
    async def wire(app: FastAPI) -> None:
        await wiring.may_begin(idle_seconds=0.25)
        try:
            rest = await asyncio.to_thread(_Rest.prepare, app.state.settings, app.state.engine)
            _include(app, rest)
        except Exception as exc:
            log.critical("the server could not finish starting: %s", exc, exc_info=exc)
            wiring.done(error=str(exc))
            if on_failure is not None:
                on_failure(exc)
        else:
            wiring.done()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        wired = asyncio.create_task(wire(app))
        yield
        await wired  # a stop right after the start waits for it

    return lifespan
