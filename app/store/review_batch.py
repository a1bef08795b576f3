"""Actions on a whole cluster of the review queue: teach a card every question in one write and
one index rebuild (all or nothing), mark them all as questions the playbook does not answer, or
dismiss them all."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.engine.engine import Change, Engine, LoadReport
from app.engine.question import clean_question
from app.errors import AlternateConflict
from app.knowledge.editing import with_alternates, with_out_of_scope
from app.knowledge.playbook import KnowledgeBase
from app.knowledge.text import question_key
from app.ranking.out_of_scope import SIBLING
from app.records import Entry
from app.store.feedback import FeedbackStore, LoggedQuery
from app.store.review_queue import AddOutcome, _with


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


@dataclass(frozen=True)
class OutOfScopeOutcome:
    lines: tuple[str, ...]  # the distinct questions, as written to out_of_scope.txt
    resolved: tuple[int, ...]
    report: LoadReport


def mark_out_of_scope(store: FeedbackStore, engine: Engine, query_ids: Sequence[int],
                      force: bool = False, who: str = "admin") -> OutOfScopeOutcome:
    """Write every question of a cluster into out_of_scope.txt in one write and one rebuild,
    and take every open asking of each off the queue (dismissed). Refused before anything
    changes (AlternateConflict): a card's own phrasing, and (unless `force`) a question whose
    nearest card text is SIBLING or nearer: as a line it would refuse questions meant for that
    card. The queue is marked first and put back if the write fails."""
    queries = _distinct(store, query_ids)
    limit = engine.settings.max_question_chars
    lines = tuple(clean_question(query.question, limit) for query in queries)

    def edit(text: str, knowledge: KnowledgeBase) -> str:  # as the files are now, under the lock
        owners = _owners(knowledge.entries)
        _refuse_marking([f"{line!r} is a phrasing of {owners[question_key(line)]!r}"
                         for line in lines if question_key(line) in owners])
        if not force:
            near = [(line, found) for line in lines
                    if (found := engine.nearest_card(line)) is not None and found[1] >= SIBLING]
            _refuse_marking([f"{line!r} sits close to {entry_id!r} ({cosine:.2f})"
                             for line, (entry_id, cosine) in near], forceable=True)
        return with_out_of_scope(text, lines)

    resolved = dismiss_all(store, query_ids)
    try:
        report = engine.publish_out_of_scope(edit, Change(who, "review-out-of-scope"))
    except BaseException:
        store.set_review_status(list(resolved), "open")
        raise
    return OutOfScopeOutcome(lines, resolved, report)


def _refuse_marking(refusals: list[str], forceable: bool = False) -> None:
    if refusals:
        raise AlternateConflict(
            "nothing marked out of scope: " + "; ".join(refusals) + (
                ". As out of scope it would refuse questions meant for that card; if the card "
                "does not apply to it (another vendor, another time), its conditions refuse it "
                "already. Leave it out, or mark it anyway (force)" if forceable else ""))


def _with_alternates(text: str, knowledge: KnowledgeBase, entry_id: str,
                     phrasings: Sequence[str]) -> str:
    """As the file is now, under its lock: refused if another card has taken a phrasing since."""
    assert knowledge.path is not None  # engine.publish only edits a playbook.yaml
    _refuse(_already_elsewhere(knowledge.entries, entry_id, phrasings))
    return with_alternates(text, knowledge.path, knowledge.slots, entry_id, phrasings)
