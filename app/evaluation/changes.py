"""What a knowledge change did: the queries whose answer differs between a before (a saved
`eval --json` result, or the same queries asked of another knowledge folder) and now.

A query's answer is the entry the system answered with, or "no match" when it refused. Right
and wrong are judged on both sides with the labels of the query file in use now, so a change of
label never shows up as a change of answer. Queries are paired by their text (the n-th
occurrence of a text with the n-th occurrence), not by line, so a query file may be reordered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import QueryFileError
from app.evaluation.queries import QueryCase
from app.evaluation.scoring import JSON_SCHEMA, SystemResult, round4

FIXED, BROKEN, CHANGED = "fixed", "broken", "changed"


@dataclass(frozen=True)
class QueryAnswer:
    query: str
    returned: str | None  # the entry answered with; None for "no confident match"
    confidence: float | None


@dataclass(frozen=True)
class Change:
    case: QueryCase
    before: QueryAnswer
    after: QueryAnswer

    @property
    def right_before(self) -> bool:
        return is_right(self.case, self.before.returned)

    @property
    def right_after(self) -> bool:
        return is_right(self.case, self.after.returned)

    @property
    def kind(self) -> str:
        """fixed (wrong -> right), broken (right -> wrong), or changed (right or wrong both times)."""
        if self.right_after != self.right_before:
            return FIXED if self.right_after else BROKEN
        return CHANGED

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.case.line, "query": self.case.query, "expected": list(self.case.relevant),
            "change": self.kind,
            "before": _side(self.before, self.right_before),
            "after": _side(self.after, self.right_after),
        }


@dataclass(frozen=True)
class ChangeReport:
    against: str  # what "before" is: a result file, or "knowledge PATH"
    changes: tuple[Change, ...]
    unchanged: int
    not_compared: int  # queries of the file in use that the before does not hold

    def counts(self) -> dict[str, int]:
        kinds = [c.kind for c in self.changes]
        return {FIXED: kinds.count(FIXED), BROKEN: kinds.count(BROKEN),
                CHANGED: kinds.count(CHANGED), "unchanged": self.unchanged,
                "not_compared": self.not_compared}

    def summary(self) -> str:
        counts = self.counts()
        text = (f"{counts[FIXED]} fixed, {counts[BROKEN]} broken, {counts[CHANGED]} changed "
                f"otherwise, {counts['unchanged']} unchanged")
        if self.not_compared:
            text += f", {self.not_compared} not in the baseline"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"against": self.against, "counts": self.counts(),
                "queries": [c.to_dict() for c in self.changes]}


def is_right(case: QueryCase, returned: str | None) -> bool:
    """In scope: answered with a right entry. Out of scope: refused."""
    return returned in case.relevant if case.in_scope else returned is None


def answers_of(result: SystemResult) -> list[QueryAnswer]:
    return [QueryAnswer(o.case.query, o.returned, o.response.confidence) for o in result.outcomes]


def read_baseline(path: Path) -> list[QueryAnswer]:
    """The first system's answers in a saved `playbook eval --json` document."""
    def broken(problem: str) -> QueryFileError:
        return QueryFileError(str(path), None, problem)

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise broken(f"cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise broken(f"not valid JSON: {exc.msg}") from None
    if not isinstance(document, dict) or document.get("schema") != JSON_SCHEMA:
        raise broken(f"not a {JSON_SCHEMA} document (the output of playbook eval --json)")
    systems = document.get("systems") or [{}]
    rows = systems[0].get("answers") if isinstance(systems[0], dict) else None
    if not isinstance(rows, list):
        raise broken("holds no per-query answers (saved by an older playbook eval: run it again "
                     "with --json on the old knowledge, or use --against-knowledge)")
    try:
        return [QueryAnswer(str(row["query"]), row["returned"], row["confidence"])
                for row in rows]
    except (KeyError, TypeError) as exc:
        raise broken(f"an answer lacks {exc}") from None


def compare(before: Sequence[QueryAnswer], after: SystemResult, against: str) -> ChangeReport:
    """The queries of `after` whose answer differs from `before`, in query-file order."""
    earlier = dict(_keyed(before))
    changes = []
    unchanged = missing = 0
    for outcome, (key, now) in zip(after.outcomes, _keyed(answers_of(after)), strict=True):
        then = earlier.get(key)
        if then is None:
            missing += 1
        elif then.returned == now.returned:
            unchanged += 1
        else:
            changes.append(Change(outcome.case, then, now))
    return ChangeReport(against, tuple(changes), unchanged, missing)


def _keyed(answers: Sequence[QueryAnswer]) -> list[tuple[tuple[str, int], QueryAnswer]]:
    seen: dict[str, int] = {}
    keyed = []
    for answer in answers:
        seen[answer.query] = seen.get(answer.query, 0) + 1
        keyed.append(((answer.query, seen[answer.query]), answer))
    return keyed


def _side(answer: QueryAnswer, right: bool) -> dict[str, Any]:
    return {"returned": answer.returned, "confidence": round4(answer.confidence), "right": right}
