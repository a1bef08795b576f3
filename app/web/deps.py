"""FastAPI dependencies shared by the routers: the engine, the settings, the feedback store, the
admin guard, and the URL check.

All are `async def`: they do no blocking work, and FastAPI would run a plain `def` dependency
in its thread pool, a thread hop per dependency per request."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated
from urllib.parse import unquote_to_bytes

from fastapi import Depends, Header, HTTPException, Request
from fastapi import Path as PathParam

from app.config import Settings
from app.engine.engine import Engine
from app.web import admin_session

if TYPE_CHECKING:
    from app.store.feedback import FeedbackStore

ADMIN_DISABLED = "admin actions are disabled: set PLAYBOOK_ADMIN_TOKEN or PLAYBOOK_ADMINS"
# The largest integer every JSON client (and float comparison) holds exactly; it keeps ids far
# below SQLite's 2**63 - 1, which would overflow into a 500 instead of a 404.
MAX_QUERY_ID = 2**53 - 1


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> FeedbackStore:
    store: FeedbackStore = request.app.state.feedback_store
    return store


async def require_utf8_url(request: Request) -> None:
    """Starlette decodes bad percent-escapes to U+FFFD; refuse them instead of answering a
    question nobody asked."""
    for part, raw in (("path", request.scope.get("raw_path") or b""),
                      ("query string", request.scope.get("query_string") or b"")):
        try:
            unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(400, f"the {part} is not valid UTF-8") from None


async def require_admin(request: Request,
                        authorization: Annotated[str | None, Header()] = None) -> str:
    """Admin routes need `Authorization: Bearer <token>` (PLAYBOOK_ADMIN_TOKEN or a named admin's
    from PLAYBOOK_ADMINS, compared in constant time), or an admin page's session cookie with its
    header; with no token configured they are off. Returns who is acting, for the history."""
    settings = await get_settings(request)
    tokens = settings.admin_tokens()
    if not tokens:
        raise HTTPException(503, ADMIN_DISABLED)
    scheme, _, given = (authorization or "").partition(" ")
    name: str | None = None
    if scheme.lower() == "bearer":
        name = next((holder for token, holder in tokens.items()
                     if hmac.compare_digest(given.strip().encode(), token.encode())), None)
    cookie = request.cookies.get(admin_session.COOKIE)
    if (name is None and authorization is None and cookie
            and admin_session.CSRF_HEADER in request.headers):
        name = admin_session.admin_of(cookie, tokens)
    if name is None:
        raise HTTPException(401, "a valid admin token is required (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": "Bearer"})
    header = settings.admin_user_header
    proxied = request.headers.get(header, "").strip() if header else ""
    return proxied[:200] or name


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# A name, not the class: the ask route's modules import this one, and the database layer is
# wired after serving starts (app.web.app). FastAPI needs only the Depends.
StoreDep = Annotated["FeedbackStore", Depends(get_store)]
AdminDep = Annotated[str, Depends(require_admin)]
QueryId = Annotated[int, PathParam(ge=1, le=MAX_QUERY_ID)]
