"""The `playbook` command: thin commands over the library; errors become a message and exit code."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from app.cli.context import Context, load_local_model
from app.config import Settings
from app.embedding.embedder import offline_environment
from app.errors import PlaybookError

# Each command's module is imported when that command runs (or `--help` lists them), so
# `playbook ask` or `playbook serve` does not first import every other command's libraries.
COMMANDS = {
    "ask": "app.cli.ask:ask",
    "backup": "app.cli.backup:backup_command",
    "build": "app.cli.knowledge:build",
    "entry": "app.cli.workbench:entry_group",
    "eval": "app.cli.eval:eval_command",
    "history": "app.cli.workbench:history_command",
    "import": "app.cli.knowledge:import_command",
    "init": "app.cli.knowledge:init_command",
    "lint": "app.cli.knowledge:lint_command",
    "preview": "app.cli.workbench:preview_command",
    "reload": "app.cli.serve:reload_command",
    "review": "app.cli.review:review",
    "revert": "app.cli.workbench:revert_command",
    "serve": "app.cli.serve:serve",
    "stats": "app.cli.stats:stats_command",
}


class PlaybookGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, name = COMMANDS[cmd_name].partition(":")
        command: click.Command = getattr(importlib.import_module(module), name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PlaybookError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=PlaybookGroup)
@click.version_option(package_name="playbook-assistant", prog_name="playbook")
@click.option("--knowledge-dir", type=click.Path(path_type=Path), default=None,
              help="Knowledge folder (default: PLAYBOOK_KNOWLEDGE_DIR or ./knowledge).")
@click.option("--index-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (default: PLAYBOOK_INDEX_DIR or ./index).")
@click.pass_context
def main(ctx: click.Context, knowledge_dir: Path | None, index_dir: Path | None) -> None:
    """Playbook Assistant: answers support questions from the playbook, locally."""
    offline_environment()
    overrides: dict[str, Any] = {}
    if knowledge_dir is not None:
        overrides["knowledge_dir"] = knowledge_dir
    if index_dir is not None:
        overrides["index_dir"] = index_dir
    # A caller (a test) may hand in its own model factory as the context object.
    make_embedder = ctx.obj if callable(ctx.obj) else load_local_model
    ctx.obj = Context(Settings.load(**overrides), make_embedder)

