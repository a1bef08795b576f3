"""Knowledge commands: `playbook import`, `build` and `lint`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli.context import Context


@click.command("import")
@click.argument("export", type=click.Path(path_type=Path))
@click.pass_obj
def import_command(context: Context, export: Path) -> None:
    """Read a flashcard export (alternating lines or question<TAB>answer) into playbook.yaml."""
    from app.knowledge.flashcards import merge_export, parse_export
    from app.knowledge.playbook import PLAYBOOK_FILE, KnowledgeBase, load_knowledge, save_playbook

    target = context.settings.knowledge_dir / PLAYBOOK_FILE
    knowledge = load_knowledge(target) if target.exists() else KnowledgeBase(entries=())
    merged, report = merge_export(knowledge, parse_export(export))
    save_playbook(merged, target)
    for finding in report.findings:
        click.echo(str(finding))
    click.echo(f"{len(report.added)} added, {len(report.unchanged)} unchanged, "
               f"{len(merged.needs_review)} waiting in needs_review -> {target}")


@click.command()
@click.option("--force", is_flag=True, help="Rebuild even if the index is up to date.")
@click.pass_obj
def build(context: Context, force: bool) -> None:
    """Embed the knowledge into the index (only changed texts are encoded again)."""
    from app.engine.engine import Engine

    context.require_knowledge()
    engine = Engine(context.settings, context.embedder())
    report = engine.load(force_rebuild=force, show_progress=True)
    verb = "built" if report.action == "built" else "up to date:"
    click.echo(f"index {verb} {report.entries} entries, {report.vectors} vectors "
               f"in {report.seconds:.1f}s" + (f" ({report.reason})" if report.reason else ""))


@click.command("lint")
@click.pass_obj
def lint_command(context: Context) -> None:
    """Check the knowledge: orphans, duplicates, conflicts, misplaced alternates, macro names.
    Exits 1 when there is an error; warnings do not fail."""
    from app.knowledge.lint import lint
    from app.knowledge.playbook import load_knowledge

    knowledge = load_knowledge(context.settings.knowledge_dir)
    findings = lint(knowledge, context.embedder())
    for finding in findings:
        click.echo(str(finding))
    counts = {level: sum(f.level == level for f in findings) for level in ("error", "warning")}
    click.echo(f"{len(knowledge.entries)} entries: {counts['error']} errors, "
               f"{counts['warning']} warnings")
    if counts["error"]:
        sys.exit(1)
