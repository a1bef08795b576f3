"""Evaluate a retrieval system on a labelled query file: parse, run, score, list the misses.

A system is anything with `name`, `description` and `run(query, depth) -> Response`: the local
Engine, a running server (through /api/search and /api/ask), or a baseline (app.baselines).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from app import metrics
from app.errors import KnowledgeError, PlaybookError
from app.knowledge import KnowledgeBase, read_text

# Rankings are scored to this depth (MAP, recall); the API's /api/search allows at most 20.
DEPTH = 20
CSV_SEPARATOR = "|"
# The per-query stopwatch (tests replace it with a fake clock to get exact latencies).
clock = time.perf_counter


class QueryFileError(KnowledgeError):
    """A query file is broken: the message names the file, the line and the problem."""


@dataclass(frozen=True)
class QueryCase:
    query: str
    relevant: tuple[str, ...]  # empty: out of scope, no entry is a right answer
    line: int

    @property
    def in_scope(self) -> bool:
        return bool(self.relevant)


# ---------------------------------------------------------------- query files


def load_queries(path: Path, known_ids: Iterable[str] | None = None) -> list[QueryCase]:
    """Read JSONL or CSV (by suffix) of `query` and `expected` (an entry id, a list of ids, or
    null/empty for out of scope; the benchmarks' `relevant` list is accepted too). When
    `known_ids` is given, an expected id that is not among them is an error."""
    text = read_text(path)
    parse = _parse_csv if path.suffix.lower() == ".csv" else _parse_jsonl
    cases = parse(text, str(path))
    if not cases:
        raise QueryFileError(str(path), None, "the file holds no queries")
    if known_ids is not None:
        known = set(known_ids)
        for case in cases:
            unknown = [r for r in case.relevant if r not in known]
            if unknown:
                raise QueryFileError(str(path), case.line,
                                     f"unknown entry id {unknown[0]!r} in the expected answer")
    return cases


def _parse_jsonl(text: str, file: str) -> list[QueryCase]:
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QueryFileError(file, number, f"not valid JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise QueryFileError(file, number, "expected a JSON object with 'query' and "
                                 "'expected'")
        cases.append(_case(row, file, number))
    return cases


def _parse_csv(text: str, file: str) -> list[QueryCase]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "query" not in header or not ({"expected", "relevant"} & set(header)):
        raise QueryFileError(file, 1, "the header must name a 'query' column and an 'expected' "
                             f"column; found {header}")
    cases = []
    for row in reader:
        number = reader.line_num
        if None in row:
            raise QueryFileError(file, number, "more cells than header columns")
        cell = row.get("expected") if "expected" in header else row.get("relevant")
        cell = (cell or "").strip()
        expected: Any = [part.strip() for part in cell.split(CSV_SEPARATOR)] if cell else None
        cases.append(_case({"query": row.get("query"), "expected": expected}, file, number))
    return cases


def _case(row: dict[str, Any], file: str, line: int) -> QueryCase:
    query = row.get("query")
    if not isinstance(query, str) or not query.strip():
        raise QueryFileError(file, line, "missing or empty 'query'")
    if "expected" in row:
        expected = row["expected"]
    elif "relevant" in row:
        expected = row["relevant"]
    else:
        raise QueryFileError(file, line, "missing 'expected' (an entry id, a list of ids, or "
                             "null for an out-of-scope query)")
    if expected is None or expected == "":
        relevant: tuple[str, ...] = ()
    elif isinstance(expected, str):
        relevant = (expected.strip(),)
    elif isinstance(expected, list) and all(isinstance(e, str) and e.strip() for e in expected):
        relevant = tuple(dict.fromkeys(e.strip() for e in expected))
    else:
        raise QueryFileError(file, line, f"'expected' must be an entry id, a list of entry ids "
                             f"or null, got {expected!r}")
    return QueryCase(query.strip(), relevant, line)


def slice_alternates(kb: KnowledgeBase, keep: int) -> KnowledgeBase:
    """The knowledge with each entry's alternates cut to the first `keep` (0 removes them)."""
    return replace(kb, entries=tuple(replace(e, alternates=e.alternates[:keep])
                                     for e in kb.entries))


# ---------------------------------------------------------------- systems


@dataclass(frozen=True)
class Response:
    """What a system returned for one query.

    `ranking` holds entry ids best first; `answered` is False when the system said "no confident
    match"; `confidence` is None for systems that have no calibrated confidence."""

    ranking: tuple[str, ...]
    top_score: float | None
    confidence: float | None
    answered: bool


class System(Protocol):
    name: str
    description: str

    def run(self, query: str, depth: int) -> Response: ...


class EngineSystem:
    """The shipping engine in this process: one `ask` per query, as an agent would."""

    description = "shipping engine: max cosine over question+alternates, calibrated confidence"

    def __init__(self, engine: Any, name: str = "engine", description: str | None = None) -> None:
        self.engine = engine
        self.name = name
        if description is not None:
            self.description = description

    def entry_ids(self) -> list[str]:
        return [e.id for e in self.engine.entries()]

    def run(self, query: str, depth: int) -> Response:
        answer = self.engine.ask(query, top_k=depth)
        matches = ([answer.best] if answer.best is not None else []) + list(answer.alternatives)
        return Response(
            ranking=tuple(m.entry.id for m in matches),
            top_score=matches[0].score if matches else None,
            confidence=answer.confidence,
            answered=answer.matched,
        )


class RemoteSystem:
    """A running server: ranking and scores from GET /api/search, the decision and confidence
    from POST /api/ask (its latency is the one recorded)."""

    description = "a running server, through /api/search and /api/ask"

    def __init__(self, url: str, client: Any = None, name: str = "server") -> None:
        import httpx

        self.name = name
        self.url = url.rstrip("/")
        self.client = client or httpx.Client(base_url=self.url, timeout=30.0)

    def entry_ids(self) -> list[str]:
        return [e["id"] for e in self._json(self.client.get("/api/entries"))]

    def run(self, query: str, depth: int) -> Response:
        found = self._json(self.client.get("/api/search", params={"q": query, "k": depth}))
        answer = self._json(self.client.post("/api/ask", json={"question": query, "top_k": 1}))
        results = found["results"]
        return Response(
            ranking=tuple(r["entry_id"] for r in results),
            top_score=results[0]["score"] if results else None,
            confidence=answer["confidence"],
            answered=answer["matched"],
        )

    def _json(self, response: Any) -> Any:
        if response.status_code != 200:
            detail = response.text[:300]
            raise PlaybookError(f"{self.url} answered {response.status_code}: {detail}")
        return response.json()


# ---------------------------------------------------------------- running and scoring


@dataclass(frozen=True)
class Outcome:
    case: QueryCase
    response: Response
    latency_ms: float

    @property
    def top(self) -> str | None:
        return self.response.ranking[0] if self.response.ranking else None

    @property
    def top_correct(self) -> bool:
        return self.top is not None and self.top in self.case.relevant

    @property
    def is_miss(self) -> bool:
        if self.case.in_scope:
            return not (self.top_correct and self.response.answered)
        return self.response.answered


@dataclass(frozen=True)
class Miss:
    query: str
    expected: tuple[str, ...]
    returned: str | None  # the entry the system answered with; None when it abstained
    closest: str | None  # its top-ranked entry, answered or not
    confidence: float | None
    line: int

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "query": self.query, "expected": list(self.expected),
                "returned": self.returned, "closest": self.closest,
                "confidence": _round(self.confidence)}


