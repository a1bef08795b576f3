"""The review API: the queue of questions the playbook answered badly, and the two ways to close
one (teach an entry the question, or dismiss it). Admin only."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from app.engine.engine import Engine
from app.errors import EntryNotFound, PlaybookError
from app.store import review_queue as review
from app.web.deps import AdminDep, EngineDep, QueryId, StoreDep, require_admin
from app.web.schemas import STRICT_BODY, error_responses

router = APIRouter(prefix="/api/review",
                   responses=error_responses(400, 401, 404, 409, 413, 415, 422, 503),
                   dependencies=[Depends(require_admin)])


class ReviewItemOut(BaseModel):
    query_id: int
    question: str
    count: int
    query_ids: list[int]
    last_asked_at: str
    entry_id: str | None
    entry_question: str | None
    confidence: float
    band: str
    picked_entry_id: str | None
    picked_question: str | None
    none_of_these: bool
    now_entry_id: str | None = Field(
        description="What the playbook answers this question with now (null: no confident "
        "match): after a knowledge change, often no longer what it was asked with.")
    now_question: str | None
    now_confidence: float


class ReviewGroupOut(BaseModel):
    key: str
    title: str
    count: int
    items: list[ReviewItemOut]


class ReviewOut(BaseModel):
    total: int
    groups: list[ReviewGroupOut]


class AddAlternateIn(BaseModel):
    model_config = STRICT_BODY

    entry_id: str
    force: bool = Field(default=False, description="Add it even though it sits closer to another "
                        "entry (a phrasing already another entry's is always refused).")


class IndexOut(BaseModel):
    action: str
    entries: int
    vectors: int


class AddAlternateOut(BaseModel):
    query_id: int
    entry_id: str
    phrasing: str
    resolved: list[int]
    index: IndexOut


class DismissOut(BaseModel):
    query_id: int
    resolved: list[int]


def _question_of(engine: Engine, entry_id: str | None) -> str | None:
    if entry_id is None:
        return None
    try:
        return engine.entry(entry_id).question
    except EntryNotFound:
        return None


def _answered_now(engine: Engine, question: str) -> dict[str, object]:
    try:
        answer = engine.ask(question, top_k=1)  # unmatched: the best guess's confidence
    except PlaybookError:  # e.g. a question longer than today's limit
        return {"now_entry_id": None, "now_question": None, "now_confidence": 0.0}
    best = answer.best if answer.matched else None
    return {"now_entry_id": best.entry.id if best else None,
            "now_question": best.entry.question if best else None,
            "now_confidence": round(answer.confidence, 4)}


@router.get("", response_model=ReviewOut, summary="The review queue, grouped and counted, each "
            "question with what it was answered with then and what the playbook answers now")
def review_queue(engine: EngineDep, store: StoreDep) -> ReviewOut:
    groups = [
        ReviewGroupOut(key=group.key, title=group.title, count=group.count, items=[
            ReviewItemOut.model_validate({
                **item.to_dict(), "entry_question": _question_of(engine, item.entry_id),
                "picked_question": _question_of(engine, item.picked_entry_id),
                **_answered_now(engine, item.question)})
            for item in group.items])
        for group in review.review_groups(store, engine.entries())
    ]
    return ReviewOut(total=sum(g.count for g in groups), groups=groups)


@router.post("/{query_id}/add", response_model=AddAlternateOut,
                 summary="Teach an entry this question; the index is rebuilt and swapped")
def review_add(query_id: QueryId, body: AddAlternateIn, engine: EngineDep,
               store: StoreDep, who: AdminDep) -> AddAlternateOut:
    outcome = review.add_as_alternate(store, engine, query_id, body.entry_id, body.force, who)
    return AddAlternateOut(
        query_id=query_id, entry_id=outcome.entry_id, phrasing=outcome.phrasing,
        resolved=list(outcome.resolved),
        index=IndexOut(action=outcome.report.action, entries=outcome.report.entries,
                       vectors=outcome.report.vectors))


@router.post("/{query_id}/dismiss", response_model=DismissOut,
                 summary="Take a question off the queue")
def review_dismiss(query_id: QueryId, store: StoreDep) -> DismissOut:
    return DismissOut(query_id=query_id, resolved=list(review.dismiss(store, query_id)))
