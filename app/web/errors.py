"""Errors as HTTP answers: domain errors with their status, and request problems as a clear 4xx
(never FastAPI's raw validation list, never a 500)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import PlaybookError

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


def install_error_handlers(app: FastAPI) -> None:
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
