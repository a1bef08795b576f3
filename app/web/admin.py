"""Admin API: rebuild from the knowledge files and swap the index without a restart."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.web.deps import EngineDep, require_admin
from app.web.schemas import error_responses


class ReloadOut(BaseModel):
    action: str
    reason: str
    seconds: float
    entries: int
    vectors: int
    knowledge_hash: str


router = APIRouter(prefix="/api/admin", dependencies=[Depends(require_admin)],
                   responses=error_responses(400, 401, 413, 422, 503))


@router.post("/reload", response_model=ReloadOut, summary="Reload the knowledge and swap the index")
def reload(engine: EngineDep) -> ReloadOut:
    """Requests in flight finish on the old index; a broken knowledge file is refused (422, with
    file and line) and the old index keeps serving."""
    report = engine.load()
    return ReloadOut(action=report.action, reason=report.reason, seconds=round(report.seconds, 3),
                     entries=report.entries, vectors=report.vectors,
                     knowledge_hash=engine.knowledge.content_hash())
