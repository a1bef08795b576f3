"""`playbook eval`: score the engine (or a server, or another knowledge set) on labelled queries,
and list the answers a knowledge change changed."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.cli.context import Context
from app.errors import PlaybookError, QueryFileError

if TYPE_CHECKING:  # the evaluation package (numpy, matplotlib …) loads when eval runs, not
    # with every `playbook` command: `playbook serve` starts sooner.
    from app.evaluation.provenance import RunInfo
    from app.evaluation.queries import QueryCase
    from app.evaluation.scoring import SystemResult
    from app.evaluation.systems import System
    from app.knowledge.playbook import KnowledgeBase


def _progress(cases: Iterable[QueryCase], name: str) -> Iterable[QueryCase]:
    from tqdm import tqdm

    items = list(cases)
    # disable=None: a bar on an interactive terminal, silence in CI logs and pipes.
    bar: Iterable[QueryCase] = tqdm(items, desc=name, unit="query", file=sys.stderr,
                                    disable=None, leave=False)
    return bar


def _thresholds(values: tuple[str, ...]) -> list[tuple[str, float]]:
    from app.evaluation.scoring import parse_threshold

    limits = []
    for text in values:
        try:
            limits.append(parse_threshold(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--fail-under") from None
    return limits


@dataclass(frozen=True)
class _Run:
    results: list[SystemResult]
    label: str  # what was evaluated: the knowledge folder or file, or the server's URL
    info: RunInfo
    questions: dict[str, str]  # entry id -> question, for the report
    before: SystemResult | None = None  # the same queries on --against-knowledge


def _local_run(context: Context, queries: Path, knowledge: Path | None, alternates: int | None,
               compare: bool, against: Path | None) -> _Run:
    from app.engine.engine import Engine
    from app.evaluation.baselines import comparison_systems, temporary_engine
    from app.evaluation.provenance import engine_info
    from app.evaluation.queries import load_queries, slice_alternates, split_stale
    from app.evaluation.scoring import run_system
    from app.evaluation.systems import EngineSystem
    from app.knowledge.playbook import load_knowledge

    settings = context.settings
    embedder = context.embedder()

    def load(source: Path) -> KnowledgeBase:
        kb = load_knowledge(source)
        return kb if alternates is None else slice_alternates(kb, alternates)

    with tempfile.TemporaryDirectory(prefix="playbook-eval-") as tmp:
        workdir = Path(tmp)
        source = knowledge or settings.knowledge_dir
        if knowledge is not None or alternates is not None:
            engine = temporary_engine(load(source), embedder, settings, workdir / "engine")
        else:
            engine = Engine(settings, embedder)
            engine.load(show_progress=True)
        cases, stale = split_stale(load_queries(queries), engine.knowledge)
        for problem in stale:
            click.echo(f"warning: {queries}: {problem}", err=True)
        if not cases:
            raise QueryFileError(str(queries), None, "every query expects an entry that is "
                                 "retired or gone; nothing left to score")
        shipping = EngineSystem(engine)
        systems: list[System] = [shipping]
        if compare:
            systems += comparison_systems(engine.knowledge, engine, settings, workdir)
        results = [run_system(s, cases, progress=_progress) for s in systems]
        label = str(source) + (f" (alternates[:{alternates}])" if alternates is not None else "")
        questions = shipping.questions()
        before = None
        if against is not None:
            # The before may lack entries the queries expect now: that is what a change fixes.
            old = EngineSystem(temporary_engine(load(against), embedder, settings,
                                                workdir / "before"), name="before")
            before = run_system(old, cases, progress=_progress)
            questions = {**old.questions(), **questions}
        return _Run(results, label, engine_info(engine, label), questions, before)


def _remote_run(queries: Path, url: str) -> _Run:
    from app.evaluation.provenance import server_info
    from app.evaluation.queries import load_queries
    from app.evaluation.scoring import run_system
    from app.evaluation.systems import RemoteSystem

    server = RemoteSystem(url)
    questions = server.questions()
    cases = load_queries(queries, questions)
    try:
        health = server.health()
    except PlaybookError:  # a server that is reloading still answers; the header says unknown
        health = {}
    return _Run([run_system(server, cases, progress=_progress)], url,
                server_info(health, url), questions)


@click.command("eval")
@click.argument("queries", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--knowledge", type=click.Path(exists=True, path_type=Path), default=None,
              help="Evaluate another knowledge set (a folder or an entries.jsonl), indexed "
                   "in a temporary folder.")
@click.option("--url", default=None,
              help="Evaluate a running server (e.g. http://127.0.0.1:8000) through its API.")
@click.option("--compare", is_flag=True,
              help="Also run the baselines (naive, bm25, engine-no-alternates) on the same "
                   "queries.")
@click.option("--json", "as_json", is_flag=True, help="Print the playbook-eval/1 JSON document.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a self-contained HTML report to this file.")
@click.option("--fail-under", "fail_under", multiple=True, metavar="METRIC=VALUE",
              help="Exit 1 when the engine's METRIC is worse than VALUE (repeatable), e.g. "
                   "top1=0.95 or wrong_refusal=0.03 (a maximum for wrong_refusal, ece and "
                   "latency).")
@click.option("--alternates", type=click.IntRange(min=0), default=None, metavar="K",
              help="Keep only the first K alternates of each entry.")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, metavar="RESULT.json",
              help="List the queries whose answer changed since this saved --json result.")
@click.option("--against-knowledge", "against", type=click.Path(exists=True, path_type=Path),
              default=None, metavar="DIR",
              help="List the queries whose answer differs from the one the same queries get on "
                   "this knowledge (e.g. the previous version), with the same model.")
@click.pass_obj
def eval_command(context: Context, queries: Path, knowledge: Path | None, url: str | None,
                 compare: bool, as_json: bool, report: Path | None,
                 fail_under: tuple[str, ...], alternates: int | None, baseline: Path | None,
                 against: Path | None) -> None:
    """Score the engine on QUERIES (JSONL or CSV of query and expected entry id)."""
    from app.evaluation.changes import answers_of, read_baseline
    from app.evaluation.changes import compare as compare_answers
    from app.evaluation.scoring import check_thresholds, to_json

    limits = _thresholds(fail_under)
    if baseline is not None and against is not None:
        raise click.UsageError("--baseline and --against-knowledge both say what to compare "
                               "with; give one")
    earlier = read_baseline(baseline) if baseline is not None else None  # fail before the run
    if url is not None:
        if compare or knowledge is not None or alternates is not None or against is not None:
            raise click.UsageError("--url evaluates a server as it is; --compare, --knowledge, "
                                   "--alternates and --against-knowledge run in this process "
                                   "and cannot be combined with it")
        run = _remote_run(queries, url)
    else:
        run = _local_run(context, queries, knowledge, alternates, compare, against)
    results = run.results

    changes = None
    if earlier is not None:
        changes = compare_answers(earlier, results[0], str(baseline))
    elif run.before is not None:
        changes = compare_answers(answers_of(run.before), results[0], f"knowledge {against}")
    checked = check_thresholds(results[0], limits)
    document: dict[str, Any] = to_json(results, str(queries), run.label, checked, changes)
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        from app.evaluation.report import render_table

        click.echo(render_table(results, checked, changes))
    if report is not None:
        from app.evaluation.report import render_html

        report.write_text(render_html(results, f"playbook eval: {queries.name} on {run.label}",
                                      checked, run.info, changes, run.questions),
                          encoding="utf-8")
        click.echo(f"report written to {report}", err=True)
    failed = [t for t in checked if not t.passed]
    if failed:
        for threshold in failed:
            click.echo(threshold.describe(), err=True)
        sys.exit(1)
