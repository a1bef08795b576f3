"""`playbook serve` answers questions before the rest of the app is wired: the rest's requests
wait for it (never a 404), the schema is not made without them, and a failure is reported."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.engine import Engine
from app.errors import FeedbackNotSaved
from app.web import app as app_module
from app.web.app import create_app
from app.web.middleware.startup_gate import Wiring
from tests.fakes import FakeEmbedder, free_port

QUESTION = {"question": "cancel my order please"}


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Wiring the rest waits until the returned event is set."""
    release = threading.Event()
    prepare = app_module._Rest.prepare

    def held_prepare(settings: Settings, engine: Engine) -> app_module._Rest:
        assert release.wait(30)
        return prepare(settings, engine)

    monkeypatch.setattr(app_module._Rest, "prepare", held_prepare)
    return release


def test_questions_are_answered_while_the_rest_is_wired_and_its_requests_wait(
    tiny_settings: Settings, fake_embedder: FakeEmbedder, held: threading.Event
) -> None:
    app = create_app(tiny_settings, Engine.open(tiny_settings, fake_embedder), early=True)
    with TestClient(app) as client:
        assert client.post("/api/ask", json=QUESTION).json()["entry_id"] == "cancel-order"
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (503, "starting")
        pages: list[httpx.Response] = []
        waiting = threading.Thread(target=lambda: pages.append(client.get("/review")))
        waiting.start()
        time.sleep(0.3)
        assert pages == []  # waiting for the wiring, not answered 404
        held.set()
        waiting.join(30)
        assert [page.status_code for page in pages] == [503]  # the review page's own "no token"
        assert "<html" in pages[0].text.lower()
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ok")


def test_the_schema_is_made_with_every_route(tiny_settings: Settings,
                                             fake_embedder: FakeEmbedder) -> None:
    app = create_app(tiny_settings, Engine.open(tiny_settings, fake_embedder), early=True)
    with TestClient(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/ask", "/api/chat/ask", "/api/feedback", "/healthz"} <= set(paths)


def test_a_failure_wiring_the_rest_is_answered_503_and_reported(
    tiny_settings: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = FeedbackNotSaved("the database is gone")

    def failing(settings: Settings, engine: Engine) -> app_module._Rest:
        raise error

    monkeypatch.setattr(app_module._Rest, "prepare", failing)
    failures: list[BaseException] = []
    app = create_app(tiny_settings, Engine.open(tiny_settings, fake_embedder), early=True,
                     on_failure=failures.append)
    with TestClient(app) as client:
        response = client.post("/api/chat/ask", json=QUESTION)
        assert (response.status_code, response.json()) == (503, {
            "detail": f"the server could not finish starting: {error}"})
        assert failures == [error]
        assert client.post("/api/ask", json=QUESTION).json()["entry_id"] == "cancel-order"


def test_the_wiring_begins_after_the_first_answer_or_when_nothing_comes() -> None:
    async def begins(answered: bool, idle_seconds: float) -> bool:
        wiring = Wiring()
        if answered:
            wiring.answered()
        try:
            await asyncio.wait_for(wiring.may_begin(idle_seconds), 5)
        except TimeoutError:
            return False
        return True

    def run(answered: bool, idle_seconds: float) -> bool:
        # In a thread of its own: the browser tests' Playwright keeps a loop running in this one.
        results: list[bool] = []
        thread = threading.Thread(
            target=lambda: results.append(asyncio.run(begins(answered, idle_seconds))))
        thread.start()
        thread.join(30)
        return results[0]

    assert run(answered=True, idle_seconds=60)
    assert run(answered=False, idle_seconds=0.01)
    assert not run(answered=False, idle_seconds=60)


@pytest.mark.model
def test_serve_stops_with_the_error_when_the_rest_cannot_be_wired(
        tiny_settings: Settings, onnx_cache: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PLAYBOOK_KNOWLEDGE_DIR": str(tiny_settings.knowledge_dir),
           "PLAYBOOK_INDEX_DIR": str(tiny_settings.index_dir),
           "PLAYBOOK_ONNX_CACHE_DIR": str(onnx_cache), "HF_HUB_OFFLINE": "1",
           "PLAYBOOK_DATABASE_URL": "nosuchdatabase://host/playbook"}
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "app", "serve", "--port", str(port)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1
    assert [(r["level"], r["message"]) for r in records if r["level"] == "critical"] == [
        ("critical", "the server could not finish starting: Can't load plugin: "
         "sqlalchemy.dialects:nosuchdatabase")]
