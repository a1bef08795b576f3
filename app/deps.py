"""FastAPI dependencies shared by the routers: the engine, the settings, the admin guard.

All are `async def`: they do no blocking work, and FastAPI would run a plain `def` dependency
in its thread pool, a thread hop per dependency per request."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from app.config import Settings
from app.engine import Engine

ADMIN_DISABLED = "admin actions are disabled: set PLAYBOOK_ADMIN_TOKEN"


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def require_admin(request: Request,
                        authorization: Annotated[str | None, Header()] = None) -> None:
    """Admin routes need `Authorization: Bearer <PLAYBOOK_ADMIN_TOKEN>`, compared in constant
    time; with no token configured they are off."""
    expected = (await get_settings(request)).admin_token
    if not expected:
        raise HTTPException(503, ADMIN_DISABLED)
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             expected.encode()):
        raise HTTPException(401, "a valid admin token is required (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": "Bearer"})


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
