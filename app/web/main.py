"""The served application, built from the environment (uvicorn's factory entry point), and the
start-up that `playbook serve` shares with it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.collector import collector_paused
from app.config import Settings
from app.embedding.embedder import offline_environment
from app.web.logs import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

    from app.engine.engine import Engine


def make_app() -> FastAPI:
    configure_logging()
    offline_environment()
    settings = Settings.load()
    return start_app(settings, lambda: _open_engine(settings))


def _open_engine(settings: Settings) -> Engine:
    from app.engine.engine import Engine

    return Engine.open(settings)


def start_app(settings: Settings, open_engine: Callable[[], Engine]) -> FastAPI:
    """`create_app(settings, open_engine())`, importing the web stack (fastapi and the rest)
    only now, with the garbage collector paused (see `collector_paused`). The app serves
    questions as soon as it starts, and wires the rest meanwhile (see app.web.app)."""
    with collector_paused():
        engine = open_engine()
        from app.web.app import create_app

        return create_app(settings, engine, early=True, on_failure=_exit_failed_start)


def _exit_failed_start(error: BaseException) -> None:
    """The rest of the app could not be wired (the error is logged): end the process as a
    start that failed before serving would have. Abrupt, so it works in any worker process;
    at most the first second's requests are cut off."""
    logging.shutdown()
    os._exit(getattr(error, "exit_code", 1))
