"""The workbench on the command line: `playbook entry add|edit|retire`, `playbook preview`,
`playbook history` and `playbook revert`, each recorded in the knowledge history like the
browser's changes (who: the operating-system user)."""

from __future__ import annotations

import getpass
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.cli.context import Context
from app.errors import DraftRefused, EntryNotFound, KnowledgeError

if TYPE_CHECKING:
    from app.engine.engine import Engine
    from app.knowledge.drafts import EntryDraft
    from app.store.history import KnowledgeHistory, Version

SUMMARY_LIMIT = 5  # entry changes listed one by one in a version's line


def who() -> str:
    return f"{getpass.getuser()} (cli)"


def engine_with_history(context: Context) -> tuple[Engine, KnowledgeHistory]:
    from app.store.feedback import FeedbackStore
    from app.store.history import attach_history

    engine = context.engine()
    return engine, attach_history(engine, FeedbackStore.from_settings(context.settings))


def _describe(version: Version) -> str:
    restored = f" of version {version.restored_from}" if version.restored_from else ""
    if len(version.changes) > SUMMARY_LIMIT:  # an import: counts, not a page of ids
        kinds = Counter(c.kind for c in version.changes)
        changes = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    else:
        changes = "; ".join(c.summary() for c in version.changes)
    changes = "; ".join(part for part in (changes, version.out_of_scope_changes.summary())
                        if part) or "no entry changed"
    return (f"version {version.number}  {version.recorded_at:%Y-%m-%d %H:%M}  {version.who}  "
            f"{version.action}{restored}: {changes}")


def _publish(context: Context, drafts: Sequence[EntryDraft], action: str) -> None:
    from app.engine.drafting import check_drafts
    from app.engine.engine import Change
    from app.knowledge.drafts import apply_drafts

    engine, history = engine_with_history(context)
    checked = check_drafts(engine, drafts)
    first = next((p for p in checked.problems if p.level == "error"), None)
    for problem in checked.problems:
        if problem is not first:  # the refusal below says it
            click.echo(f"{problem.level}: {problem.entry_id}: {problem.message}", err=True)
    if checked.text is None:
        assert first is not None  # a draft is refused only for an error
        raise DraftRefused(first.entry_id, first.message)

    def edit(text: str, now: Any) -> str:
        return apply_drafts(text, now.path, now.slots, drafts)[0]

    report = engine.publish(edit, Change(who(), action))
    newest = history.versions(limit=1)
    click.echo((_describe(newest[0]) if newest else "saved (the history could not be written)")
               + f"; index {report.action}: {report.entries} entries, {report.vectors} vectors")


def _conditions(pairs: Sequence[str]) -> dict[str, str | list[str]]:
    conditions: dict[str, str | list[str]] = {}
    for pair in pairs:
        slot, _, value = pair.partition("=")
        if not slot.strip() or not value.strip():
            raise click.BadParameter(f"{pair!r}: expected SLOT=VALUE, e.g. vendor=Best Buy",
                                     param_hint="--condition")
        conditions[slot.strip()] = value.strip()
    return conditions


def _entry_options(function: Any) -> Any:
    for option in reversed([
        click.option("--question", help="How the card's question reads."),
        click.option("--answer", help="The policy answer."),
        click.option("--macro", help="The macro to send (e.g. '#SD - Too Late to Cancel')."),
        click.option("--alternate", "alternates", multiple=True,
                     help="A phrasing agents use (repeat; on edit, replaces the list)."),
        click.option("--add-alternate", "added", multiple=True,
                     help="One more phrasing (repeat)."),
        click.option("--tag", "tags", multiple=True, help="A tag (repeat; replaces on edit)."),
        click.option("--condition", "conditions", multiple=True,
                     help="SLOT=VALUE, e.g. vendor=Best Buy (repeat; replaces on edit)."),
    ]):
        function = option(function)
    return function


@click.group("entry")
def entry_group() -> None:
    """Create, edit and retire playbook entries (recorded in the history)."""


@entry_group.command("add")
@click.argument("entry_id")
@_entry_options
@click.pass_obj
def add_command(context: Context, entry_id: str, question: str | None, answer: str | None,
                macro: str | None, alternates: tuple[str, ...], added: tuple[str, ...],
                tags: tuple[str, ...], conditions: tuple[str, ...]) -> None:
    """Create the entry ENTRY_ID (--question and --answer are required)."""
    from app.knowledge.drafts import EntryDraft
    from app.knowledge.playbook import load_knowledge

    context.require_knowledge()
    if not question or not answer:
        raise click.UsageError("a new entry needs --question and --answer")
    known = load_knowledge(context.settings.knowledge_dir)
    if known.entry(entry_id) or known.retired_entry(entry_id):
        raise KnowledgeError(entry_id, None, "an entry with this id exists; use `playbook entry "
                             "edit`")
    _publish(context, [EntryDraft(entry_id, question, answer, macro, (*alternates, *added),
                                  tags, _conditions(conditions))], "edit")


