"""The `playbook` command: thin commands over the library; errors become a message and exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from app.config import Settings
from app.errors import PlaybookError
from app.records import Answer, confidence_band


class PlaybookGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PlaybookError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=PlaybookGroup)
@click.option("--knowledge-dir", type=click.Path(path_type=Path), default=None,
              help="Knowledge folder (default: PLAYBOOK_KNOWLEDGE_DIR or ./knowledge).")
@click.option("--index-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (default: PLAYBOOK_INDEX_DIR or ./index).")
@click.pass_context
def main(ctx: click.Context, knowledge_dir: Path | None, index_dir: Path | None) -> None:
    """Playbook Assistant: answers support questions from the playbook, locally."""
    overrides: dict[str, Any] = {}
    if knowledge_dir is not None:
        overrides["knowledge_dir"] = knowledge_dir
    if index_dir is not None:
        overrides["index_dir"] = index_dir
    ctx.obj = Settings.load(**overrides)


def open_engine(settings: Settings) -> Any:
    from app.engine import Engine

    return Engine.open(settings)


@main.command("import")
@click.argument("export", type=click.Path(path_type=Path))
@click.pass_obj
def import_command(settings: Settings, export: Path) -> None:
    """Read a flashcard export (alternating lines or question<TAB>answer) into playbook.yaml."""
    from app.flashcards import merge_export, parse_export
    from app.knowledge import PLAYBOOK_FILE, KnowledgeBase, load_knowledge, save_playbook

    target = settings.knowledge_dir / PLAYBOOK_FILE
    knowledge = load_knowledge(target) if target.exists() else KnowledgeBase(entries=())
    merged, report = merge_export(knowledge, parse_export(export))
    save_playbook(merged, target)
    for finding in report.findings:
        click.echo(str(finding))
    click.echo(f"{len(report.added)} added, {len(report.unchanged)} unchanged, "
               f"{len(merged.needs_review)} waiting in needs_review -> {target}")


@main.command()
@click.option("--force", is_flag=True, help="Rebuild even if the index is up to date.")
@click.pass_obj
def build(settings: Settings, force: bool) -> None:
    """Embed the knowledge into the index (only changed texts are encoded again)."""
    from app.engine import Engine, load_embedder

    engine = Engine(settings, load_embedder(settings))
    report = engine.load(force_rebuild=force, show_progress=True)
    verb = "built" if report.action == "built" else "up to date:"
    click.echo(f"index {verb} {report.entries} entries, {report.vectors} vectors "
               f"in {report.seconds:.1f}s" + (f" ({report.reason})" if report.reason else ""))


@main.command("lint")
@click.pass_obj
def lint_command(settings: Settings) -> None:
    """Check the knowledge: orphans, duplicates, conflicts, misplaced alternates, macro names.
    Exits 1 when there is an error; warnings do not fail."""
    from app.engine import load_embedder
    from app.knowledge import load_knowledge
    from app.lint import lint

    knowledge = load_knowledge(settings.knowledge_dir)
    findings = lint(knowledge, load_embedder(settings))
    for finding in findings:
        click.echo(str(finding))
    counts = {level: sum(f.level == level for f in findings) for level in ("error", "warning")}
    click.echo(f"{len(knowledge.entries)} entries: {counts['error']} errors, "
               f"{counts['warning']} warnings")
    if counts["error"]:
        sys.exit(1)


@main.command("reload")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True,
              help="The running assistant.")
@click.option("--token", envvar="PLAYBOOK_ADMIN_TOKEN", help="Admin token (or PLAYBOOK_ADMIN_TOKEN).")
def reload_command(url: str, token: str | None) -> None:
    """Make a running server reload the knowledge and swap its index, without a restart."""
    import httpx

    if not token:
        raise click.UsageError("an admin token is needed: --token or PLAYBOOK_ADMIN_TOKEN")
    try:
        response = httpx.post(f"{url.rstrip('/')}/api/admin/reload", timeout=600,
                              headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        click.echo(f"error: cannot reach {url}: {exc}", err=True)
        sys.exit(1)
    body = response.json() if response.headers.get("content-type") == "application/json" else {}
    if response.status_code != 200:
        click.echo(f"error: {response.status_code}: {body.get('detail', response.text)}", err=True)
        sys.exit(1)
    click.echo(f"{body['action']} {body['entries']} entries, {body['vectors']} vectors in "
               f"{body['seconds']:.1f}s" + (f" ({body['reason']})" if body["reason"] else ""))


def render_answer(answer: Answer) -> str:
    lines = []
    if answer.best is not None:
        entry = answer.best.entry
        if entry.policy is not None:
            lines.append(f"Answer:     {entry.policy}")
        if entry.macro:
            lines.append(f"Macro:      {entry.macro}")
        lines.append(f"Matched:    {entry.question}  [{entry.id}]")
        band = confidence_band(answer.confidence)
        lines.append(f"Confidence: {answer.confidence:.0%} ({band})"
                     + ("  - ambiguous, check the alternatives" if answer.ambiguous else ""))
        if answer.alternatives:
            lines.append("Also close:")
    else:
        lines.append(f"No confident match (best guess {answer.confidence:.0%}). Closest entries:")
    for match in answer.alternatives:
        lines.append(f"  - {match.entry.question}  [{match.entry.id}] {match.confidence:.0%}")
    return "\n".join(lines)


@main.command()
@click.argument("question")
@click.option("--top-k", default=None, type=click.IntRange(0, 20), help="Alternatives to show.")
@click.option("--tag", "tags", multiple=True, help="Only entries with this tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON shape.")
@click.pass_obj
def ask(settings: Settings, question: str, top_k: int | None, tags: tuple[str, ...],
        as_json: bool) -> None:
    """Answer one question from the playbook."""
    from app.engine import clean_question
    from app.schemas import AnswerOut

    clean_question(question, settings.max_question_chars)  # refuse bad input before loading
    answer = open_engine(settings).ask(question, top_k=top_k, tags=tags)
    if as_json:
        click.echo(json.dumps(AnswerOut.from_answer(answer).model_dump(), ensure_ascii=False,
                              indent=2))
    else:
        click.echo(render_answer(answer))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=click.IntRange(1, 64),
              help="Server processes [default: PLAYBOOK_WORKERS, else 1].")
@click.pass_obj
def serve(settings: Settings, host: str, port: int, workers: int | None) -> None:
    """Serve the chat and the JSON API."""
    import os

    import uvicorn

    from app.request_log import configure_logging

    if workers is not None:
        settings = settings.model_copy(update={"workers": workers})
    if settings.workers == 1:
        from app.web import create_app

        configure_logging()
        app = create_app(settings, open_engine(settings))
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
        return
    # Each worker builds its own app from the environment; pass the CLI's folders along.
    os.environ["PLAYBOOK_KNOWLEDGE_DIR"] = str(settings.knowledge_dir)
    os.environ["PLAYBOOK_INDEX_DIR"] = str(settings.index_dir)
    os.environ["PLAYBOOK_WORKERS"] = str(settings.workers)  # each takes its share of the cores
    uvicorn.run("app.main:make_app", factory=True, host=host, port=port, workers=settings.workers,
                log_level="info", access_log=False)


from app.cli_eval import eval_command  # noqa: E402  (registered last: it imports nothing from here)

main.add_command(eval_command)

from app.cli_review import review  # noqa: E402  (registered last, like eval)

main.add_command(review)
