from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli.main import main
from app.config import Settings
from app.engine.engine import Engine
from app.errors import QueryFileError
from app.evaluation import scoring as evaluate
from app.evaluation.queries import QueryCase, load_queries
from app.evaluation.scoring import run_system
from app.evaluation.systems import EngineSystem, RemoteSystem
from app.web.app import create_app
from tests.fakes import FakeEmbedder

# Against the tiny playbook with the fake embedder: two right, one wrong (shipping-sla is second),
# and two out-of-scope queries refused (the second near a line of the tiny out_of_scope.txt).
TINY_QUERIES: list[dict[str, Any]] = [
    {"query": "cancel the order", "expected": "cancel-order"},
    {"query": "how long does shipping take for orders", "expected": ["shipping-sla"]},
    {"query": "shipping address", "expected": "shipping-sla"},
    {"query": "tell me a joke please", "expected": None},
    {"query": "what is the weather", "expected": None},
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def queries_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "queries.jsonl", TINY_QUERIES)


def eval_runner(settings: Settings, embedder: FakeEmbedder,
                monkeypatch: pytest.MonkeyPatch) -> Any:
    """`playbook --knowledge-dir tiny --index-dir tmp eval ...` with the fake embedder and a
    clock that makes every query take exactly 2 ms (the other tests/test_eval_*.py use it too)."""
    ticks = itertools.count(step=2)
    monkeypatch.setattr(evaluate, "clock", lambda: next(ticks) / 1000.0)

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, [
            "--knowledge-dir", str(settings.knowledge_dir),
            "--index-dir", str(settings.index_dir), "eval", *args,
        ], obj=lambda settings: embedder)

    return run


@pytest.fixture
def run_cli(tiny_settings: Settings, fake_embedder: FakeEmbedder,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    return eval_runner(tiny_settings, fake_embedder, monkeypatch)


# ---------------------------------------------------------------- query files


def test_jsonl_accepts_an_id_a_list_null_and_the_benchmarks_relevant(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"query": " cancel my order ", "expected": "cancel-order"}\n'
        "\n"
        '{"query": "two answers", "expected": ["a", "b", "a"]}\n'
        '{"query": "weather", "expected": null}\n'
        '{"query": "blank", "expected": ""}\n'
        '{"query": "bench", "relevant": ["t1_a0", "t1_a1"]}\n',
        encoding="utf-8",
    )
    assert load_queries(path) == [
        QueryCase("cancel my order", ("cancel-order",), 1),
        QueryCase("two answers", ("a", "b"), 3),
        QueryCase("weather", (), 4),
        QueryCase("blank", (), 5),
        QueryCase("bench", ("t1_a0", "t1_a1"), 6),
    ]


