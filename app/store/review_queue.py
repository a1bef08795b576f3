"""The review queue: what the playbook failed to answer well, grouped and counted, and the two
ways a knowledge manager resolves it (teach an entry the question, or dismiss it).

Within each group, questions that mean the same are clustered by their vectors (`review_clusters`),
so one action can teach an entry, or dismiss, every phrasing of one unmet need."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.engine.engine import Change, Engine, LoadReport
from app.errors import (
    FeedbackNotSaved,
    PlaybookError,
)
from app.knowledge.text import question_key
from app.records import Entry, confidence_band
from app.store.feedback import FeedbackStore, LoggedQuery

log = logging.getLogger("playbook.review")

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
class AnsweredNow:
    """What the playbook answers a question with now (entry None: no confident match; the
    confidence is then the best guess's)."""

    entry_id: str | None
    question: str | None
    confidence: float


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


def reconcile(store: FeedbackStore, entries: Iterable[Entry]) -> list[LoggedQuery]:
    """Make the queue agree with the playbook, and return the open questions. An open question
    that is already a card's phrasing is marked added to that card (unless an agent's 👎 says
    another card is right); one marked added whose card no longer has it is reopened. This heals
    a review add interrupted between the playbook and the queue (a crash, a database that
    refused the write) in either order."""
    covered = {question_key(text): entry.id for entry in entries
               for text in (entry.question, *entry.alternates)}
    still_open: list[LoggedQuery] = []
    now_added: dict[str, list[int]] = {}
    reopened: list[int] = []
    for query in store.queries():
        owner = covered.get(question_key(query.question))
        if query.review_status == "open":
            verdict = query.feedback
            if verdict and verdict.rating == "down" and verdict.picked_entry_id != owner:
                owner = None  # the agent says the card that has it is wrong: keep it in view
            if owner is None:
                still_open.append(query)
            else:
                now_added.setdefault(owner, []).append(query.id)
        elif query.review_status == "added" and owner != query.added_to:
            reopened.append(query.id)
            still_open.append(query)
    try:
        for entry_id, ids in now_added.items():
            store.set_review_status(ids, "added", added_to=entry_id)
        if reopened:
            store.set_review_status(reopened, "open")
    except FeedbackNotSaved as exc:  # shown right anyway; written on a later look
        log.warning("review queue not reconciled with the playbook: %s", exc)
    return sorted(still_open, key=lambda query: query.id)


def review_groups(store: FeedbackStore, entries: Iterable[Entry]) -> list[ReviewGroup]:
    """The open questions the playbook does not already cover, in three groups, most-asked
    first (then most recent)."""
    buckets: dict[GroupKey, dict[str, list[LoggedQuery]]] = {key: {} for key in GROUP_TITLES}
    for query in reconcile(store, entries):
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


def answered_now(engine: Engine, question: str) -> AnsweredNow:
    """What the playbook answers the question with today (often not what it was asked with)."""
    try:
        answer = engine.ask(question, top_k=1)  # unmatched: the best guess's confidence
    except PlaybookError:  # e.g. a question longer than today's limit
        return AnsweredNow(None, None, 0.0)
    best = answer.best if answer.matched else None
    return AnsweredNow(best.entry.id if best else None, best.entry.question if best else None,
                       round(answer.confidence, 4))


def _open_askings(store: FeedbackStore, question: str) -> list[int]:
    key = question_key(question)
    return [q.id for q in store.queries(status="open") if question_key(q.question) == key]


def _with(query_id: int, ids: Iterable[int]) -> list[int]:
    return sorted({query_id, *ids})


def add_as_alternate(store: FeedbackStore, engine: Engine, query_id: int,
                     entry_id: str, force: bool = False, who: str = "admin") -> AddOutcome:
    """Write the question into the entry's alternates; the engine rebuilds and swaps its index.
    The queue is marked first, so a database that cannot be written changes nothing; a failed
    playbook write puts it back, and `reconcile` heals a crash in between."""
    query = store.query(query_id)
    resolved = _with(query_id, _open_askings(store, query.question))
    store.set_review_status(resolved, "added", added_to=entry_id)
    try:
        report = engine.add_alternate(entry_id, query.question, force=force,
                                      change=Change(who, "review-add"))
    except BaseException:
        store.set_review_status(resolved, "open")
        raise
    return AddOutcome(entry_id, " ".join(query.question.split()), tuple(resolved), report)


def dismiss(store: FeedbackStore, query_id: int) -> tuple[int, ...]:
    """Take a question (every open asking of it) off the queue without changing the playbook."""
    query = store.query(query_id)
    resolved = _with(query_id, _open_askings(store, query.question))
    store.set_review_status(resolved, "dismissed")
    return tuple(resolved)
