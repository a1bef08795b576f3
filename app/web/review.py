"""The review API: the queue of questions the playbook answered badly, and the two ways to close
one (teach an entry the question, or dismiss it), for one question or for a cluster of questions
that mean the same. Admin only."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval
from fastapi import APIRouter, Depends
from pydantic import BaseModel, BeforeValidator, Field

from app.engine.engine import Engine, LoadReport
from app.errors import EntryNotFound
from app.store import review_batch as batch
from app.store import review_clusters as clusters
from app.store import review_queue as review
from app.web.deps import MAX_QUERY_ID, AdminDep, EngineDep, QueryId, StoreDep, require_admin
from app.web.schemas import STRICT_BODY, error_responses

router = APIRouter(prefix="/api/review",
                   responses=error_responses(400, 401, 404, 409, 413, 415, 422, 503),
                   dependencies=[Depends(require_admin)])


# A cluster's members, sent back to act on them all: bounded so one request stays one action.
MAX_BATCH = 500


def _whole(value: object) -> object:
    """8.0 is the integer 8 in JSON (as schemas.WholeNumber, whose validator would run before
    the bounds and hide them from the schema)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


BatchId = Annotated[int, Interval(ge=1, le=MAX_QUERY_ID), BeforeValidator(_whole)]
BatchIds = Annotated[list[BatchId],
                     Field(min_length=1, max_length=MAX_BATCH,
                           description="The members' query ids (any asking of each question): "
                           "every open asking of each question is resolved.")]


class ReviewMemberOut(BaseModel):
    """One question (case, punctuation and spacing ignored) and its open askings."""

    query_id: int = Field(description="Its latest asking: acting on it resolves every open "
                          "asking of the question.")
    question: str
    count: int
    query_ids: list[int]
    last_asked_at: str
    entry_id: str | None = Field(description="What it was answered with when asked.")
    entry_question: str | None
    confidence: float
    band: str
    picked_entry_id: str | None
    picked_question: str | None
    none_of_these: bool


class ReviewItemOut(ReviewMemberOut):
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


class ReviewClusterOut(ReviewItemOut):
    """A cluster of questions that mean the same, shown as its representative (its most-asked
    member): `query_id`, `question`, `entry_*`, `confidence`, `band` and `now_*` are the
    representative's; `count`, `query_ids` and `last_asked_at` cover every member; the verdict
    (`picked_*`, `none_of_these`) is the first member's with one."""

    members: list[ReviewMemberOut] = Field(
        description="Every question in the cluster, the representative first, then by volume "
        "and recency. Act on all of them with POST /api/review/add or /api/review/dismiss.")


class ClusteredGroupOut(BaseModel):
    key: str
    title: str
    count: int = Field(description="Open askings in the group, every member of every cluster.")
    clusters: list[ReviewClusterOut] = Field(description="Most-asked first, then most recent.")


class ReviewClustersOut(BaseModel):
    total: int
    threshold: float = Field(description="Two questions are one cluster when the cosine of "
                             "their vectors reaches this (compared with the representative).")
    groups: list[ClusteredGroupOut]


class AddAlternateIn(BaseModel):
    model_config = STRICT_BODY

    entry_id: str
    force: bool = Field(default=False, description="Add it even though it sits closer to another "
                        "entry (a phrasing already another entry's is always refused).")


class IndexOut(BaseModel):
    action: str
    entries: int
    vectors: int

    @classmethod
    def of(cls, report: LoadReport) -> IndexOut:
        return cls(action=report.action, entries=report.entries, vectors=report.vectors)


class AddAlternateOut(BaseModel):
    query_id: int
    entry_id: str
    phrasing: str
    resolved: list[int]
    index: IndexOut


class DismissOut(BaseModel):
    query_id: int
    resolved: list[int]


class AddAllIn(BaseModel):
    model_config = STRICT_BODY

    query_ids: BatchIds
    entry_id: str
    force: bool = Field(default=False, description="Add them even though some sit closer to "
                        "another entry (a phrasing already another entry's is always refused).")


class AddedOut(BaseModel):
    query_id: int
    phrasing: str
    resolved: list[int]


class AddAllOut(BaseModel):
    entry_id: str
    added: list[AddedOut] = Field(description="One per distinct question, in the order given.")
    resolved: list[int] = Field(description="Every asking taken off the queue.")
    index: IndexOut = Field(description="The index after the last one was added.")


class DismissAllIn(BaseModel):
    model_config = STRICT_BODY

    query_ids: BatchIds


class DismissAllOut(BaseModel):
    resolved: list[int]


class OutOfScopeIn(BaseModel):
    model_config = STRICT_BODY

    query_ids: BatchIds
    force: bool = Field(default=False, description="Mark them even though some sit close to a "
                        "card's text (a card's own phrasing is always refused).")


