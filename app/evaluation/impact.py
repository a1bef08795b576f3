"""The impact of a knowledge draft before it is published: re-answer, under the draft, the
labelled eval set and every logged question an agent gave a verdict on, and list each question
whose answer changes, with the quality-gate figures before and after."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from app.config import Settings
from app.engine.engine import Engine
from app.evaluation.baselines import temporary_engine
from app.evaluation.changes import ChangeReport, answers_of, compare
from app.evaluation.queries import QueryCase, StaleLabel, load_queries, split_stale
from app.evaluation.scoring import SystemResult, round4, run_system
from app.evaluation.systems import EngineSystem
from app.knowledge.playbook import KnowledgeBase

EVAL_FILE = "eval/queries.jsonl"  # the labelled set, inside the knowledge folder


class Verdict(Protocol):
    """An agent's verdict on a logged question (app.store.verdicts.AgentVerdict)."""

    @property
    def query_id(self) -> int: ...
    @property
    def question(self) -> str: ...
    @property
    def right_entry(self) -> str | None: ...  # None: "no confident match" was right


def labelled_cases(knowledge: KnowledgeBase) -> list[QueryCase]:
    """The labelled set beside the knowledge's playbook.yaml, if it has one."""
    folder = knowledge.path.parent if knowledge.path else None
    path = folder / EVAL_FILE if folder else None
    return load_queries(path) if path is not None and path.exists() else []


def verdict_cases(verdicts: Iterable[Verdict]) -> list[QueryCase]:
    return [QueryCase(v.question, (v.right_entry,) if v.right_entry else (), v.query_id,
                      "agents") for v in verdicts]


# The figures the quality gate (`make gate`) holds the playbook to.
GATE_METRICS = ("top1", "recall_at_3", "abstention", "wrong_refusal", "confident_wrong")


@dataclass(frozen=True)
class Impact:
    eval_changes: ChangeReport  # the labelled eval set
    agent_changes: ChangeReport  # logged questions with an agent's verdict
    gate_before: dict[str, float | None]
    gate_after: dict[str, float | None]
    stale: tuple[StaleLabel, ...]  # eval labels the draft retires or removes

    @property
    def newly_refused(self) -> int:
        return sum(1 for report in (self.eval_changes, self.agent_changes)
                   for c in report.changes
                   if c.after.returned is None and c.before.returned is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "eval": self.eval_changes.to_dict(),
            "agents": self.agent_changes.to_dict(),
            "newly_refused": self.newly_refused,
            "gate": {name: {"before": round4(self.gate_before.get(name)),
                            "after": round4(self.gate_after.get(name))}
                     for name in GATE_METRICS},
            "stale_labels": [{"line": s.case.line, "query": s.case.query,
                              "entry_id": s.entry_id, "retired": s.retired}
                             for s in self.stale],
        }


def _gate(result: SystemResult) -> dict[str, float | None]:
    figures = result.metrics()
    return {name: figures[name] for name in GATE_METRICS}


def impact(current: Engine, draft: KnowledgeBase, eval_cases: Sequence[QueryCase],
           agent_cases: Sequence[QueryCase], settings: Settings) -> Impact:
    """Answer every question under the current knowledge and under the draft (indexed in a
    temporary folder with the same embedder; the serving index is not touched)."""
    with tempfile.TemporaryDirectory(prefix="playbook-preview-") as tmp:
        proposed = temporary_engine(draft, current.embedder, settings, Path(tmp))
        labelled, stale_now = split_stale(eval_cases, current.knowledge)
        # A label the draft retires stays in the comparison (its question is exactly what the
        # change moves) but out of the gate figures, which judge the draft on valid labels.
        scored, stale = split_stale(labelled, draft)
        reports: list[ChangeReport] = []
        results: list[tuple[SystemResult, SystemResult]] = []
        for cases in (labelled, agent_cases):
            before = run_system(EngineSystem(current, name="published"), cases)
            after = run_system(EngineSystem(proposed, name="draft"), cases)
            reports.append(compare(answers_of(before), after, "published"))
            results.append((before, after))
    valid = {id(case) for case in scored}
    eval_before, eval_after = (_only(result, valid) for result in results[0])
    return Impact(reports[0], reports[1], _gate(eval_before), _gate(eval_after),
                  tuple(stale_now + stale))


def _only(result: SystemResult, cases: set[int]) -> SystemResult:
    return replace(result, outcomes=tuple(o for o in result.outcomes if id(o.case) in cases))
