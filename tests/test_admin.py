"""POST /api/admin/reload and `playbook reload`: rebuild and swap without a restart."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli.main import main
from app.config import Settings
from app.engine.engine import Engine
from app.web.app import create_app
from tests.fakes import FakeEmbedder, serve_in_thread

TOKEN = "s3cret-admin-token"


@pytest.fixture
def admin_settings(tiny_settings: Settings) -> Settings:
    return tiny_settings.model_copy(update={"admin_token": TOKEN, "watch_seconds": 0})


@pytest.fixture
def engine(admin_settings: Settings, fake_embedder: FakeEmbedder) -> Engine:
    engine = Engine(admin_settings, fake_embedder)
    engine.load()
    return engine


def _add_alternate(settings: Settings) -> None:
    playbook = settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text().replace(
        "  - cancel my order please\n", "  - cancel my order please\n  - abort it\n"))


def test_reload_requires_the_admin_token(admin_settings: Settings, engine: Engine) -> None:
    client = TestClient(create_app(admin_settings, engine))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = client.post("/api/admin/reload", headers=headers)
        assert (response.status_code, response.json()) == (
            401, {"detail": "a valid admin token is required (Authorization: Bearer ...)"})
    off = TestClient(create_app(admin_settings.model_copy(update={"admin_token": None}), engine))
    response = off.post("/api/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (response.status_code, response.json()) == (
        503, {"detail": "admin actions are disabled: set PLAYBOOK_ADMIN_TOKEN or PLAYBOOK_ADMINS"})


def test_reload_swaps_in_the_edited_knowledge(admin_settings: Settings, engine: Engine) -> None:
    client = TestClient(create_app(admin_settings, engine))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    unchanged = client.post("/api/admin/reload", headers=auth).json()
    assert (unchanged["action"], unchanged["reason"]) == ("loaded", "")
    _add_alternate(admin_settings)
    body = client.post("/api/admin/reload", headers=auth).json()
    assert {k: body[k] for k in ("action", "reason", "entries", "vectors")} == {
        "action": "built", "reason": "the knowledge changed since the index was built",
        "entries": 3, "vectors": 10}
    assert client.post("/api/ask", json={"question": "abort it"}).json()["entry_id"] == "cancel-order"


def test_broken_knowledge_is_refused_and_the_old_index_keeps_serving(
    admin_settings: Settings, engine: Engine
) -> None:
    client = TestClient(create_app(admin_settings, engine))
    playbook = admin_settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text().replace("  answer: 3-5 business days\n", ""))
    response = client.post("/api/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 422
    assert response.json()["detail"].endswith("playbook.yaml:20: missing or empty field 'answer'")
    answer = client.post("/api/ask", json={"question": "how long does shipping take"}).json()
    assert (answer["entry_id"], answer["answer"]) == ("shipping-sla", "3-5 business days")


def test_reload_command_talks_to_a_running_server(admin_settings: Settings, engine: Engine) -> None:
    runner = CliRunner()
    with serve_in_thread(create_app(admin_settings, engine)) as url:
        _add_alternate(admin_settings)
        ok = runner.invoke(main, ["reload", "--url", url, "--token", TOKEN])
        assert ok.exit_code == 0
        assert ok.output.startswith("built 3 entries, 10 vectors in ")
        assert ok.output.endswith("s (the knowledge changed since the index was built)\n")
        denied = runner.invoke(main, ["reload", "--url", url, "--token", "nope"])
        assert (denied.exit_code, denied.output) == (
            1, "error: 401: a valid admin token is required (Authorization: Bearer ...)\n")
        # A named admin's token, from PLAYBOOK_ADMINS when no other is given.
        named = runner.invoke(main, ["reload", "--url", url], env={
            "PLAYBOOK_ADMIN_TOKEN": "", "PLAYBOOK_ADMINS": f"carol:{TOKEN}"})
        assert (named.exit_code, named.output.split(" in ")[0]) == (0, "loaded 3 entries, 10 vectors")
    gone = runner.invoke(main, ["reload", "--url", url, "--token", TOKEN])
    assert gone.exit_code == 1
    assert gone.output.startswith(f"error: cannot reach {url}: ")
