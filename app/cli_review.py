"""`playbook review`: the review queue on the command line (the same queue as the /review page)."""

from __future__ import annotations

import json

import click

from app import review as queue
from app.config import Settings
from app.feedback import FeedbackStore


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


def _item_dict(item: queue.ReviewItem) -> dict[str, object]:
    return {
        "query_id": item.query_id, "question": item.question, "count": item.count,
        "query_ids": list(item.query_ids),
        "last_asked_at": item.last_asked_at.isoformat().replace("+00:00", "Z"),
        "entry_id": item.entry_id, "confidence": item.confidence, "band": item.band,
        "picked_entry_id": item.picked_entry_id, "none_of_these": item.none_of_these,
    }


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the queue as JSON.")
@click.pass_context
def review(ctx: click.Context, as_json: bool) -> None:
    """List questions to review: thumbs-down, no confident match, low confidence."""
    if ctx.invoked_subcommand is not None:
        return
    settings: Settings = ctx.obj
    groups = queue.review_groups(FeedbackStore.from_settings(settings))
    if as_json:
        click.echo(json.dumps([{"key": g.key, "title": g.title, "count": g.count,
                                "items": [_item_dict(i) for i in g.items]} for g in groups],
                              ensure_ascii=False, indent=2))
    else:
        click.echo(render_groups(groups))


@review.command("add")
@click.argument("query_id", type=int)
@click.argument("entry_id")
@click.pass_obj
def add_command(settings: Settings, query_id: int, entry_id: str) -> None:
    """Add the question QUERY_ID asked as an alternate phrasing of ENTRY_ID."""
    from app import cli

    outcome = queue.add_as_alternate(FeedbackStore.from_settings(settings),
                                     cli.open_engine(settings), query_id, entry_id)
    click.echo(f"added {outcome.phrasing!r} to {outcome.entry_id}; index {outcome.report.action}: "
               f"{outcome.report.entries} entries, {outcome.report.vectors} vectors "
               f"(resolved {len(outcome.resolved)} question(s))")


@review.command("dismiss")
@click.argument("query_id", type=int)
@click.pass_obj
def dismiss_command(settings: Settings, query_id: int) -> None:
    """Take the question QUERY_ID off the queue without changing the playbook."""
    resolved = queue.dismiss(FeedbackStore.from_settings(settings), query_id)
    click.echo(f"dismissed {len(resolved)} question(s)")
