"""`playbook review`: the review queue on the command line (the same queue as the /review page),
clustered by meaning, or with `--by-text` only identical questions merged (no model loaded)."""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from app.cli.context import Context
from app.cli.workbench import engine_with_history, who
from app.knowledge.playbook import load_knowledge
from app.store import review_batch as batch
from app.store import review_clusters as clusters
from app.store import review_queue as queue
from app.store.feedback import FeedbackStore


def _outcome(item: queue.ReviewItem, verdict: queue.ReviewItem | None) -> str:
    if item.entry_id is None:
        outcome = f"no match, best guess {item.confidence:.0%}"
    else:
        outcome = f"answered {item.entry_id} {item.confidence:.0%} ({item.band})"
    if verdict is not None and verdict.picked_entry_id:
        outcome += f", agent picked {verdict.picked_entry_id}"
    elif verdict is not None and verdict.none_of_these:
        outcome += ", agent said none of these"
    return outcome


def render_groups(groups: list[queue.ReviewGroup]) -> str:
    lines: list[str] = []
    for group in groups:
        lines.append(f"{group.title} ({group.count})")
        if not group.items:
            lines.append("  (nothing)")
        for item in group.items:
            lines.append(f"  #{item.query_id}  {item.question}  x{item.count}  "
                         f"[{_outcome(item, item)}]")
    return "\n".join(lines)


def render_clusters(groups: list[clusters.ClusteredGroup],
                    now: Callable[[str], queue.AnsweredNow]) -> str:
    """Each cluster as its representative with the cluster's volume, what it was answered with
    and what the playbook answers it with now; then, when it has several, every member."""
    lines: list[str] = []
    for group in groups:
        lines.append(f"{group.title} ({group.count})")
        if not group.clusters:
            lines.append("  (nothing)")
        for cluster in group.clusters:
            head = cluster.representative
            answer = now(head.question)
            today = (f"now {answer.entry_id} {answer.confidence:.0%}" if answer.entry_id
                     else "now no match")
            lines.append(f"  #{head.query_id}  {head.question}  x{cluster.count}  "
                         f"[{_outcome(head, cluster.verdict)}; {today}]")
            if len(cluster.members) > 1:
                lines.extend(f"      #{member.query_id}  {member.question}  x{member.count}"
                             for member in cluster.members)
    return "\n".join(lines)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the queue as JSON.")
@click.option("--by-text", is_flag=True,
              help="Merge only identical questions (case and spacing aside), without loading "
              "the model, instead of clustering them by meaning.")
@click.pass_context
def review(ctx: click.Context, as_json: bool, by_text: bool) -> None:
    """List questions to review: thumbs-down, no confident match, low confidence; in each,
    questions that mean the same are one cluster, most-asked first."""
    if ctx.invoked_subcommand is not None:
        return
    context: Context = ctx.obj
    context.require_knowledge()
    store = FeedbackStore.from_settings(context.settings)
    if by_text:
        knowledge = load_knowledge(context.settings.knowledge_dir)
        groups = queue.review_groups(store, knowledge.entries)
        if as_json:
            click.echo(json.dumps([{"key": g.key, "title": g.title, "count": g.count,
                                    "items": [i.to_dict() for i in g.items]} for g in groups],
                                  ensure_ascii=False, indent=2))
        else:
            click.echo(render_groups(groups))
        return
    engine = context.engine()
    clustered = clusters.review_clusters(store, engine.entries(), clusters.engine_encoder(engine))
    answers: dict[str, queue.AnsweredNow] = {}

    def now(question: str) -> queue.AnsweredNow:
        if question not in answers:
            answers[question] = queue.answered_now(engine, question)
        return answers[question]

    if as_json:
        click.echo(json.dumps({"threshold": clusters.SAME_MEANING, "groups": [
            {"key": g.key, "title": g.title, "count": g.count, "clusters": [
                {**c.to_dict(), **_now_fields(now(c.representative.question))}
                for c in g.clusters]}
            for g in clustered]}, ensure_ascii=False, indent=2))
    else:
        click.echo(render_clusters(clustered, now))


def _now_fields(answer: queue.AnsweredNow) -> dict[str, object]:
    return {"now_entry_id": answer.entry_id, "now_question": answer.question,
            "now_confidence": answer.confidence}


@review.command("add")
@click.argument("query_id", type=int)
@click.argument("entry_id")
@click.option("--force", is_flag=True,
              help="Add it even though it sits closer to another entry.")
@click.pass_obj
def add_command(context: Context, query_id: int, entry_id: str, force: bool) -> None:
    """Add the question QUERY_ID asked as an alternate phrasing of ENTRY_ID."""
    engine, _ = engine_with_history(context)
    outcome = queue.add_as_alternate(FeedbackStore.from_settings(context.settings), engine,
                                     query_id, entry_id, force, who())
    click.echo(f"added {outcome.phrasing!r} to {outcome.entry_id}; index {outcome.report.action}: "
               f"{outcome.report.entries} entries, {outcome.report.vectors} vectors "
               f"(resolved {len(outcome.resolved)} question(s))")


@review.command("add-all")
@click.argument("entry_id")
@click.argument("query_ids", type=int, nargs=-1, required=True)
@click.option("--force", is_flag=True,
              help="Add them even though some sit closer to another entry.")
@click.pass_obj
def add_all_command(context: Context, entry_id: str, query_ids: tuple[int, ...],
                    force: bool) -> None:
    """Add every question QUERY_IDS (a cluster's members) as alternate phrasings of ENTRY_ID;
    checked first, so a refusal adds none of them."""
    engine, _ = engine_with_history(context)
    outcome = batch.add_all_as_alternates(FeedbackStore.from_settings(context.settings), engine,
                                          query_ids, entry_id, force, who())
    report = outcome.report
    click.echo(f"added {len(outcome.added)} phrasing(s) to {outcome.entry_id}: "
               + ", ".join(repr(added.phrasing) for added in outcome.added)
               + f"; index {report.action}: {report.entries} entries, {report.vectors} vectors "
               f"(resolved {len(outcome.resolved)} question(s))")


@review.command("dismiss")
@click.argument("query_ids", type=int, nargs=-1, required=True)
@click.pass_obj
def dismiss_command(context: Context, query_ids: tuple[int, ...]) -> None:
    """Take the questions QUERY_IDS (every open asking of each) off the queue without changing
    the playbook."""
    resolved = batch.dismiss_all(FeedbackStore.from_settings(context.settings), query_ids)
    click.echo(f"dismissed {len(resolved)} question(s)")


@review.command("out-of-scope")
@click.argument("query_ids", type=int, nargs=-1, required=True)
@click.option("--force", is_flag=True,
              help="Mark them even though some sit close to a card's text.")
@click.pass_obj
def out_of_scope_command(context: Context, query_ids: tuple[int, ...], force: bool) -> None:
    """Mark the questions QUERY_IDS as ones the playbook does not answer: they are written into
    out_of_scope.txt and refused from then on, and taken off the queue."""
    engine, _ = engine_with_history(context)
    outcome = batch.mark_out_of_scope(FeedbackStore.from_settings(context.settings), engine,
                                      query_ids, force, who())
    report = outcome.report
    click.echo(f"marked {len(outcome.lines)} question(s) out of scope: "
               + ", ".join(repr(line) for line in outcome.lines)
               + f"; index {report.action}: {report.entries} entries, {report.vectors} vectors "
               f"(resolved {len(outcome.resolved)} question(s))")
