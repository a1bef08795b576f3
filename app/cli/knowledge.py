"""Knowledge commands: `playbook init`, `import`, `build` and `lint`."""

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
    from app.cli.workbench import who
    from app.engine.engine import Change
    from app.knowledge.playbook import PLAYBOOK_FILE, load_knowledge
    from app.store.feedback import FeedbackStore
    from app.store.history import KnowledgeHistory, record_change

    target = context.settings.knowledge_dir / PLAYBOOK_FILE
    history = KnowledgeHistory(FeedbackStore.from_settings(context.settings))
    if target.exists():  # an edit made since the last recorded version is its own version
        record_change(history, load_knowledge(context.settings.knowledge_dir), None)
    _import(export, target)
    record_change(history, load_knowledge(context.settings.knowledge_dir),
                  Change(who(), "import"))


def _import(export: Path, target: Path) -> None:
    from app.knowledge.flashcards import merge_export, parse_export
    from app.knowledge.playbook import KnowledgeBase, load_knowledge, save_playbook

    knowledge = load_knowledge(target) if target.exists() else KnowledgeBase(entries=())
    merged, report = merge_export(knowledge, parse_export(export))
    save_playbook(merged, target)
    for finding in report.findings:
        click.echo(str(finding))
    click.echo(f"{len(report.added)} added, {len(report.unchanged)} unchanged, "
               f"{len(merged.needs_review)} waiting in needs_review -> {target}")


STARTER_PLAYBOOK = """\
# The playbook: one entry per card. Agents' questions are matched against `question` and the
# `alternates`; the answer (and the macro, if any) is what they get back. Edit this file, then
# `playbook lint` and `playbook build` (a running server picks the change up by itself).
entries:
- id: example-change-address
  question: Customer wants to change the shipping address
  answer: Tell the customer the address can no longer be changed once the order is placed.
  macro: '#SD - Too Late - Can''t Change Shipping Address'
  alternates:
  - cx wants to update the delivery address
  - can I change where my order ships
  tags: [address]
"""
STARTER_FILES = {
    "playbook.yaml": STARTER_PLAYBOOK,
    "glossary.yaml": "# Shorthand agents type, and what it means.\ncx: customer\n",
    "out_of_scope.txt": "# Questions the playbook must not answer, one per line (they teach "
                        "the assistant to say it has no match).\nwhat is the weather tomorrow\n",
}


@click.command("init")
@click.argument("name", metavar="FOLDER", type=click.Path(file_okay=False))
@click.option("--from-export", "export", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path),
              help="Fill it from a flashcard export (e.g. the seed playbook.txt) instead of "
              "the one example card.")
def init_command(name: str, export: Path | None) -> None:
    """Create a knowledge folder to serve: a playbook (one example card, or a flashcard export
    imported), a glossary and out-of-scope examples. Refuses a folder that has a playbook."""
    from app.knowledge.playbook import PLAYBOOK_FILE

    if not name.strip():  # Path("") would be the current folder
        raise click.BadParameter("name the folder to create", param_hint="FOLDER")
    folder = Path(name)
    if (folder / PLAYBOOK_FILE).exists():
        raise click.UsageError(f"{folder / PLAYBOOK_FILE} already exists")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create {folder}: {exc.strerror}") from None
    for file_name, text in STARTER_FILES.items():
        if not (folder / file_name).exists() and not (export and file_name == PLAYBOOK_FILE):
            (folder / file_name).write_text(text, encoding="utf-8")
    if export is not None:
        _import(export, folder / PLAYBOOK_FILE)
    click.echo(f"created {folder}: next, `playbook --knowledge-dir {folder} serve`")


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
