"""The review queue: what the playbook failed to answer well, grouped and counted, and the two
ways a knowledge manager resolves it (teach an entry the question, or dismiss it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.engine.engine import Engine, LoadReport
from app.knowledge.text import question_key
from app.records import confidence_band
from app.store.feedback import FeedbackStore, LoggedQuery

GroupKey = Literal["thumbs_down", "no_match", "low_confidence"]

# A question lands in the first group it qualifies for, so counts add up and one action clears it.
GROUP_TITLES: dict[GroupKey, str] = {
    "thumbs_down": "Thumbs down",
    "no_match": "No confident match",
    "low_confidence": "Low confidence",
}


@dataclass(frozen=True)
class ReviewItem:
    """One question (case, punctuation and spacing ignored) with how often it was asked while still open."""

    query_id: int  # the latest asking; actions on it resolve every open asking of the question
    question: str
    count: int
    query_ids: tuple[int, ...]
    last_asked_at: datetime
    entry_id: str | None
    confidence: float
    band: str
    picked_entry_id: str | None
    none_of_these: bool

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of `playbook review --json` and, with the entries' questions, of
        GET /api/review."""
        return {
            "query_id": self.query_id, "question": self.question, "count": self.count,
            "query_ids": list(self.query_ids),
            "last_asked_at": self.last_asked_at.isoformat().replace("+00:00", "Z"),
            "entry_id": self.entry_id, "confidence": self.confidence, "band": self.band,
            "picked_entry_id": self.picked_entry_id, "none_of_these": self.none_of_these,
        }


@dataclass(frozen=True)
class ReviewGroup:
    key: GroupKey
    title: str
    items: tuple[ReviewItem, ...]

    @property
    def count(self) -> int:
        return sum(item.count for item in self.items)


@dataclass(frozen=True)
class AddOutcome:
    entry_id: str
    phrasing: str
    resolved: tuple[int, ...]
    report: LoadReport


def group_of(query: LoggedQuery) -> GroupKey | None:
    if query.feedback is not None and query.feedback.rating == "down":
        return "thumbs_down"
    if not query.matched:
        return "no_match"
    if confidence_band(query.confidence) != "high":
        return "low_confidence"
    return None


def review_groups(store: FeedbackStore) -> list[ReviewGroup]:
    """The open questions in three groups, most-asked first (then most recent)."""
    buckets: dict[GroupKey, dict[str, list[LoggedQuery]]] = {key: {} for key in GROUP_TITLES}
    for query in store.queries(status="open"):
        key = group_of(query)
        if key is not None:
            buckets[key].setdefault(question_key(query.question), []).append(query)
    return [
        ReviewGroup(key, GROUP_TITLES[key], tuple(sorted(
            (_item(askings) for askings in buckets[key].values()),
            key=lambda item: (-item.count, -item.last_asked_at.timestamp(), -item.query_id))))
        for key in GROUP_TITLES
    ]


def _item(askings: list[LoggedQuery]) -> ReviewItem:
    latest = askings[-1]
    picked = next((q.feedback for q in reversed(askings)
                   if q.feedback is not None and q.feedback.rating == "down"), None)
    return ReviewItem(
        query_id=latest.id, question=latest.question, count=len(askings),
        query_ids=tuple(q.id for q in askings), last_asked_at=latest.asked_at,
        entry_id=latest.entry_id, confidence=latest.confidence,
        band=confidence_band(latest.confidence),
        picked_entry_id=picked.picked_entry_id if picked else None,
        none_of_these=picked.none_of_these if picked else False)


def _open_askings(store: FeedbackStore, question: str) -> list[int]:
    key = question_key(question)
    return [q.id for q in store.queries(status="open") if question_key(q.question) == key]


def _with(query_id: int, ids: Iterable[int]) -> list[int]:
    return sorted({query_id, *ids})


def add_as_alternate(store: FeedbackStore, engine: Engine, query_id: int,
                     entry_id: str, force: bool = False) -> AddOutcome:
    """Write the question into the entry's alternates; the engine rebuilds and swaps its index."""
    query = store.query(query_id)
    report = engine.add_alternate(entry_id, query.question, force=force)
    resolved = _with(query_id, _open_askings(store, query.question))
    store.set_review_status(resolved, "added", added_to=entry_id)
    return AddOutcome(entry_id, " ".join(query.question.split()), tuple(resolved), report)


def dismiss(store: FeedbackStore, query_id: int) -> tuple[int, ...]:
    """Take a question (every open asking of it) off the queue without changing the playbook."""
    query = store.query(query_id)
    resolved = _with(query_id, _open_askings(store, query.question))
    store.set_review_status(resolved, "dismissed")
    return tuple(resolved)
