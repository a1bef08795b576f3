"""The served app's start-up: the collector paused while it runs, errors as they always were."""

from __future__ import annotations

import gc
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import app.cli
from app.cli.entry import run
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


class CollectorWatch(importlib.abc.MetaPathFinder):
    """Records whether the collector runs when app.cli.main is imported; finds nothing itself."""

    def __init__(self) -> None:
        self.enabled: list[bool] = []

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "app.cli.main":
            self.enabled.append(gc.isenabled())
        return None


def test_the_playbook_command_imports_its_libraries_with_the_collector_paused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    watch = CollectorWatch()
    monkeypatch.setattr(sys, "meta_path", [watch, *sys.meta_path])
    # run() imports app.cli.main afresh; the module and the package's attribute are put back.
    monkeypatch.setattr(app.cli, "main", sys.modules["app.cli.main"])
    monkeypatch.delitem(sys.modules, "app.cli.main")
    monkeypatch.setattr(sys, "argv", ["playbook", "--version"])
    with pytest.raises(SystemExit) as exited:
        run()
    assert exited.value.code == 0
    assert capsys.readouterr().out == "playbook, version 0.1.0\n"
    assert watch.enabled == [False]
    assert gc.isenabled() and gc.get_freeze_count() > 0
