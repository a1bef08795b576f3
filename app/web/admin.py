"""Admin API: rebuild from the knowledge files and swap the index without a restart."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from app.web import admin_session
from app.web.deps import ADMIN_DISABLED, EngineDep, SettingsDep, require_admin
from app.web.schemas import STRICT_BODY, error_responses


class ReloadOut(BaseModel):
    action: str
    reason: str
    seconds: float
    entries: int
    vectors: int
    knowledge_hash: str


class SessionIn(BaseModel):
    model_config = STRICT_BODY

    token: str = Field(min_length=1, max_length=1024,
                       description="PLAYBOOK_ADMIN_TOKEN, or a named admin's token.")


router = APIRouter(prefix="/api/admin", dependencies=[Depends(require_admin)],
                   responses=error_responses(400, 401, 413, 422, 503))
# Opening a session is how a browser proves it has the token, so it is not behind the guard.
session_router = APIRouter(prefix="/api/admin/session",
                           responses=error_responses(400, 401, 413, 422, 503))


@session_router.post("", status_code=204, response_class=Response,
                     summary="Exchange the admin token for an HttpOnly session cookie (the "
                     "review page); later requests send the cookie and an X-Playbook-Admin header")
def open_session(body: SessionIn, settings: SettingsDep, request: Request) -> Response:
    tokens = settings.admin_tokens()
    if not tokens:
        raise HTTPException(503, ADMIN_DISABLED)
    given = body.token.strip().encode()
    token = next((t for t in tokens if hmac.compare_digest(given, t.encode())), None)
    if token is None:
        raise HTTPException(401, "that admin token was not accepted")
    response = Response(status_code=204)
    response.set_cookie(admin_session.COOKIE, admin_session.issue(token, tokens[token]),
                        max_age=admin_session.LIFETIME_SECONDS, path="/api/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


class SessionOut(BaseModel):
    active: bool = Field(description="Whether this browser holds a live admin session.")
    name: str | None = Field(default=None, description="Whose session it is.")


@session_router.get("", response_model=SessionOut,
                    summary="Whether the caller's session cookie is live (the review page asks on "
                    "load; the cookie itself is invisible to scripts)")
def session_state(settings: SettingsDep, request: Request) -> SessionOut:
    cookie = request.cookies.get(admin_session.COOKIE)
    name = admin_session.admin_of(cookie, settings.admin_tokens()) if cookie else None
    return SessionOut(active=name is not None, name=name)


@session_router.delete("", status_code=204, response_class=Response,
                       summary="End the review page's session")
def close_session() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(admin_session.COOKIE, path="/api/", httponly=True, samesite="strict")
    return response


@router.post("/reload", response_model=ReloadOut, summary="Reload the knowledge and swap the index")
def reload(engine: EngineDep) -> ReloadOut:
    """Requests in flight finish on the old index; a broken knowledge file is refused (422, with
    file and line) and the old index keeps serving."""
    report = engine.load()
    return ReloadOut(action=report.action, reason=report.reason, seconds=round(report.seconds, 3),
                     entries=report.entries, vectors=report.vectors,
                     knowledge_hash=engine.knowledge.content_hash())
