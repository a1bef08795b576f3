"""`playbook review`: the review queue on the command line (the same queue as the /review page)."""

from __future__ import annotations

import json

import click

from app.cli.context import Context
from app.knowledge.playbook import load_knowledge
from app.store import review_queue as queue
from app.store.feedback import FeedbackStore


def render_groups(groups: list[queue.ReviewGroup]) -> str:
    lines: list[str] = []
    for group in groups:
        lines.append(f"{group.title} ({group.count})")
        if not group.items:
            lines.append("  (nothing)")
        for item in group.items:
            if item.entry_id is None:
                outcome = f"no match, best guess {item.confidence:.0%}"
            else:
                outcome = f"answered {item.entry_id} {item.confidence:.0%} ({item.band})"
            if item.picked_entry_id:
                outcome += f", agent picked {item.picked_entry_id}"
            elif item.none_of_these:
                outcome += ", agent said none of these"
            lines.append(f"  #{item.query_id}  {item.question}  x{item.count}  [{outcome}]")
    return "\n".join(lines)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the queue as JSON.")
@click.pass_context
def review(ctx: click.Context, as_json: bool) -> None:
    """List questions to review: thumbs-down, no confident match, low confidence."""
    if ctx.invoked_subcommand is not None:
        return
    context: Context = ctx.obj
    context.require_knowledge()
    knowledge = load_knowledge(context.settings.knowledge_dir)
    groups = queue.review_groups(FeedbackStore.from_settings(context.settings), knowledge.entries)
    if as_json:
        click.echo(json.dumps([{"key": g.key, "title": g.title, "count": g.count,
                                "items": [i.to_dict() for i in g.items]} for g in groups],
                              ensure_ascii=False, indent=2))
    else:
        click.echo(render_groups(groups))


@review.command("add")
@click.argument("query_id", type=int)
@click.argument("entry_id")
@click.option("--force", is_flag=True,
              help="Add it even though it sits closer to another entry.")
@click.pass_obj
def add_command(context: Context, query_id: int, entry_id: str, force: bool) -> None:
    """Add the question QUERY_ID asked as an alternate phrasing of ENTRY_ID."""
    outcome = queue.add_as_alternate(FeedbackStore.from_settings(context.settings),
                                     context.engine(), query_id, entry_id, force)
    click.echo(f"added {outcome.phrasing!r} to {outcome.entry_id}; index {outcome.report.action}: "
               f"{outcome.report.entries} entries, {outcome.report.vectors} vectors "
               f"(resolved {len(outcome.resolved)} question(s))")


@review.command("dismiss")
@click.argument("query_id", type=int)
@click.pass_obj
def dismiss_command(context: Context, query_id: int) -> None:
    """Take the question QUERY_ID off the queue without changing the playbook."""
    resolved = queue.dismiss(FeedbackStore.from_settings(context.settings), query_id)
    click.echo(f"dismissed {len(resolved)} question(s)")
