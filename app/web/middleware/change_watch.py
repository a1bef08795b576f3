"""Let the engine pick up knowledge or index changes made on disk by another process."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.engine.engine import Engine


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
