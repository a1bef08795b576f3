"""The insights API (admin): the figures of `playbook stats` for a period, for the insights page
and for scripts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BeforeValidator
from starlette.concurrency import run_in_threadpool

from app.store.insights import Insights, insights
from app.web.deps import EngineDep, StoreDep, require_admin
from app.web.schemas import error_responses

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: object) -> object:
    """YYYY-MM-DD only (pydantic alone would read "1.5e3" as a timestamp)."""
    if isinstance(value, str):
        if not _ISO_DAY.fullmatch(value):
            raise ValueError("expected a day as YYYY-MM-DD")
        return date.fromisoformat(value)
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day)]
DEFAULT_DAYS = 7
MAX_DAYS = 366

router = APIRouter(prefix="/api/insights", dependencies=[Depends(require_admin)],
                   responses=error_responses(400, 401, 413, 422, 503))


def _days_before(day: date, days: int) -> date:
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return date.min


@router.get("", response_model=Insights,
            summary="Usage, outcomes, feedback, estimated accuracy and per-card figures for a "
            "period (UTC days; default the last 7; at most the last 366 of a longer one; empty "
            "when `since` is after `until`)")
async def get_insights(
    engine: EngineDep, store: StoreDep,
    since: Annotated[IsoDay | None, Query(description="First day, YYYY-MM-DD.")] = None,
    until: Annotated[IsoDay | None, Query(description="Last day, YYYY-MM-DD (default today).")] = None,
) -> Insights:
    # Any dates are accepted (the schema cannot state an order between two parameters): a
    # period ending before it starts is empty, and a longer one is cut to its last MAX_DAYS.
    last = until or datetime.now(UTC).date()
    first = max(since or _days_before(last, DEFAULT_DAYS - 1), _days_before(last, MAX_DAYS - 1))
    entries = engine.entries()
    figures: Insights = await run_in_threadpool(insights, store, entries, first, last)
    return figures
