"""The served application, built from the environment (uvicorn's factory entry point)."""

from __future__ import annotations

from fastapi import FastAPI

from app.config import Settings
from app.engine import Engine
from app.request_log import configure_logging
from app.web import create_app


def make_app() -> FastAPI:
    configure_logging()
    settings = Settings.load()
    engine = Engine.open(settings)
    return create_app(settings, engine)
