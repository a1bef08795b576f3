"""The review queue: what the playbook failed to answer well, grouped and counted, and the two
ways a knowledge manager resolves it (teach an entry the question, or dismiss it).

Within each group, questions that mean the same are clustered by their vectors (`review_clusters`),
so one action can teach an entry, or dismiss, every phrasing of one unmet need."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from app.embedding.embedder import Embedder, Vectors
from app.engine.engine import Change, Engine, LoadReport
from app.engine.question import clean_question
from app.errors import (
    AlternateConflict,
    EntryNotFound,
    FeedbackNotSaved,
    KnowledgeError,
    PlaybookError,
)
from app.knowledge.editing import with_alternate_line
from app.knowledge.glossary import Glossary
from app.knowledge.playbook import (
    KnowledgeBase,
    display_path,
    dump_playbook_yaml,
    parse_playbook_yaml,
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

# Two queued questions whose vectors' cosine reaches this are one cluster (one unmet need). Chosen
# on the seed playbook with the bundled all-MiniLM-L6-v2, glossary expanded: 0.03 % of pairs of
# texts labelled with different cards reach 0.80 (17 of 62,316, nearly all the two "PO status
# after a cancellation" cards), against 13 % of pairs labelled with the same card; clustering the
# 506 eval questions greedily puts 182 in 63 clusters of two or more, 24 of them beside another
# card's (mostly near-misses no threshold separates: "3 tracking numbers" vs "over 10"). At 0.85
# only 132 are grouped; at 0.75, 36 are misplaced. A reviewer sees every member before adding.
SAME_MEANING = 0.80

# Texts in, one unit-length row per text out: the engine's model, as the engine embeds questions.
Encode = Callable[[list[str]], Vectors]


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
class ReviewCluster:
    """Questions of one group that mean the same: the most-asked (then most recent) first, the
    representative whose vector the others were compared with."""

    members: tuple[ReviewItem, ...]

    @property
    def representative(self) -> ReviewItem:
        return self.members[0]

    @property
    def count(self) -> int:
        """Every open asking of every member: the cluster's volume."""
        return sum(member.count for member in self.members)

    @property
    def query_ids(self) -> tuple[int, ...]:
        return tuple(sorted(i for member in self.members for i in member.query_ids))

    @property
    def last_asked_at(self) -> datetime:
        return max(member.last_asked_at for member in self.members)

    @property
    def verdict(self) -> ReviewItem | None:
        """The first member (in the cluster's order) an agent gave a 👎 with a pick or with
        "none of these"; a pick wins over "none of these"."""
        return (next((m for m in self.members if m.picked_entry_id), None)
                or next((m for m in self.members if m.none_of_these), None))

    def to_dict(self) -> dict[str, object]:
        """The representative's fields, with the cluster's volume, askings, latest asking and
        verdict, plus `members` (each one question, as in `ReviewItem.to_dict`)."""
        verdict = self.verdict
        return {
            **self.representative.to_dict(), "count": self.count,
            "query_ids": list(self.query_ids),
            "last_asked_at": self.last_asked_at.isoformat().replace("+00:00", "Z"),
            "picked_entry_id": verdict.picked_entry_id if verdict else None,
            "none_of_these": verdict.none_of_these if verdict else False,
            "members": [member.to_dict() for member in self.members],
        }


@dataclass(frozen=True)
class ClusteredGroup:
    key: GroupKey
    title: str
    clusters: tuple[ReviewCluster, ...]

    @property
    def count(self) -> int:
        return sum(cluster.count for cluster in self.clusters)


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


def encoder(embedder: Embedder, glossary: Mapping[str, str]) -> Encode:
    """Embed questions as the engine embeds a question it is asked: abbreviations spelled out
    beside themselves (the glossary), then the model."""
    terms = Glossary(glossary)
    return lambda texts: embedder.encode([terms.expand(text) for text in texts])