@dataclass(frozen=True)
class SystemResult:
    name: str
    description: str
    outcomes: tuple[Outcome, ...]

    @property
    def in_scope(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.case.in_scope]

    @property
    def out_of_scope(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.case.in_scope]

    @property
    def has_confidence(self) -> bool:
        return all(o.response.confidence is not None for o in self.outcomes)

    def reliability(self) -> list[metrics.ReliabilityBin]:
        if not self.has_confidence:
            return []
        return metrics.reliability_table(
            [float(o.response.confidence or 0.0) for o in self.outcomes],
            [o.top_correct for o in self.outcomes],
        )

    def metrics(self) -> dict[str, float | None]:
        """The metric names that --json and --fail-under use (README.md, Evaluation)."""
        inside = self.in_scope
        rankings = [(o.response.ranking, o.case.relevant) for o in inside]
        table = self.reliability()
        return {
            "top1": metrics.rate([o.top_correct for o in inside]),
            "recall_at_3": metrics.mean([metrics.recall_at(r, rel, 3) for r, rel in rankings]),
            "recall_at_5": metrics.mean([metrics.recall_at(r, rel, 5) for r, rel in rankings]),
            "mrr": metrics.mean([metrics.reciprocal_rank(r, rel) for r, rel in rankings]),
            "p_at_1": metrics.mean([metrics.precision_at(r, rel, 1) for r, rel in rankings]),
            "p_at_3": metrics.mean([metrics.precision_at(r, rel, 3) for r, rel in rankings]),
            "map": metrics.mean([metrics.average_precision(r, rel) for r, rel in rankings]),
            "abstention": metrics.rate([not o.response.answered for o in self.out_of_scope]),
            "wrong_refusal": metrics.rate([not o.response.answered for o in inside]),
            "answered_correct": metrics.rate(
                [o.top_correct and o.response.answered for o in inside]),
            "ece": metrics.expected_calibration_error(table) if table else None,
            "latency_p50_ms": metrics.percentile([o.latency_ms for o in self.outcomes], 50),
            "latency_p95_ms": metrics.percentile([o.latency_ms for o in self.outcomes], 95),
        }

    def misses(self) -> list[Miss]:
        return [
            Miss(o.case.query, o.case.relevant,
                 o.top if o.response.answered else None, o.top,
                 o.response.confidence, o.case.line)
            for o in self.outcomes if o.is_miss
        ]


