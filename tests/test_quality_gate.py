"""The quality gate on the seed playbook with the real model (issue 2): the labelled eval set must
stay answered right, out-of-scope questions refused, and the eval set honest (disjoint from the
alternates the index holds and from the out-of-scope lines used for calibration).

`playbook eval knowledge/eval/queries.jsonl --compare` prints the same figures beside the
baselines'."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest

from app.engine.engine import Engine
from app.evaluation.queries import QueryCase, load_queries
from app.evaluation.scoring import SystemResult, run_system
from app.evaluation.systems import EngineSystem
from tests.fakes import SEED_KNOWLEDGE

pytestmark = pytest.mark.model

EVAL_QUERIES = SEED_KNOWLEDGE / "eval" / "queries.jsonl"
SEED_EXPORT = SEED_KNOWLEDGE / "seed" / "playbook.txt"
NEAR_DUPLICATE_COSINE = 0.95


def fold(text: str) -> str:
    """Case, accents, punctuation and spacing removed: 'Cx's PO?!' == 'cxs po'."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", "", text).split())


@pytest.fixture(scope="module")
def cases(seed_engine: Engine) -> list[QueryCase]:
    return load_queries(EVAL_QUERIES, [e.id for e in seed_engine.entries()])


@pytest.fixture(scope="module")
def result(seed_engine: Engine, cases: list[QueryCase]) -> SystemResult:
    return run_system(EngineSystem(seed_engine), cases)


def misses(result: SystemResult) -> str:
    return "\n".join(f"line {m.line}: {m.query!r} expected {m.expected}, answered {m.returned}, "
                     f"closest {m.closest}, confidence {m.confidence:.3f}"
                     for m in result.misses())


def test_the_eval_set_has_five_queries_per_entry_and_25_out_of_scope(
    seed_engine: Engine, cases: list[QueryCase]
) -> None:
    per_entry = {e.id: sum(1 for c in cases if e.id in c.relevant) for e in seed_engine.entries()}
    assert {entry_id: n for entry_id, n in per_entry.items() if n < 5} == {}
    assert sum(1 for c in cases if not c.in_scope) >= 25


def test_top1_at_least_95_percent(result: SystemResult) -> None:
    assert result.metrics()["top1"] >= 0.95, misses(result)


def test_top3_at_least_99_percent(result: SystemResult) -> None:
    assert result.metrics()["recall_at_3"] >= 0.99, misses(result)


def test_out_of_scope_refused_at_least_90_percent(result: SystemResult) -> None:
    assert result.metrics()["abstention"] >= 0.90, misses(result)


def test_in_scope_wrongly_refused_at_most_3_percent(result: SystemResult) -> None:
    assert result.metrics()["wrong_refusal"] <= 0.03, misses(result)


def test_every_seed_question_asked_verbatim_returns_its_entry_and_the_seed_answer(
    seed_engine: Engine,
) -> None:
    export = SEED_EXPORT.read_text(encoding="utf-8").splitlines()
    wrong = []
    for entry in seed_engine.entries():
        assert entry.source is not None
        question_line, answer_line = export[entry.source.line - 1], export[entry.source.line]
        assert question_line.strip() == entry.question.strip()
        answer = seed_engine.ask(entry.question)
        got = (answer.best.entry.id, answer.best.entry.answer) if answer.best else (None, None)
        if got != (entry.id, answer_line.strip()):
            wrong.append((entry.question, got))
    assert wrong == []


def test_no_eval_query_equals_or_near_duplicates_an_alternate(
    seed_engine: Engine, cases: list[QueryCase]
) -> None:
    alternates = [(e.id, a) for e in seed_engine.entries() for a in e.alternates]
    folded = {fold(a): a for _, a in alternates}
    assert [c.query for c in cases if fold(c.query) in folded] == []
    close = near_duplicates(seed_engine, [c.query for c in cases], [a for _, a in alternates])
    assert close == []


def test_out_of_scope_eval_queries_do_not_overlap_the_calibration_negatives(
    seed_engine: Engine, cases: list[QueryCase]
) -> None:
    negatives = list(seed_engine.knowledge.out_of_scope)
    outside = [c.query for c in cases if not c.in_scope]
    folded = {fold(n) for n in negatives}
    assert [q for q in outside if fold(q) in folded] == []
    assert near_duplicates(seed_engine, outside, negatives) == []


def near_duplicates(engine: Engine, queries: list[str],
                    texts: list[str]) -> list[tuple[str, str, float]]:
    """(query, text, cosine) for every pair at or above NEAR_DUPLICATE_COSINE."""
    # Unit vectors: the inner product is the cosine similarity.
    similarity = engine.embedder.encode(queries) @ engine.embedder.encode(texts).T
    rows, columns = np.nonzero(similarity >= NEAR_DUPLICATE_COSINE)
    return [(queries[r], texts[c], round(float(similarity[r, c]), 3))
            for r, c in zip(rows.tolist(), columns.tolist(), strict=True)]