def engine_encoder(engine: Engine) -> Encode:
    """`encoder` over the engine's model and its current knowledge's glossary."""
    return encoder(engine.embedder, engine.knowledge.glossary)


def cluster_items(items: Sequence[ReviewItem], vectors: Vectors,
                  threshold: float = SAME_MEANING) -> tuple[ReviewCluster, ...]:
    """Greedy and deterministic: in the items' order (most-asked, then most recent), each joins
    the first cluster whose representative's vector is within `threshold` (cosine), or starts
    one. Clusters come most-asked first (then most recent, then latest asking)."""
    if not items:
        return ()
    raw = np.asarray(vectors, dtype=np.float64).reshape(len(items), -1)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    rows = raw / np.where(norms > 0, norms, 1.0)  # unit rows, whatever the encoder returned
    representatives: list[int] = []
    members: list[list[ReviewItem]] = []
    for row, item in enumerate(items):
        if representatives:
            cosines = rows[representatives] @ rows[row]
            close = np.flatnonzero(cosines >= threshold)
            if close.size:
                members[int(close[0])].append(item)
                continue
        representatives.append(row)
        members.append([item])
    clusters = [ReviewCluster(tuple(group)) for group in members]
    return tuple(sorted(clusters, key=lambda c: (
        -c.count, -c.last_asked_at.timestamp(), -c.representative.query_id)))


def review_clusters(store: FeedbackStore, entries: Iterable[Entry], encode: Encode,
                    threshold: float = SAME_MEANING) -> list[ClusteredGroup]:
    """`review_groups`, each group's questions clustered by meaning: one batched `encode` of
    every open question (identical ones, case and spacing aside, are already one)."""
    groups = review_groups(store, entries)
    texts = [item.question for group in groups for item in group.items]
    vectors = encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
    clustered: list[ClusteredGroup] = []
    start = 0
    for group in groups:
        end = start + len(group.items)
        clustered.append(ClusteredGroup(group.key, group.title,
                                        cluster_items(group.items, vectors[start:end], threshold)))
        start = end
    return clustered


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


@dataclass(frozen=True)
class BatchAddOutcome:
    entry_id: str
    query_ids: tuple[int, ...]  # the asking named for each distinct question, in the order given
    added: tuple[AddOutcome, ...]  # for each of them (one write, one index: the same report)

    @property
    def resolved(self) -> tuple[int, ...]:
        return tuple(sorted(i for outcome in self.added for i in outcome.resolved))

    @property
    def report(self) -> LoadReport:
        return self.added[-1].report


def _distinct(store: FeedbackStore, query_ids: Iterable[int]) -> list[LoggedQuery]:
    """The logged questions (QueryNotFound before anything changes), one per question text."""
    seen: dict[str, LoggedQuery] = {}
    for query in [store.query(query_id) for query_id in dict.fromkeys(query_ids)]:
        seen.setdefault(question_key(query.question), query)
    return list(seen.values())


def _owners(entries: Iterable[Entry]) -> dict[str, str]:
    return {question_key(text): entry.id for entry in entries
            for text in (entry.question, *entry.alternates)}


def _already_elsewhere(entries: Iterable[Entry], entry_id: str,
                       phrasings: Iterable[str]) -> list[str]:
    owners = _owners(entries)
    return [f"{phrasing!r} is already a phrasing of {owner!r}" for phrasing in phrasings
            if (owner := owners.get(question_key(phrasing))) not in (None, entry_id)]


def _refuse(refusals: list[str], forceable: bool = False) -> None:
    if refusals:
        raise AlternateConflict("nothing added: " + "; ".join(refusals) + ". Leave those out"
                                + (", reword them, or add them anyway (force)" if forceable
                                   else " or reword them"))


