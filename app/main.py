"""The served application, built from the environment (uvicorn's factory entry point)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from app.config import Settings
from app.engine import Engine
from app.web import create_app


def make_app() -> FastAPI:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    engine = Engine.open(settings)
    return create_app(settings, engine)
