"""Serving before the app is whole: while the rest of it is wired in the background, a request
the routes already there can serve goes on; any other waits for the wiring instead of finding
no route, and gets 503 with the reason if the wiring failed.

The wiring holds the interpreter most of the time it runs, so it begins once the first request
has been answered (or one needs it, or none came for a moment): the first question is not
slowed by it."""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send


class Wiring:
    """The state the gate waits on. Its methods must be called on the server's event loop."""

    def __init__(self) -> None:
        self.early: list[BaseRoute] = []  # the routes that may serve before it is done
        self.error: str | None = None
        self._begin = asyncio.Event()
        self._done = asyncio.Event()

    async def may_begin(self, idle_seconds: float) -> None:
        """Returns when the wiring should begin."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._begin.wait(), idle_seconds)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def done(self, error: str | None = None) -> None:
        self.error = error
        self._done.set()

    def serves_early(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is Match.FULL for route in self.early)

    def answered(self) -> None:
        self._begin.set()

    async def wait(self) -> None:
        self._begin.set()
        await self._done.wait()


class StartupGateMiddleware:
    """Added first, so it runs last: a waiting request has been logged and rate-limited like
    any other. Once the wiring is done it costs one attribute check a request."""

    def __init__(self, app: ASGIApp, wiring: Wiring) -> None:
        self.app = app
        self.wiring = wiring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wiring = self.wiring
        if scope["type"] != "http" or (wiring.finished and wiring.error is None):
            await self.app(scope, receive, send)
        elif wiring.serves_early(scope):
            try:
                await self.app(scope, receive, send)
            finally:
                wiring.answered()
        else:
            await wiring.wait()
            if wiring.error is not None:
                await _unavailable(send, wiring.error)
                return
            await self.app(scope, receive, send)


async def _unavailable(send: Send, error: str) -> None:
    body = json.dumps({"detail": f"the server could not finish starting: {error}"}).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
