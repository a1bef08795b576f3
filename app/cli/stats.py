"""`playbook stats`: how the assistant did over a period, for people and (--json) scripts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import click

from app.cli.context import Context

DEFAULT_DAYS = 7


def period(since: datetime | None, until: datetime | None) -> tuple[date, date]:
    """The days asked for; by default the last DEFAULT_DAYS days up to today (UTC)."""
    last = until.date() if until else datetime.now(UTC).date()
    first = since.date() if since else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise click.UsageError(f"--since {first} is after --until {last}")
    return first, last


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


@click.command("stats")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC), default today.")
@click.option("--json", "as_json", is_flag=True, help="The figures as JSON.")
@click.pass_obj
def stats_command(context: Context, since: datetime | None, until: datetime | None,
                  as_json: bool) -> None:
    """Questions, answers, refusals, 👍/👎, estimated accuracy and per-card use over a period
    (default: the last 7 days)."""
    from app.knowledge.playbook import load_knowledge
    from app.store.feedback import FeedbackStore
    from app.store.insights import insights

    context.require_knowledge()
    first, last = period(since, until)
    entries = load_knowledge(context.settings.knowledge_dir).entries
    figures = insights(FeedbackStore.from_settings(context.settings), entries, first, last)
    if as_json:
        click.echo(json.dumps(figures.to_dict(), ensure_ascii=False, indent=2))
        return
    asked = figures.asked
    lines = [
        f"{figures.since} … {figures.until}: {asked} questions",
        f"  answered {figures.answered} ({_percent(figures.answered, asked)}), "
        f"flagged ambiguous {figures.ambiguous} ({_percent(figures.ambiguous, asked)}), "
        f"no confident match {figures.refused} ({_percent(figures.refused, asked)})",
        f"  agents: {figures.up} 👍, {figures.down} 👎",
    ]
    if figures.estimated_accuracy is not None and figures.accuracy_interval is not None:
        low, high = figures.accuracy_interval
        lines.append(f"  estimated accuracy {figures.estimated_accuracy:.0%} "
                     f"(95% {low:.0%}–{high:.0%}; from the confidence, no labels)")
    lines.append("Cards (answered, 👎, mean confidence, last used):")
    lines += [f"  {c.entry_id}: {c.answered}, {c.down}, {c.mean_confidence:.0%}, {c.last_used}"
              for c in figures.cards] or ["  none"]
    never = ", ".join(card.entry_id for card in figures.never_answered)
    lines.append(f"Never answered: {never or 'none'}")
    lines.append("Most asked without an answer:")
    lines += [f"  #{u.query_id}  {u.question}  x{u.count}" for u in figures.unanswered] or ["  none"]
    click.echo("\n".join(lines))
