"""The `playbook` command: thin commands over the library; errors become a message and exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from app.cli.ask import ask
from app.cli.backup import backup_command
from app.cli.context import Context, load_local_model
from app.cli.eval import eval_command
from app.cli.knowledge import build, import_command, init_command, lint_command
from app.cli.review import review
from app.cli.serve import reload_command, serve
from app.cli.stats import stats_command
from app.cli.workbench import (
    entry_group,
    history_command,
    preview_command,
    revert_command,
)
from app.config import Settings
from app.embedding.embedder import offline_environment
from app.errors import PlaybookError


class PlaybookGroup(click.Group):
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


for command in (init_command, import_command, build, lint_command, reload_command, ask, serve,
                eval_command, review, stats_command, backup_command, entry_group, preview_command,
                history_command, revert_command):
    main.add_command(command)
