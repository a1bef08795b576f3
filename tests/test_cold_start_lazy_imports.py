"""What `playbook serve` does not load at start: Slack's SDK (without a signing secret) and Jinja
(until a page is asked for); and what a command does not load for the others' sake. The pages
and Slack themselves are tested elsewhere."""

from __future__ import annotations

import subprocess
import sys

import click
from fastapi.testclient import TestClient

from app.cli.main import COMMANDS, main
from app.config import Settings
from app.engine.engine import Engine
from app.web.app import create_app
from tests.fakes import FakeEmbedder

PROBE = ("import sys, app.cli.main, app.web.app; "
         "print(sorted(m for m in ('slack_sdk', 'jinja2') if m in sys.modules))")


def test_the_cli_and_the_web_stack_import_neither_slack_sdk_nor_jinja() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_the_pages_render_once_jinja_is_loaded_on_demand(
    tiny_settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    app = create_app(tiny_settings, Engine.open(tiny_settings, fake_embedder))
    with TestClient(app) as client:
        for path, status in (("/", 200), ("/docs", 200), ("/review", 503)):
            response = client.get(path)
            assert response.status_code == status, path
            assert response.headers["content-type"].startswith("text/html")
            assert "<html" in response.text.lower()


def test_every_command_is_found_by_its_name() -> None:
    context = click.Context(main)
    found = {name: main.get_command(context, name) for name in main.list_commands(context)}
    assert {name: command.name if command else None for name, command in found.items()} == {
        name: name for name in COMMANDS}
    assert main.get_command(context, "nonsense") is None


def test_playbook_ask_imports_neither_the_database_layer_nor_the_web_stack() -> None:
    probe = ("import sys, click; from app.cli.main import main; "
             "main.get_command(click.Context(main), 'ask'); "
             "print(sorted(m for m in ('sqlalchemy', 'fastapi', 'uvicorn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
