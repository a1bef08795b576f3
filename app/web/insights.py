"""The insights API (admin): the figures of `playbook stats` for a period, for the insights page
and for scripts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.store.insights import CardFigures, CardRef, DayFigures, Unanswered, insights
from app.web.deps import EngineDep, StoreDep, require_admin
from app.web.schemas import error_responses

DEFAULT_DAYS = 7
MAX_DAYS = 366

router = APIRouter(prefix="/api/insights", dependencies=[Depends(require_admin)],
                   responses=error_responses(400, 401, 413, 422, 503))


class InsightsOut(BaseModel):
    since: str
    until: str
    asked: int
    answered: int
    ambiguous: int
    refused: int
    shares: dict[str, float] = Field(description="answered, ambiguous, refused: of all asked.")
    up: int
    down: int
    thumbs_up_rate: float | None
    estimated_accuracy: float | None = Field(
        description="Mean calibrated confidence of the answers given (no labels needed).")
    accuracy_interval: tuple[float, float] | None
    estimate_note: str
    days: list[DayFigures]
    cards: list[CardFigures]
    never_answered: list[CardRef]
    unanswered: list[Unanswered]


@router.get("", response_model=InsightsOut,
            summary="Usage, outcomes, feedback, estimated accuracy and per-card figures for a "
            "period (UTC days; default the last 7)")
async def get_insights(
    engine: EngineDep, store: StoreDep,
    since: Annotated[date | None, Query(description="First day, YYYY-MM-DD.")] = None,
    until: Annotated[date | None, Query(description="Last day, YYYY-MM-DD (default today).")] = None,
) -> InsightsOut:
    last = until or datetime.now(UTC).date()
    try:
        first = since or last - timedelta(days=DEFAULT_DAYS - 1)
    except OverflowError:  # until=0001-01-01
        raise HTTPException(422, "until is too early") from None
    if first > last:
        raise HTTPException(422, f"since {first} is after until {last}")
    if (last - first).days >= MAX_DAYS:
        raise HTTPException(422, f"a period is at most {MAX_DAYS} days")
    entries = engine.entries()
    figures = await run_in_threadpool(insights, store, entries, first, last)
    return InsightsOut.model_validate(figures.to_dict())