def _with_alternates(text: str, knowledge: KnowledgeBase, entry_id: str,
                     phrasings: Sequence[str]) -> str:
    """playbook.yaml's text with the phrasings as new lines of the entry's alternates (as
    app.knowledge.editing adds one), checked against the file as it is now, under its lock."""
    path = knowledge.path
    if path is None or knowledge.entry(entry_id) is None:
        raise EntryNotFound(entry_id)
    _refuse(_already_elsewhere(knowledge.entries, entry_id, phrasings))
    edited: str | None = text
    expected = knowledge
    for phrasing in phrasings:
        entry = expected.entry(entry_id)
        if entry is None or phrasing in entry.alternates:
            continue
        expected = expected.with_alternate(entry_id, phrasing)
        if edited is not None:
            edited = with_alternate_line(edited, entry_id, phrasing)
    if edited is None:  # no block list to extend: write the whole playbook (comments are lost)
        edited = dump_playbook_yaml(expected.entries, expected.needs_review, expected.retired)
    after = parse_playbook_yaml(edited, path, knowledge.slots)
    if _texts(after) != _texts(expected):
        raise KnowledgeError(display_path(path), None,
                             f"adding alternates to {entry_id!r} would change other entries; "
                             "edit the file by hand")
    return edited


def _texts(knowledge: KnowledgeBase) -> list[tuple[str, ...]]:
    return [(e.id, e.question, e.answer, str(e.macro), *e.alternates) for e in knowledge.entries]


def add_all_as_alternates(store: FeedbackStore, engine: Engine, query_ids: Sequence[int],
                          entry_id: str, force: bool = False,
                          who: str = "admin") -> BatchAddOutcome:
    """Teach an entry every question of a cluster in one write and one index rebuild (one
    version in the history), resolving every open asking of each: all or nothing. Refused
    before anything changes: an unknown question or entry, a phrasing already another entry's,
    or (unless `force`) one whose nearest indexed text belongs to another entry. As in
    `add_as_alternate`, the queue is marked first and put back if the playbook write fails."""
    queries = _distinct(store, query_ids)
    target = engine.entry(entry_id)  # EntryNotFound
    limit = engine.settings.max_question_chars
    phrasings = [clean_question(query.question, limit) for query in queries]
    _refuse(_already_elsewhere(engine.entries(), target.id, phrasings))
    if not force:
        nearer = [(phrasing, found) for phrasing in phrasings
                  if (found := engine.rival(target.id, phrasing)) is not None]
        _refuse([f"{phrasing!r} sits closer to {rival!r} ({closest:.2f}) than to "
                 f"{target.id!r} ({own:.2f})" for phrasing, (rival, closest, own) in nearer],
                forceable=True)
    open_ids: dict[str, list[int]] = {}
    for asking in store.queries(status="open"):
        open_ids.setdefault(question_key(asking.question), []).append(asking.id)
    resolved = [_with(query.id, open_ids.get(question_key(query.question), []))
                for query in queries]
    every = sorted({i for ids in resolved for i in ids})
    store.set_review_status(every, "added", added_to=target.id)
    try:
        report = engine.publish(
            lambda text, knowledge: _with_alternates(text, knowledge, target.id, phrasings),
            Change(who, "review-add"))
    except BaseException:
        store.set_review_status(every, "open")
        raise
    return BatchAddOutcome(target.id, tuple(query.id for query in queries), tuple(
        AddOutcome(target.id, phrasing, tuple(ids), report)
        for phrasing, ids in zip(phrasings, resolved, strict=True)))


def dismiss_all(store: FeedbackStore, query_ids: Sequence[int]) -> tuple[int, ...]:
    """Take every open asking of each question (a cluster's members) off the queue at once."""
    queries = _distinct(store, query_ids)
    keys = {question_key(query.question) for query in queries}
    resolved = sorted({*(query.id for query in queries),
                       *(q.id for q in store.queries(status="open")
                         if question_key(q.question) in keys)})
    store.set_review_status(resolved, "dismissed")
    return tuple(resolved)
