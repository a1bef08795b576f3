"""Request limits, structured logs, and knowledge changes picked up without a restart."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.engine import Engine
from app.web.app import create_app
from tests.fakes import FakeEmbedder


def _client(settings: Settings, engine: Engine) -> TestClient:
    return TestClient(create_app(settings, engine))


def test_oversized_bodies_get_413(tiny_settings: Settings, tiny_engine: Engine) -> None:
    client = _client(tiny_settings, tiny_engine)
    huge = json.dumps({"question": "x" * 70_000})
    declared = client.post("/api/ask", content=huge, headers={"content-type": "application/json"})
    assert (declared.status_code, declared.text) == (413, "Content Too Large")

    def stream():  # no Content-Length: counted as it arrives
        for _ in range(70):
            yield b"x" * 1024

    streamed = client.post("/api/ask", content=stream(), headers={"content-type": "application/json"})
    assert (streamed.status_code, streamed.json()) == (413, {"detail": "Content Too Large"})


def test_rate_limit_per_client(tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    settings = tiny_settings.model_copy(update={"rate_limit_per_minute": 2})
    engine = Engine(settings, fake_embedder)
    engine.load()
    client = _client(settings, engine)
    statuses = [client.post("/api/ask", json={"question": "cancel"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.get("/api/search", params={"q": "cancel"})
    assert (limited.status_code, limited.headers["retry-after"], limited.json()) == (
        429, "60", {"detail": "too many requests: the limit is 2 a minute per client"})
    assert client.get("/healthz").status_code == 200  # not a public question route


def test_one_json_log_line_per_request(
    tiny_settings: Settings, tiny_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(tiny_settings, tiny_engine)
    with caplog.at_level("INFO", logger="playbook.access"):
        response = client.post("/api/ask", json={"question": "cancel my order please"},
                               headers={"x-request-id": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    [line] = [r.fields for r in caplog.records if r.name == "playbook.access"]
    assert line == {
        "request_id": "req-42",
        "method": "POST",
        "path": "/api/ask",
        "route": "/api/ask",
        "status": 200,
        "latency_ms": line["latency_ms"],
        "matched": True,
        "ambiguous": False,
        "entry_id": "cancel-order",
        "confidence": 1.0,
    }


def _wait_for(condition, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_knowledge_edits_on_disk_are_picked_up_and_bad_ones_refused(
    tiny_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    settings = tiny_settings.model_copy(update={"watch_seconds": 0.01})
    engine = Engine(settings, fake_embedder)
    engine.load()
    client = _client(settings, engine)
    playbook = settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text().replace("  - cancel my order please\n",
                                                     "  - cancel my order please\n  - abort it\n"))
    time.sleep(0.02)
    client.get("/healthz")
    _wait_for(lambda: "abort it" in engine.entry("cancel-order").alternates)

    playbook.write_text("entries:\n- id: broken\n  question: [oops\n")
    time.sleep(0.02)
    client.get("/healthz")
    _wait_for(lambda: engine.last_reload_error is not None)
    assert engine.last_reload_error.endswith(
        "playbook.yaml:4: unreadable YAML: expected ',' or ']', but got '<stream end>'")
    answer = client.post("/api/ask", json={"question": "abort it"}).json()
    assert (answer["entry_id"], client.get("/healthz").json()["status"]) == ("cancel-order", "degraded")
