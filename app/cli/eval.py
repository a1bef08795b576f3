"""`playbook eval`: score the engine (or a server, or another knowledge set) on labelled queries."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from app.cli.context import Context
from app.evaluation.queries import QueryCase, load_queries, slice_alternates
from app.evaluation.scoring import SystemResult, check_thresholds, parse_threshold, run_system, to_json
from app.evaluation.systems import EngineSystem, RemoteSystem, System


def _progress(cases: Iterable[QueryCase], name: str) -> Iterable[QueryCase]:
    from tqdm import tqdm

    items = list(cases)
    # disable=None: a bar on an interactive terminal, silence in CI logs and pipes.
    bar: Iterable[QueryCase] = tqdm(items, desc=name, unit="query", file=sys.stderr,
                                    disable=None, leave=False)
    return bar


def _thresholds(values: tuple[str, ...]) -> list[tuple[str, float]]:
    limits = []
    for text in values:
        try:
            limits.append(parse_threshold(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--fail-under") from None
    return limits


def _local_results(context: Context, queries: Path, knowledge: Path | None,
                   alternates: int | None, compare: bool) -> tuple[list[SystemResult], str]:
    from app.engine.engine import Engine
    from app.evaluation.baselines import comparison_systems, temporary_engine
    from app.knowledge.playbook import load_knowledge

    settings = context.settings
    embedder = context.embedder()
    with tempfile.TemporaryDirectory(prefix="playbook-eval-") as tmp:
        workdir = Path(tmp)
        source = knowledge or settings.knowledge_dir
        if knowledge is not None or alternates is not None:
            kb = load_knowledge(source)
            if alternates is not None:
                kb = slice_alternates(kb, alternates)
            engine = temporary_engine(kb, embedder, settings, workdir / "engine")
        else:
            engine = Engine(settings, embedder)
            engine.load(show_progress=True)
        cases = load_queries(queries, [e.id for e in engine.entries()])
        systems: list[System] = [EngineSystem(engine)]
        if compare:
            systems += comparison_systems(engine.knowledge, engine, settings, workdir)
        results = [run_system(s, cases, progress=_progress) for s in systems]
    label = str(source) + (f" (alternates[:{alternates}])" if alternates is not None else "")
    return results, label


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
@click.pass_obj
def eval_command(context: Context, queries: Path, knowledge: Path | None, url: str | None,
                 compare: bool, as_json: bool, report: Path | None,
                 fail_under: tuple[str, ...], alternates: int | None) -> None:
    """Score the engine on QUERIES (JSONL or CSV of query and expected entry id)."""
    limits = _thresholds(fail_under)
    if url is not None:
        if compare or knowledge is not None or alternates is not None:
            raise click.UsageError("--url evaluates a server as it is; --compare, --knowledge "
                                   "and --alternates run in this process and cannot be combined "
                                   "with it")
        server = RemoteSystem(url)
        cases = load_queries(queries, server.entry_ids())
        results, label = [run_system(server, cases, progress=_progress)], url
    else:
        results, label = _local_results(context, queries, knowledge, alternates, compare)

    checked = check_thresholds(results[0], limits)
    document: dict[str, Any] = to_json(results, str(queries), label, checked)
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        from app.evaluation.report import render_table

        click.echo(render_table(results, checked))
    if report is not None:
        from app.evaluation.report import render_html

        report.write_text(render_html(results, f"playbook eval: {queries.name} on {label}",
                                      checked), encoding="utf-8")
        click.echo(f"report written to {report}", err=True)
    failed = [t for t in checked if not t.passed]
    if failed:
        for threshold in failed:
            click.echo(threshold.describe(), err=True)
        sys.exit(1)
