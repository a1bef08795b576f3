from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from app.cli.main import main
from app.config import Settings
from app.evaluation.baselines import BM25Baseline, write_knowledge
from app.evaluation.systems import Response
from app.knowledge.playbook import KnowledgeBase, load_knowledge
from app.records import Entry
from tests.fakes import FakeEmbedder


def test_bm25_finds_nothing_for_a_query_of_stop_words_only(tiny_knowledge: Path) -> None:
    bm25 = BM25Baseline(load_knowledge(tiny_knowledge))
    assert bm25.run("it is no", 20) == Response((), None, None, answered=False)
    assert bm25.run("cancel it", 2).ranking[0] == "cancel-order"


def test_compare_survives_a_query_of_stop_words_only(tiny_settings: Settings,
                                                     fake_embedder: FakeEmbedder,
                                                     tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"query": "it is no", "expected": "cancel-order"}\n'
                       '{"query": "cancel the order", "expected": "cancel-order"}\n'
                       '{"query": "is it", "expected": null}\n', encoding="utf-8")
    result = CliRunner().invoke(main, [
        "--knowledge-dir", str(tiny_settings.knowledge_dir),
        "--index-dir", str(tiny_settings.index_dir),
        "eval", str(queries), "--compare", "--json",
    ], obj=lambda settings: fake_embedder)
    assert result.exit_code == 0, result.output
    bm25 = json.loads(result.stdout)["systems"][2]
    assert bm25["name"] == "bm25"
    assert {k: bm25["metrics"][k] for k in ("top1", "abstention", "wrong_refusal", "mrr")} == {
        "top1": 0.5, "abstention": 1.0, "wrong_refusal": 0.5, "mrr": 0.5}
    assert bm25["misses"] == [
        {"line": 1, "query": "it is no", "expected": ["cancel-order"], "returned": None,
         "closest": None, "confidence": None},
    ]


def test_a_benchmark_entries_file_keeps_its_out_of_scope_examples(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "entries.jsonl").write_text(
        json.dumps({"id": "a", "question": "q", "answer": "x", "alternates": ["alt"]}) + "\n",
        encoding="utf-8")
    (source / "out_of_scope.txt").write_text("not ours\nnor this\n", encoding="utf-8")
    written = load_knowledge(write_knowledge(load_knowledge(source), tmp_path / "copy"))
    assert (written.entries[0].id, written.entries[0].alternates) == ("a", ("alt",))
    assert written.out_of_scope == ("not ours", "nor this")


def test_a_playbook_folder_keeps_its_out_of_scope_examples(tmp_path: Path) -> None:
    kb = KnowledgeBase(entries=(Entry("a", "q", "x"),), out_of_scope=("not ours",))
    written = load_knowledge(write_knowledge(kb, tmp_path / "copy"))
    assert ([e.id for e in written.entries], written.out_of_scope) == (["a"], ("not ours",))
