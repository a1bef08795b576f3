"""One access-log record per request: id, method, route, status, latency, and the answer it
gave (written as one JSON line by app.web.logs; uvicorn's own access log is off).

Secrets never reach the log: only the fields below are written, never headers or bodies.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.records import Answer
from app.web.logs import FIELDS

access_log = logging.getLogger("playbook.access")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def note_answer(state: Any, answer: Answer) -> None:
    """Called by handlers that answered a question, so the request's log line can say what."""
    best = answer.best or (answer.alternatives[0] if answer.alternatives else None)
    state.log_fields = {
        "matched": answer.matched,
        "ambiguous": answer.matched and answer.ambiguous,
        "entry_id": best.entry.id if answer.matched and best else None,
        "confidence": round(answer.confidence, 4),
    }


Observer = Callable[[dict[str, Any], bool], None]


class RequestLogMiddleware:
    """Logs each request; `observe` (the /metrics counters) gets the same fields, and whether a
    route served the request."""

    def __init__(self, app: ASGIApp, observe: Observer | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex[:16]
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "route": getattr(route, "path", scope["path"]),
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            fields.update(scope.get("state", {}).get("log_fields", {}))
            access_log.info("%s %s %s", fields["method"], fields["path"], status,
                            extra={FIELDS: fields})
            if self.observe is not None:
                self.observe(fields, route is not None)
