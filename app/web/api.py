"""The JSON API: ask, search, browse entries. Handlers only translate HTTP to engine calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.web.deps import EngineDep
from app.web.middleware.request_log import note_answer
from app.web.schemas import (
    MAX_TOP_K,
    QUESTION_SCHEMA,
    AnswerOut,
    AskRequest,
    EntryOut,
    SearchOut,
    error_responses,
    json_response,
)

router = APIRouter(prefix="/api", responses=error_responses(400, 404, 413, 415, 422, 429, 503))


# The question routes are `async def` and send the engine call to the thread pool themselves: a
# plain `def` route with a response model costs FastAPI two thread hops (the call, then the
# response's validation), measured at about 1 ms a request under load.
@router.post("/ask", response_model=AnswerOut, summary="Answer a question with the best entry")
async def ask(body: AskRequest, engine: EngineDep, request: Request) -> Response:
    answer = await run_in_threadpool(engine.ask, body.question, top_k=body.top_k,
                                     tags=body.tags or ())
    note_answer(request.state, answer)
    return json_response(AnswerOut.from_answer(answer))


@router.get("/search", response_model=SearchOut, summary="Ranked entries with scores")
async def search(
    engine: EngineDep,
    q: Annotated[str, Query(description="The query text.", json_schema_extra=QUESTION_SCHEMA)],
    k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = 5,
) -> SearchOut:
    return SearchOut.from_matches(q.strip(), await run_in_threadpool(engine.search, q, k=k))


@router.get("/entries", response_model=list[EntryOut], summary="Every playbook entry")
def entries(engine: EngineDep) -> list[EntryOut]:
    return [EntryOut.from_entry(e) for e in engine.entries()]


@router.get("/entries/{entry_id}", response_model=EntryOut, summary="One playbook entry")
def entry(entry_id: str, engine: EngineDep) -> EntryOut:
    return EntryOut.from_entry(engine.entry(entry_id))