@entry_group.command("edit")
@click.argument("entry_id")
@_entry_options
@click.option("--restore", is_flag=True, help="Bring a retired entry back into service.")
@click.pass_obj
def edit_command(context: Context, entry_id: str, question: str | None, answer: str | None,
                 macro: str | None, alternates: tuple[str, ...], added: tuple[str, ...],
                 tags: tuple[str, ...], conditions: tuple[str, ...], restore: bool) -> None:
    """Change the fields given; the others stay as they are."""
    draft = _current_draft(context, entry_id)
    changes: dict[str, Any] = {
        key: value for key, value in (("question", question), ("answer", answer))
        if value is not None}
    if macro is not None:
        changes["macro"] = macro.strip() or None  # --macro '' removes it
    if alternates or added:
        changes["alternates"] = (*(alternates or draft.alternates), *added)
    if tags:
        changes["tags"] = tags
    if conditions:
        changes["conditions"] = _conditions(conditions)
    if restore:
        changes["retired"] = False
    _publish(context, [replace(draft, **changes)], "edit")


@entry_group.command("retire")
@click.argument("entry_id")
@click.pass_obj
def retire_command(context: Context, entry_id: str) -> None:
    """Take ENTRY_ID out of service: kept in the file, never answered (`edit --restore`
    brings it back)."""
    _publish(context, [replace(_current_draft(context, entry_id), retired=True)], "edit")


def _current_draft(context: Context, entry_id: str) -> EntryDraft:
    from app.knowledge.drafts import EntryDraft
    from app.knowledge.playbook import load_knowledge

    context.require_knowledge()
    knowledge = load_knowledge(context.settings.knowledge_dir)
    if (entry := knowledge.entry(entry_id)) is not None:
        return EntryDraft.of(entry)
    if (entry := knowledge.retired_entry(entry_id)) is not None:
        return EntryDraft.of(entry, retired=True)
    raise EntryNotFound(entry_id)


@click.command("history")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
@click.pass_obj
def history_command(context: Context, limit: int, as_json: bool) -> None:
    """List the knowledge's versions, newest first: who changed what, when and how."""
    from app.store.feedback import FeedbackStore
    from app.store.history import KnowledgeHistory

    versions = KnowledgeHistory(FeedbackStore.from_settings(context.settings)).versions(limit)
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in versions], ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(_describe(v) for v in versions) or "no versions recorded yet")


@click.command("revert")
@click.argument("version", type=click.IntRange(min=1))
@click.pass_obj
def revert_command(context: Context, version: int) -> None:
    """Make VERSION the playbook again (recorded as a new version)."""
    from app.store.history import restore

    engine, history = engine_with_history(context)
    click.echo(_describe(restore(engine, history, version, who())))


@click.command("preview")
@click.argument("draft", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the impact as JSON.")
@click.pass_obj
def preview_command(context: Context, draft: Path, as_json: bool) -> None:
    """The impact of the knowledge folder DRAFT against the current one: every labelled or
    agent-verified question whose answer would change."""
    from app.evaluation.impact import impact, labelled_cases, verdict_cases
    from app.knowledge.playbook import load_knowledge
    from app.store.feedback import FeedbackStore
    from app.store.verdicts import agent_verdicts

    proposed = load_knowledge(draft)
    engine = context.engine()
    verdicts = agent_verdicts(FeedbackStore.from_settings(context.settings))
    result = impact(engine, proposed, labelled_cases(engine.knowledge), verdict_cases(verdicts),
                    context.settings)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    for title, report in (("labelled questions", result.eval_changes),
                          ("agent-verified questions", result.agent_changes)):
        click.echo(f"{title}: {report.summary()}")
        for change in report.changes:
            before = change.before.returned or "no confident match"
            after = change.after.returned or "no confident match"
            click.echo(f"  {change.kind}: {change.case.query!r}: {before} "
                       f"({change.before.confidence or 0:.0%}) -> {after} "
                       f"({change.after.confidence or 0:.0%})")
    for stale in result.stale:
        click.echo(f"  stale label: {stale}")
    click.echo("gate: " + ", ".join(
        f"{name} {_figure(result.gate_before[name])} -> {_figure(result.gate_after[name])}"
        for name in result.gate_before))


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
