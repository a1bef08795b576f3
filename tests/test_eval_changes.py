"""`playbook eval --baseline / --against-knowledge`: the queries whose answer a knowledge change
changed, on two versions of the tiny playbook with the fake embedder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.evaluation.changes import QueryAnswer, compare
from app.evaluation.queries import QueryCase
from app.evaluation.scoring import Outcome, SystemResult
from app.evaluation.systems import Response
from tests.fakes import TINY_OUT_OF_SCOPE, TINY_PLAYBOOK, FakeEmbedder
from tests.test_evaluate import TINY_QUERIES, eval_runner, write_jsonl

# Version 2 of the tiny playbook: shipping-sla learns "shipping address" (which fixes line 3 and
# moves line 6 from one acceptable entry to the other) and loses "how long does shipping take"
# (which breaks line 2).
V2_PLAYBOOK = TINY_PLAYBOOK.replace(
    "  - delivery time for most orders\n", "  - delivery time for most orders\n  - shipping address\n"
).replace("  - how long does shipping take\n", "")
QUERIES: list[dict[str, Any]] = [*TINY_QUERIES,
           {"query": "update the shipping address", "expected": ["change-address", "shipping-sla"]}]

EXPECTED_CHANGES = {
    "counts": {"fixed": 1, "broken": 1, "changed": 1, "unchanged": 3, "not_compared": 0},
    "queries": [
        {"line": 2, "query": "how long does shipping take for orders", "expected": ["shipping-sla"],
         "change": "broken",
         "before": {"returned": "shipping-sla", "confidence": 1.0, "right": True},
         "after": {"returned": None, "confidence": 0.1763, "right": False}},
        {"line": 3, "query": "shipping address", "expected": ["shipping-sla"], "change": "fixed",
         "before": {"returned": "change-address", "confidence": 0.9453, "right": False},
         "after": {"returned": "shipping-sla", "confidence": 1.0, "right": True}},
        {"line": 6, "query": "update the shipping address",
         "expected": ["change-address", "shipping-sla"], "change": "changed",
         "before": {"returned": "change-address", "confidence": 0.961, "right": True},
         "after": {"returned": "shipping-sla", "confidence": 0.9759, "right": True}},
    ],
}


@pytest.fixture
def run_cli(tiny_settings: Settings, fake_embedder: FakeEmbedder,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    return eval_runner(tiny_settings, fake_embedder, monkeypatch)


@pytest.fixture
def queries(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "queries.jsonl", QUERIES)


@pytest.fixture
def v2(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge-v2"
    folder.mkdir()
    (folder / "playbook.yaml").write_text(V2_PLAYBOOK, encoding="utf-8")
    (folder / "glossary.yaml").write_text("cx: customer\nOOS: out of stock\n", encoding="utf-8")
    (folder / "out_of_scope.txt").write_text(TINY_OUT_OF_SCOPE, encoding="utf-8")
    return folder


@pytest.fixture
def baseline(run_cli: Any, queries: Path, tmp_path: Path) -> Path:
    """A saved --json result of version 1 (the tiny playbook)."""
    result = run_cli(str(queries), "--json")
    assert result.exit_code == 0, result.output
    path = tmp_path / "base.json"
    path.write_text(result.stdout, encoding="utf-8")
    return path


def test_baseline_lists_each_changed_answer_in_the_table(run_cli: Any, queries: Path, v2: Path,
                                                         baseline: Path) -> None:
    result = run_cli(str(queries), "--knowledge", str(v2), "--baseline", str(baseline))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-4:] == [
        f"Changes against {baseline}: 1 fixed, 1 broken, 1 changed otherwise, 3 unchanged",
        "  broken  line 2: 'how long does shipping take for orders': shipping-sla (1.00, right) → "
        "no match (0.18, wrong)",
        "  fixed   line 3: 'shipping address': change-address (0.95, wrong) → shipping-sla "
        "(1.00, right)",
        "  changed line 6: 'update the shipping address': change-address (0.96, right) → "
        "shipping-sla (0.98, right)",
    ]


def test_baseline_and_against_knowledge_give_the_same_json_changes(
    run_cli: Any, queries: Path, v2: Path, baseline: Path, tiny_knowledge: Path
) -> None:
    saved = run_cli(str(queries), "--knowledge", str(v2), "--baseline", str(baseline), "--json")
    assert saved.exit_code == 0, saved.output
    assert json.loads(saved.stdout)["changes"] == {"against": str(baseline), **EXPECTED_CHANGES}

    rerun = run_cli(str(queries), "--knowledge", str(v2), "--against-knowledge",
                    str(tiny_knowledge), "--json")
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["changes"] == {"against": f"knowledge {tiny_knowledge}",
                                                   **EXPECTED_CHANGES}


def test_no_change_against_itself(run_cli: Any, queries: Path, baseline: Path) -> None:
    result = run_cli(str(queries), "--baseline", str(baseline))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"Changes against {baseline}: 0 fixed, 0 broken, 0 changed otherwise, 6 unchanged")


def test_the_report_lists_the_changes_with_the_entries_questions(
    run_cli: Any, queries: Path, v2: Path, baseline: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    result = run_cli(str(queries), "--knowledge", str(v2), "--baseline", str(baseline),
                     "--report", str(report))
    assert result.exit_code == 0, result.output
    page = report.read_text(encoding="utf-8")
    assert f"<h2>Changes against {baseline}</h2>\n<p>1 fixed, 1 broken, 1 changed otherwise, " \
           "3 unchanged.</p>" in page
    assert (
        '<tr class="fixed"><td>fixed</td><td>3</td><td>shipping address</td>'
        "<td>change-address<br><small>Customer wants to change the shipping address</small></td>"
        "<td>0.945</td><td>wrong</td>"
        "<td>shipping-sla<br><small>What is our SLA for shipping most orders</small></td>"
        "<td>1.000</td><td>right</td></tr>"
    ) in page
    assert ('<tr class="broken"><td>broken</td><td>2</td>'
            "<td>how long does shipping take for orders</td>") in page
    assert "<td>no match</td><td>0.176</td><td>wrong</td></tr>" in page


@pytest.mark.parametrize(("text", "problem"), [
    ("{not json", "not valid JSON: Expecting property name enclosed in double quotes"),
    ('{"schema": "other"}', "not a playbook-eval/1 document (the output of playbook eval --json)"),
    ('{"schema": "playbook-eval/1", "systems": [{"name": "engine"}]}',
     "holds no per-query answers (saved by an older playbook eval: run it again with --json on "
     "the old knowledge, or use --against-knowledge)"),
    ('{"schema": "playbook-eval/1", "systems": [{"answers": [{"query": "q"}]}]}',
     "an answer lacks 'returned'"),
])
def test_a_broken_baseline_exits_3_before_the_run(run_cli: Any, queries: Path, tmp_path: Path,
                                                  text: str, problem: str) -> None:
    path = tmp_path / "old.json"
    path.write_text(text, encoding="utf-8")
    result = run_cli(str(queries), "--baseline", str(path))
    assert result.exit_code == 3
    assert result.stderr == f"error: {path}: {problem}\n"


@pytest.mark.parametrize("args", [
    ["--baseline", "B", "--against-knowledge", "K"],
    ["--url", "http://127.0.0.1:9", "--against-knowledge", "K"],
])
def test_conflicting_options_are_usage_errors(run_cli: Any, queries: Path, baseline: Path,
                                              tiny_knowledge: Path, args: list[str]) -> None:
    given = [str(baseline) if a == "B" else str(tiny_knowledge) if a == "K" else a for a in args]
    result = run_cli(str(queries), *given)
    assert result.exit_code == 2


def _result(*rows: tuple[str, tuple[str, ...], str | None]) -> SystemResult:
    return SystemResult("engine", "", tuple(
        Outcome(QueryCase(query, relevant, line),
                Response((returned,) if returned else (), None, 0.9, returned is not None), 1.0)
        for line, (query, relevant, returned) in enumerate(rows, start=1)))


def test_queries_pair_by_text_and_occurrence_and_new_ones_are_counted() -> None:
    now = _result(("same", ("a",), "a"), ("same", ("a",), "b"), ("new", ("a",), "a"),
                  ("oos", (), None))
    before = [QueryAnswer("oos", "a", 0.7), QueryAnswer("same", "a", 0.8),
              QueryAnswer("same", "a", 0.8), QueryAnswer("gone", "a", 0.8)]
    report = compare(before, now, "base.json")
    assert report.counts() == {"fixed": 1, "broken": 1, "changed": 0, "unchanged": 1,
                               "not_compared": 1}
    assert [(c.case.line, c.kind, c.before.returned, c.after.returned)
            for c in report.changes] == [(2, "broken", "a", "b"), (4, "fixed", "a", None)]
    assert report.summary() == "1 fixed, 1 broken, 0 changed otherwise, 1 unchanged, " \
                               "1 not in the baseline"