class OutOfScopeOut(BaseModel):
    lines: list[str] = Field(description="The questions, as out_of_scope.txt now holds them.")
    resolved: list[int] = Field(description="Every asking taken off the queue.")
    index: IndexOut


def _question_of(engine: Engine, entry_id: str | None) -> str | None:
    if entry_id is None:
        return None
    try:
        return engine.entry(entry_id).question
    except EntryNotFound:
        return None


def _answered_now(engine: Engine, question: str) -> dict[str, object]:
    now = review.answered_now(engine, question)
    return {"now_entry_id": now.entry_id, "now_question": now.question,
            "now_confidence": now.confidence}


def _member(engine: Engine, item: review.ReviewItem) -> dict[str, object]:
    return {**item.to_dict(), "entry_question": _question_of(engine, item.entry_id),
            "picked_question": _question_of(engine, item.picked_entry_id)}


def _cluster(engine: Engine, cluster: clusters.ReviewCluster) -> ReviewClusterOut:
    verdict = cluster.verdict
    return ReviewClusterOut.model_validate({
        **cluster.to_dict(),
        "entry_question": _question_of(engine, cluster.representative.entry_id),
        "picked_question": _question_of(engine, verdict.picked_entry_id if verdict else None),
        "members": [_member(engine, member) for member in cluster.members],
        **_answered_now(engine, cluster.representative.question)})


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


@router.get("/clusters", response_model=ReviewClustersOut,
            summary="The review queue clustered by meaning: in each group, questions whose "
            "vectors are close are one cluster, most-asked first, each with its members and "
            "what the playbook answers its representative with now")
def review_clusters(engine: EngineDep, store: StoreDep) -> ReviewClustersOut:
    groups = [
        ClusteredGroupOut(key=group.key, title=group.title, count=group.count,
                          clusters=[_cluster(engine, cluster) for cluster in group.clusters])
        for group in clusters.review_clusters(store, engine.entries(), clusters.engine_encoder(engine))
    ]
    return ReviewClustersOut(total=sum(g.count for g in groups), threshold=clusters.SAME_MEANING,
                             groups=groups)


@router.post("/add", response_model=AddAllOut,
             summary="Teach an entry every question of a cluster (checked first: a refusal "
             "adds none); the index is rebuilt and swapped")
def review_add_all(body: AddAllIn, engine: EngineDep, store: StoreDep,
                   who: AdminDep) -> AddAllOut:
    outcome = batch.add_all_as_alternates(store, engine, body.query_ids, body.entry_id,
                                           body.force, who)
    return AddAllOut(
        entry_id=outcome.entry_id,
        added=[AddedOut(query_id=query_id, phrasing=added.phrasing, resolved=list(added.resolved))
               for query_id, added in zip(outcome.query_ids, outcome.added, strict=True)],
        resolved=list(outcome.resolved), index=IndexOut.of(outcome.report))


@router.post("/dismiss", response_model=DismissAllOut,
             summary="Take every question of a cluster off the queue")
def review_dismiss_all(body: DismissAllIn, store: StoreDep) -> DismissAllOut:
    return DismissAllOut(resolved=list(batch.dismiss_all(store, body.query_ids)))


@router.post("/out-of-scope", response_model=OutOfScopeOut,
             summary="Mark every question of a cluster as one the playbook does not answer: "
             "written into out_of_scope.txt, refused from then on (and so is a question nearer "
             "it than to any card); the index is rebuilt and swapped")
def review_out_of_scope(body: OutOfScopeIn, engine: EngineDep, store: StoreDep,
                        who: AdminDep) -> OutOfScopeOut:
    outcome = batch.mark_out_of_scope(store, engine, body.query_ids, body.force, who)
    return OutOfScopeOut(lines=list(outcome.lines), resolved=list(outcome.resolved),
                         index=IndexOut.of(outcome.report))


@router.post("/{query_id}/add", response_model=AddAlternateOut,
                 summary="Teach an entry this question; the index is rebuilt and swapped")
def review_add(query_id: QueryId, body: AddAlternateIn, engine: EngineDep,
               store: StoreDep, who: AdminDep) -> AddAlternateOut:
    outcome = review.add_as_alternate(store, engine, query_id, body.entry_id, body.force, who)
    return AddAlternateOut(
        query_id=query_id, entry_id=outcome.entry_id, phrasing=outcome.phrasing,
        resolved=list(outcome.resolved), index=IndexOut.of(outcome.report))


@router.post("/{query_id}/dismiss", response_model=DismissOut,
                 summary="Take a question off the queue")
def review_dismiss(query_id: QueryId, store: StoreDep) -> DismissOut:
    return DismissOut(query_id=query_id, resolved=list(review.dismiss(store, query_id)))
