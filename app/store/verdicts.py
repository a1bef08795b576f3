"""Logged questions an agent gave a verdict on, as labels: what the right answer was."""

from __future__ import annotations

from dataclasses import dataclass

from app.knowledge.text import question_key
from app.store.feedback import FeedbackStore


@dataclass(frozen=True)
class AgentVerdict:
    query_id: int
    question: str
    right_entry: str | None  # None: no card fits, "no confident match" is the right answer


def agent_verdicts(store: FeedbackStore) -> list[AgentVerdict]:
    """👍 makes what was answered right; 👎 with a picked card makes that card right, and
    "none of these" makes a refusal right. A 👎 naming nothing says too little to label. The
    latest verdict on a question wins."""
    latest: dict[str, AgentVerdict] = {}
    for query in store.queries():
        verdict = query.feedback
        if verdict is None:
            continue
        if verdict.rating == "up":
            right = query.entry_id if query.matched else None
        elif verdict.picked_entry_id or verdict.none_of_these:
            right = verdict.picked_entry_id
        else:
            continue
        latest[question_key(query.question)] = AgentVerdict(query.id, query.question, right)
    return sorted(latest.values(), key=lambda v: v.query_id)
