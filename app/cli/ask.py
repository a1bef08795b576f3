"""`playbook ask`: one question, answered as the chat would."""

from __future__ import annotations

import json

import click

from app.cli.context import Context
from app.records import NEEDS_DETAIL, Answer, confidence_band


def render_answer(answer: Answer) -> str:
    lines = []
    if answer.best is not None:
        entry = answer.best.entry
        if entry.policy is not None:
            lines.append(f"Answer:     {entry.policy}")
        if entry.macro:
            lines.append(f"Macro:      {entry.macro}")
        lines.append(f"Matched:    {entry.question}  [{entry.id}]")
        if entry.conditions:
            lines.append("Applies when: " + "; ".join(c.describe() for c in entry.conditions))
        band = confidence_band(answer.confidence)
        lines.append(f"Confidence: {answer.confidence:.0%} ({band})"
                     + ("  - ambiguous, check the alternatives" if answer.ambiguous else ""))
        if answer.alternatives:
            lines.append("Also close:")
    else:
        if answer.out_of_scope is not None:
            lines.append(f"Not in the playbook: nearest to “{answer.out_of_scope}” "
                         "(out_of_scope.txt).")
        if answer.needs_detail:
            lines.append(NEEDS_DETAIL)
        lines.append(f"No confident match (best guess {answer.confidence:.0%}). Closest entries:")
    for match in answer.alternatives:
        lines.append(f"  - {match.entry.question}  [{match.entry.id}] {match.confidence:.0%}")
    for ruled in answer.ruled_out:
        lines.append(f"Not this card: {ruled.match.entry.question}  [{ruled.match.entry.id}]: "
                     f"{ruled.reason}")
    return "\n".join(lines)


@click.command()
@click.argument("question")
@click.option("--top-k", default=None, type=click.IntRange(0, 20), help="Alternatives to show.")
@click.option("--tag", "tags", multiple=True, help="Only entries with this tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON shape.")
@click.pass_obj
def ask(context: Context, question: str, top_k: int | None, tags: tuple[str, ...],
        as_json: bool) -> None:
    """Answer one question from the playbook."""
    from app.engine.question import clean_question
    from app.web.schemas import AnswerOut

    clean_question(question, context.settings.max_question_chars)  # refuse bad input before loading
    answer = context.engine().ask(question, top_k=top_k, tags=tags)
    if as_json:
        click.echo(json.dumps(AnswerOut.from_answer(answer).model_dump(), ensure_ascii=False,
                              indent=2))
    else:
        click.echo(render_answer(answer))
