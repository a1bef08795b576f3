"""The served application, built from the environment (uvicorn's factory entry point)."""

from __future__ import annotations

from fastapi import FastAPI

from app.config import Settings
from app.embedding.embedder import offline_environment
from app.engine.engine import Engine
from app.web.app import create_app
from app.web.logs import configure_logging


def make_app() -> FastAPI:
    configure_logging()
    offline_environment()
    settings = Settings.load()
    engine = Engine.open(settings)
    return create_app(settings, engine)