def test_csv_accepts_pipe_separated_ids_and_empty_for_out_of_scope(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(
        'query,expected\n'
        'cancel my order,cancel-order\n'
        '"shipping, how long?",shipping-sla|change-address\n'
        'weather,\n',
        encoding="utf-8",
    )
    assert load_queries(path) == [
        QueryCase("cancel my order", ("cancel-order",), 2),
        QueryCase("shipping, how long?", ("shipping-sla", "change-address"), 3),
        QueryCase("weather", (), 4),
    ]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("q.jsonl", '{"query": "ok", "expected": "a"}\n{"query": "broken"\n',
     "q.jsonl:2: not valid JSON: Expecting ',' delimiter"),
    ("q.jsonl", '["query", "expected"]\n',
     "q.jsonl:1: expected a JSON object with 'query' and 'expected'"),
    ("q.jsonl", '{"query": "  ", "expected": "a"}\n', "q.jsonl:1: missing or empty 'query'"),
    ("q.jsonl", '{"query": "ok", "expected": "a"}\n\n{"query": "no label"}\n',
     "q.jsonl:3: missing 'expected' (an entry id, a list of ids, or null for an out-of-scope "
     "query)"),
    ("q.jsonl", '{"query": "ok", "expected": 7}\n',
     "q.jsonl:1: 'expected' must be an entry id, a list of entry ids or null, got 7"),
    ("q.jsonl", '{"query": "ok", "expected": "a"}\n{"query": "ok", "expected": "nope"}\n',
     "q.jsonl:2: unknown entry id 'nope' in the expected answer"),
    ("q.jsonl", "\n\n", "q.jsonl: the file holds no queries"),
    ("q.csv", "question,answer\nhello,a\n",
     "q.csv:1: the header must name a 'query' column and an 'expected' column; found "
     "['question', 'answer']"),
    ("q.csv", "query,expected\nok,a\nok,a,extra\n", "q.csv:3: more cells than header columns"),
    ("q.csv", "query,expected\nok,a\n,a\n", "q.csv:3: missing or empty 'query'"),
])
def test_bad_rows_name_the_file_line_and_problem(tmp_path: Path, name: str, text: str,
                                                 message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(QueryFileError) as caught:
        load_queries(path, known_ids=["a"])
    assert str(caught.value) == str(tmp_path / message)


def test_labels_naming_no_entry_are_reported_and_left_unscored(run_cli: Any,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "stale.jsonl"
    path.write_text('{"query": "cancel", "expected": "no-such-entry"}\n'
                    '{"query": "cancel my order", "expected": "cancel-order"}\n',
                    encoding="utf-8")
    result = run_cli(str(path), "--json")
    assert result.exit_code == 0
    assert result.stderr == (f"warning: {path}: line 1: expected entry 'no-such-entry' is not "
                             "in the playbook; the query 'cancel' is not scored (relabel it)\n")
    assert json.loads(result.stdout)["counts"]["queries"] == 1


def test_a_query_file_with_nothing_left_to_score_exits_3(run_cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": "cancel", "expected": "no-such-entry"}\n', encoding="utf-8")
    result = run_cli(str(path))
    assert result.exit_code == 3
    assert result.stderr.endswith(f"error: {path}: every query expects an entry that is retired "
                                  "or gone; nothing left to score\n")


# ---------------------------------------------------------------- the command

EXPECTED_ENGINE = {
    "name": "engine",
    "description": "shipping engine: max cosine over question+alternates, calibrated confidence",
    "metrics": {
        "top1": 0.6667, "recall_at_3": 1.0, "recall_at_5": 1.0, "mrr": 0.8333,
        "p_at_1": 0.6667, "p_at_3": 0.3333, "map": 0.8333, "abstention": 1.0,
        "abstention_or_flag": 1.0, "wrong_refusal": 0.0, "answered_correct": 0.6667,
        # 'shipping address' answered change-address at 0.9453: 1 of 5 queries wrong at >= 0.9.
        "confident_wrong": 0.2, "ece": 0.2872,
        "latency_p50_ms": 2.0, "latency_p95_ms": 2.0,
    },
    "reliability": [
        {"lower": 0.0, "upper": 0.1, "count": 1, "mean_confidence": 0.0083, "accuracy": 0.0},
        *({"lower": b / 10, "upper": (b + 1) / 10, "count": 0, "mean_confidence": None,
           "accuracy": None} for b in range(1, 4)),
        {"lower": 0.4, "upper": 0.5, "count": 1, "mean_confidence": 0.49, "accuracy": 0.0},
        *({"lower": b / 10, "upper": (b + 1) / 10, "count": 0, "mean_confidence": None,
           "accuracy": None} for b in range(5, 9)),
        {"lower": 0.9, "upper": 1.0, "count": 3, "mean_confidence": 0.9792, "accuracy": 0.6667},
    ],
    "misses": [
        {"line": 3, "query": "shipping address", "expected": ["shipping-sla"],
         "returned": "change-address", "closest": "change-address", "confidence": 0.9453},
    ],
    "categories": {},
    "answers": [
        {"line": 1, "query": "cancel the order", "expected": ["cancel-order"],
         "returned": "cancel-order", "closest": "cancel-order", "confidence": 0.9923,
         "right": True},
        {"line": 2, "query": "how long does shipping take for orders", "expected": ["shipping-sla"],
         "returned": "shipping-sla", "closest": "shipping-sla", "confidence": 1.0, "right": True},
        {"line": 3, "query": "shipping address", "expected": ["shipping-sla"],
         "returned": "change-address", "closest": "change-address", "confidence": 0.9453,
         "right": False},
        {"line": 4, "query": "tell me a joke please", "expected": [], "returned": None,
         "closest": "cancel-order", "confidence": 0.0083, "right": True},
        {"line": 5, "query": "what is the weather", "expected": [], "returned": None,
         "closest": "shipping-sla", "confidence": 0.49, "right": True},
    ],
}


def test_json_document_has_the_documented_schema(run_cli: Any, queries_file: Path,
                                                 tiny_settings: Settings) -> None:
    result = run_cli(str(queries_file), "--json", "--fail-under", "top1=0.6")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "schema": "playbook-eval/1",
        "queries_file": str(queries_file),
        "knowledge": str(tiny_settings.knowledge_dir),
        "counts": {"queries": 5, "in_scope": 3, "out_of_scope": 2},
        "systems": [EXPECTED_ENGINE],
        "thresholds": [{"metric": "top1", "limit": 0.6, "value": 0.6667, "passed": True}],
        "passed": True,
        "changes": None,
    }


def test_table_shows_metrics_reliability_and_misses(run_cli: Any, queries_file: Path) -> None:
    result = run_cli(str(queries_file))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:6] == [
        "5 queries: 3 in scope, 2 out of scope",
        "",
        "system   top1     R@3     R@5    MRR    MAP    P@3  abstain  wrong-refusal    ECE  "
        "p50 ms  p95 ms",
        "-" * 97,
        "engine  66.7%  100.0%  100.0%  0.833  0.833  33.3%   100.0%           0.0%  0.287     "
        "2.0     2.0",
        "",
    ]
    assert result.stdout.splitlines()[-3:] == [
        "",
        "Misses of engine: 1",
        "  line 3: 'shipping address' expected shipping-sla; answered change-address "
        "(closest change-address, confidence 0.95)",
    ]


@pytest.mark.parametrize(("limits", "code", "stderr"), [
    (["top1=0.6", "wrong_refusal=0", "recall_at_3=1"], 0, ""),
    (["top1=0.9"], 1, "FAILED: top1 = 0.6667 (required >= 0.9)\n"),
    (["abstention=0.9", "ece=0.1", "mrr=0.5"], 1,
     "FAILED: ece = 0.2872 (required <= 0.1)\n"),
])
def test_fail_under_exit_codes(run_cli: Any, queries_file: Path, limits: list[str], code: int,
                               stderr: str) -> None:
    args = [a for limit in limits for a in ("--fail-under", limit)]
    result = run_cli(str(queries_file), *args)
    assert result.exit_code == code
    assert result.stderr == stderr


def test_fail_under_rejects_an_unknown_metric(run_cli: Any, queries_file: Path) -> None:
    result = run_cli(str(queries_file), "--fail-under", "accuracy=0.9")
    assert result.exit_code == 2
    assert ("Invalid value for --fail-under: expected METRIC=VALUE with METRIC one of top1, "
            "recall_at_3") in result.stderr


def test_compare_runs_the_baselines_on_the_same_queries(run_cli: Any, queries_file: Path) -> None:
    result = run_cli(str(queries_file), "--compare", "--json")
    assert result.exit_code == 0, result.output
    systems = json.loads(result.stdout)["systems"]
    assert [(s["name"], s["metrics"]["top1"], s["metrics"]["abstention"],
             s["metrics"]["wrong_refusal"]) for s in systems] == [
        ("engine", 0.6667, 1.0, 0.0),
        ("naive", 0.6667, 0.0, 0.0),
        ("bm25", 0.6667, 0.0, 0.0),
        ("engine-no-alternates", 0.6667, 1.0, 0.0),
    ]
    assert [s["metrics"]["ece"] for s in systems] == [0.2872, 0.475, None, 0.3114]
    assert systems[2]["metrics"]["ece"] is None
    assert systems[2]["reliability"] == []


def test_alternates_option_slices_each_entry(run_cli: Any, queries_file: Path,
                                             tiny_settings: Settings) -> None:
    result = run_cli(str(queries_file), "--alternates", "0", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["knowledge"] == f"{tiny_settings.knowledge_dir} (alternates[:0])"
    # Without alternates the index holds only the questions: the same as engine-no-alternates.
    assert document["systems"][0]["metrics"]["ece"] == 0.3114
    assert [m["confidence"] for m in document["systems"][0]["misses"]] == [0.9848]


def test_knowledge_option_evaluates_a_benchmark_entries_file(run_cli: Any,
                                                             tmp_path: Path) -> None:
    entries = write_jsonl(tmp_path / "entries.jsonl", [
        {"id": "card", "question": "Card arrival", "answer": "",
         "alternates": ["where is my new card"]},
        {"id": "pin", "question": "Change PIN", "answer": "", "alternates": ["new pin code"]},
    ])
    queries = write_jsonl(tmp_path / "bench.jsonl", [
        {"query": "my card has not arrived", "relevant": ["card"]},
        {"query": "how do i change my pin", "relevant": ["pin"]},
    ])
    result = run_cli(str(queries), "--knowledge", str(entries), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["knowledge"] == str(entries)
    assert document["systems"][0]["metrics"]["top1"] == 1.0
    assert document["systems"][0]["misses"] == []


def test_html_report_is_self_contained_and_escaped(run_cli: Any, tmp_path: Path) -> None:
    queries = write_jsonl(tmp_path / "q.jsonl", [
        *TINY_QUERIES, {"query": "<script>alert(1)</script> address", "expected": None},
    ])
    report = tmp_path / "report.html"
    result = run_cli(str(queries), "--report", str(report))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"report written to {report}\n"
    page = report.read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; address" in page
    assert page.count('src="data:image/png;base64,') == 2
    assert "http://" not in page and "https://" not in page


def test_url_rejects_in_process_options(run_cli: Any, queries_file: Path) -> None:
    result = run_cli(str(queries_file), "--url", "http://127.0.0.1:9", "--compare")
    assert result.exit_code == 2
    assert "--url evaluates a server as it is" in result.stderr


def test_a_server_scores_like_the_engine_in_process(
    tiny_engine: Engine, tiny_settings: Settings, queries_file: Path
) -> None:
    client = TestClient(create_app(tiny_settings, tiny_engine))
    server = RemoteSystem("http://testserver", client=client)
    assert server.entry_ids() == ["change-address", "cancel-order", "shipping-sla"]
    cases = load_queries(queries_file, server.entry_ids())
    remote = run_system(server, cases)
    local = run_system(EngineSystem(tiny_engine), cases)
    assert [o.response.ranking for o in remote.outcomes] == \
        [o.response.ranking for o in local.outcomes]
    assert [o.response.answered for o in remote.outcomes] == [True, True, True, False, False]
    assert [m.to_dict() for m in remote.misses()] == EXPECTED_ENGINE["misses"]
    assert remote.metrics()["top1"] == local.metrics()["top1"]
