"""Run systems over labelled queries and score them: outcomes, metrics, misses, thresholds and
the stable --json document."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.evaluation import metrics
from app.evaluation.queries import QueryCase
from app.evaluation.systems import Response, System

if TYPE_CHECKING:
    from app.evaluation.changes import ChangeReport

# Rankings are scored to this depth (MAP, recall); the API's /api/search allows at most 20.
DEPTH = 20
# An answer at this confidence or more reads as certain: a wrong one is the costliest mistake.
CONFIDENT = 0.9
# The per-query stopwatch (tests replace it with a fake clock to get exact latencies).
clock = time.perf_counter


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
    def wrong_answer(self) -> bool:
        """Answered, and not with a right entry (any answer to an out-of-scope query)."""
        return self.response.answered and not self.top_correct

    @property
    def returned(self) -> str | None:
        """The entry the system answered with; None when it said "no confident match"."""
        return self.top if self.response.answered else None

    @property
    def is_miss(self) -> bool:
        if self.case.in_scope:
            return not (self.top_correct and self.response.answered)
        return self.response.answered

    def to_dict(self) -> dict[str, Any]:
        """One query's answer in --json: what a later run compares against (--baseline)."""
        return {"line": self.case.line, "query": self.case.query,
                "expected": list(self.case.relevant), "returned": self.returned,
                "closest": self.top, "confidence": round4(self.response.confidence),
                "right": not self.is_miss}


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
                "confidence": round4(self.confidence)}


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
            "abstention_or_flag": metrics.rate(
                [not o.response.answered or o.response.flagged for o in self.out_of_scope]),
            "wrong_refusal": metrics.rate([not o.response.answered for o in inside]),
            "answered_correct": metrics.rate(
                [o.top_correct and o.response.answered for o in inside]),
            "confident_wrong": metrics.rate(
                [o.wrong_answer and (o.response.confidence or 0.0) >= CONFIDENT
                 for o in self.outcomes]) if self.has_confidence else None,
            "ece": metrics.expected_calibration_error(table) if table else None,
            "latency_p50_ms": metrics.percentile([o.latency_ms for o in self.outcomes], 50),
            "latency_p95_ms": metrics.percentile([o.latency_ms for o in self.outcomes], 95),
        }

    def categories(self) -> dict[str, SystemResult]:
        """The outcomes of each category in the query file, in first-seen order."""
        grouped: dict[str, list[Outcome]] = {}
        for outcome in self.outcomes:
            if outcome.case.category is not None:
                grouped.setdefault(outcome.case.category, []).append(outcome)
        return {name: SystemResult(self.name, self.description, tuple(found))
                for name, found in grouped.items()}

    def misses(self) -> list[Miss]:
        return [
            Miss(o.case.query, o.case.relevant, o.returned, o.top,
                 o.response.confidence, o.case.line)
            for o in self.outcomes if o.is_miss
        ]


# Metrics where a smaller number is better: --fail-under treats their threshold as a maximum.
LOWER_IS_BETTER = frozenset({"wrong_refusal", "confident_wrong", "ece", "latency_p50_ms",
                             "latency_p95_ms"})
METRIC_NAMES = tuple(SystemResult("", "", ()).metrics())  # every metric is None on no outcomes


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
    changes: ChangeReport | None = None,
) -> dict[str, Any]:
    """The stable --json document (schema "playbook-eval/1", documented in README.md, Evaluation):
    `answers` and `changes` were added to it later, compatibly (old readers ignore them)."""
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
                "metrics": {k: round4(v) for k, v in r.metrics().items()},
                "reliability": [
                    {"lower": b.lower, "upper": b.upper, "count": b.count,
                     "mean_confidence": round4(b.mean_confidence), "accuracy": round4(b.accuracy)}
                    for b in r.reliability()
                ],
                "misses": [m.to_dict() for m in r.misses()],
                "categories": {name: {k: round4(v) for k, v in part.metrics().items()}
                               for name, part in r.categories().items()},
                "answers": [o.to_dict() for o in r.outcomes],
            }
            for r in results
        ],
        "thresholds": [
            {"metric": t.metric, "limit": t.limit, "value": round4(t.value), "passed": t.passed}
            for t in thresholds
        ],
        "passed": all(t.passed for t in thresholds),
        "changes": None if changes is None else changes.to_dict(),
    }


def round4(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
