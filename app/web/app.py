"""The one place the HTTP app is wired: settings, engine and store on app.state, the routers,
Slack, the error handlers and the middleware. Adapters get all of it through app.web.deps."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app.config import Settings
from app.engine.engine import Engine
from app.store.feedback import FeedbackStore
from app.store.history import attach_history
from app.store.replication import KnowledgeFollower
from app.web import admin, api, chat, insights, metrics, pages, review, workbench
from app.web.deps import EngineDep, require_utf8_url
from app.web.errors import install_error_handlers
from app.web.middleware.change_watch import ChangeWatchMiddleware
from app.web.middleware.rate_limit import RateLimitMiddleware
from app.web.middleware.request_log import RequestLogMiddleware
from app.web.middleware.security_headers import (
    DOCS_CONTENT_SECURITY_POLICY,
    SecurityHeadersMiddleware,
)
from app.web.pages import STATIC_DIR
from app.web.schemas import QUESTION_MARK, HealthOut, error_responses
from app.web.slack.routes import install_slack


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


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    app = FastAPI(title="Playbook Assistant", version="0.1.0",
                  description="Answers support agents from the playbook, locally.",
                  max_body_size=settings.max_body_bytes,
                  docs_url=None, redoc_url=None,  # /docs is app.web.pages', from vendored files
                  dependencies=[Depends(require_utf8_url)])
    app.state.settings = settings
    app.state.engine = engine

    def openapi_with_limits() -> dict[str, Any]:
        if app.openapi_schema is None:
            _with_question_limit(FastAPI.openapi(app), settings.max_question_chars)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi_with_limits  # type: ignore[method-assign]

    install_error_handlers(app)

    @app.get("/healthz", response_model=HealthOut,
             summary="Liveness and index identity (status: ok, reloading or degraded)",
             responses=error_responses(400, 413, 503))
    def healthz(engine: EngineDep) -> HealthOut:
        return HealthOut(**engine.health())

    @app.get("/readyz", response_model=HealthOut,
             summary="Readiness: 503 while loading, or when the last reload failed and older "
             "knowledge is being served", responses={
                 **error_responses(400, 413),
                 503: {"model": HealthOut, "description": "Not ready: loading, or degraded"}})
    def readyz(engine: EngineDep) -> HealthOut | JSONResponse:
        health = engine.health()
        if health["status"] != "ok":
            return JSONResponse(health, status_code=503)
        return HealthOut(**health)

    # Monitors often probe with HEAD.
    for path, probe in (("/healthz", healthz), ("/readyz", readyz)):
        app.add_api_route(path, probe, methods=["HEAD"], response_model=HealthOut,
                          include_in_schema=False)

    app.state.feedback_store = store = FeedbackStore.from_settings(settings)
    history = attach_history(engine, store)
    if store.shared and settings.watch_seconds:  # replicas follow each other's changes
        KnowledgeFollower(history, engine, settings.watch_seconds).start()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.metrics = metrics.Metrics()
    for router in (pages.router, api.router, chat.router, review.router, insights.router,
                   workbench.router, admin.router, admin.session_router, metrics.router):
        app.include_router(router)
    install_slack(app, settings)
    # The middleware added last runs first: each request is logged, given the security headers
    # (a 429 too), then rate-limited.
    if settings.rate_limit_per_minute:
        app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute)
    app.add_middleware(SecurityHeadersMiddleware, policies={"/docs": DOCS_CONTENT_SECURITY_POLICY})
    app.add_middleware(ChangeWatchMiddleware, engine=engine)
    app.add_middleware(RequestLogMiddleware, observe=app.state.metrics.observe)
    return app
