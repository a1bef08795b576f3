"""`playbook backup`: the query log and the knowledge, copied safely while the server runs."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import click

from app.cli.context import Context


@click.command("backup")
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def backup_command(context: Context, destination: Path) -> None:
    """Copy the query log (SQLite's online backup, safe while the server runs) and the
    knowledge folder into DESTINATION/<UTC time>/."""
    from app.store.feedback import FeedbackStore

    settings = context.settings
    target = destination / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if target.exists():
        raise click.UsageError(f"{target} already exists")
    rows = FeedbackStore.from_settings(settings).backup(target / settings.db_path.name)
    click.echo(f"{target / settings.db_path.name}: {rows} logged questions")
    if settings.knowledge_dir.is_dir():
        shutil.copytree(settings.knowledge_dir, target / "knowledge")
        click.echo(f"{target / 'knowledge'}: the knowledge folder")
