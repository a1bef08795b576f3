"""The served app's start-up: the collector paused while it runs, errors as they always were."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli.main import main
from app.config import Settings
from app.engine.engine import Engine
from app.errors import KnowledgeError
from app.web.main import start_app
from tests.fakes import FakeEmbedder


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """start_app freezes what exists when it ends: give the rest of the test session it back."""
    yield
    gc.unfreeze()


def test_the_app_serves_the_engine_opened_with_the_collector_paused(
    tiny_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    during = []

    def open_engine() -> Engine:
        during.append(gc.isenabled())
        return Engine.open(tiny_settings, fake_embedder)

    app = start_app(tiny_settings, open_engine)
    assert during == [False]
    assert gc.isenabled() and gc.get_freeze_count() > 0
    with TestClient(app) as client:
        response = client.post("/api/ask", json={"question": "cancel my order please"})
    assert response.json()["entry_id"] == "cancel-order"


def test_an_error_opening_the_engine_is_raised_as_it_was(tiny_settings: Settings) -> None:
    error = KnowledgeError("playbook.yaml", 3, "broken")

    def open_engine() -> Engine:
        raise error

    with pytest.raises(KnowledgeError) as raised:
        start_app(tiny_settings, open_engine)
    assert raised.value is error
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_collector_switched_off_stays_off(tiny_settings: Settings,
                                            fake_embedder: FakeEmbedder) -> None:
    gc.disable()
    try:
        start_app(tiny_settings, lambda: Engine.open(tiny_settings, fake_embedder))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_serve_without_knowledge_exits_with_the_knowledge_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--knowledge-dir", str(tmp_path / "missing"), "--index-dir",
                                       str(tmp_path / "index"), "serve", "--workers", "1"],
                                obj=lambda settings: FakeEmbedder())
    assert (result.exit_code, result.output) == (3, (
        f"error: {tmp_path / 'missing'}: no such file or folder (run from the folder that holds "
        "knowledge/, or pass --knowledge-dir or set PLAYBOOK_KNOWLEDGE_DIR)\n"))