# Metrics where a smaller number is better: --fail-under treats their threshold as a maximum.
LOWER_IS_BETTER = frozenset({"wrong_refusal", "ece", "latency_p50_ms", "latency_p95_ms"})
METRIC_NAMES = ("top1", "recall_at_3", "recall_at_5", "mrr", "p_at_1", "p_at_3", "map",
                "abstention", "wrong_refusal", "answered_correct", "ece",
                "latency_p50_ms", "latency_p95_ms")


def run_system(
    system: System,
    cases: Sequence[QueryCase],
    depth: int = DEPTH,
    progress: Callable[[Iterable[QueryCase], str], Iterable[QueryCase]] | None = None,
) -> SystemResult:
    outcomes = []
    iterable: Iterable[QueryCase] = progress(cases, system.name) if progress else cases
    for case in iterable:
        started = clock()
        response = system.run(case.query, depth)
        elapsed = (clock() - started) * 1000.0
        outcomes.append(Outcome(case, response, elapsed))
    return SystemResult(system.name, system.description, tuple(outcomes))


@dataclass(frozen=True)
class Threshold:
    metric: str
    limit: float
    value: float | None

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        if self.metric in LOWER_IS_BETTER:
            return self.value <= self.limit
        return self.value >= self.limit

    def describe(self) -> str:
        sign = "<=" if self.metric in LOWER_IS_BETTER else ">="
        shown = "n/a" if self.value is None else f"{self.value:.4f}"
        verdict = "ok" if self.passed else "FAILED"
        return f"{verdict}: {self.metric} = {shown} (required {sign} {self.limit:g})"


def parse_threshold(text: str) -> tuple[str, float]:
    """'top1=0.95' -> ('top1', 0.95); unknown names and bad numbers raise ValueError."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or name not in METRIC_NAMES:
        raise ValueError(f"expected METRIC=VALUE with METRIC one of {', '.join(METRIC_NAMES)}; "
                         f"got {text!r}")
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number (in {text!r})") from None


def check_thresholds(result: SystemResult, limits: Sequence[tuple[str, float]]) -> list[Threshold]:
    values = result.metrics()
    return [Threshold(name, limit, values[name]) for name, limit in limits]


JSON_SCHEMA = "playbook-eval/1"


def to_json(
    results: Sequence[SystemResult],
    queries_file: str,
    knowledge: str,
    thresholds: Sequence[Threshold] = (),
) -> dict[str, Any]:
    """The stable --json document (schema "playbook-eval/1", documented in README.md, Evaluation)."""
    cases = results[0].outcomes if results else ()
    return {
        "schema": JSON_SCHEMA,
        "queries_file": queries_file,
        "knowledge": knowledge,
        "counts": {
            "queries": len(cases),
            "in_scope": sum(1 for o in cases if o.case.in_scope),
            "out_of_scope": sum(1 for o in cases if not o.case.in_scope),
        },
        "systems": [
            {
                "name": r.name,
                "description": r.description,
                "metrics": {k: _round(v) for k, v in r.metrics().items()},
                "reliability": [
                    {"lower": b.lower, "upper": b.upper, "count": b.count,
                     "mean_confidence": _round(b.mean_confidence), "accuracy": _round(b.accuracy)}
                    for b in r.reliability()
                ],
                "misses": [m.to_dict() for m in r.misses()],
            }
            for r in results
        ],
        "thresholds": [
            {"metric": t.metric, "limit": t.limit, "value": _round(t.value), "passed": t.passed}
            for t in thresholds
        ],
        "passed": all(t.passed for t in thresholds),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
