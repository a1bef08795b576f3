"""Daily counts per card, outcome and channel: what insights are drawn from once retention has
deleted the questions themselves. They hold no question text. Kept in step with the query log
and the feedback inside the same transactions (see app.store.feedback)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

Outcome = Literal["answered", "ambiguous", "refused"]
NO_ENTRY = ""  # the entry key of a refused question


@dataclass(frozen=True)
class DailyCount:
    day: str
    entry_id: str
    outcome: Outcome
    channel: str
    asked: int
    confidence_sum: float
    confidence_sq: float
    up: int
    down: int


def read(connection: Connection, since: str, until: str) -> list[DailyCount]:
    rows = connection.execute(sa.text(
        "SELECT day, entry_id, outcome, channel, asked, confidence_sum, confidence_sq, up, down"
        " FROM daily_stats WHERE day BETWEEN :since AND :until"
        " ORDER BY day, entry_id, outcome, channel"), {"since": since, "until": until}).all()
    return [DailyCount(*row) for row in rows]


def outcome_of(matched: bool, ambiguous: bool) -> Outcome:
    if not matched:
        return "refused"
    return "ambiguous" if ambiguous else "answered"


def count_asked(connection: Connection, asked_at: str, entry_id: str | None,
                outcome: Outcome, channel: str, confidence: float) -> None:
    connection.execute(sa.text(
        "INSERT INTO daily_stats AS d (day, entry_id, outcome, channel, asked, confidence_sum,"
        " confidence_sq) VALUES (:day, :entry, :outcome, :channel, 1, :sum, :sq)"
        " ON CONFLICT (day, entry_id, outcome, channel) DO UPDATE SET asked = d.asked + 1,"
        " confidence_sum = d.confidence_sum + excluded.confidence_sum,"
        " confidence_sq = d.confidence_sq + excluded.confidence_sq"),
        {"day": asked_at[:10], "entry": entry_id or NO_ENTRY, "outcome": outcome,
         "channel": channel, "sum": confidence, "sq": confidence ** 2})


def count_rating(connection: Connection, query_id: int, old: str | None, new: str) -> None:
    """Move the query's verdict in its day's counts from `old` (None: no verdict yet) to `new`."""
    if old == new:
        return
    row = connection.execute(sa.text("SELECT asked_at, entry_id, matched, ambiguous, channel"
                                     " FROM queries WHERE id = :id"), {"id": query_id}).one()
    key = {"day": row[0][:10], "entry": row[1] or NO_ENTRY,
           "outcome": outcome_of(bool(row[2]), bool(row[3])), "channel": row[4]}
    for rating, step in ((old, -1), (new, 1)):
        if rating in ("up", "down"):
            connection.execute(sa.text(
                f"UPDATE daily_stats SET {rating} = {rating} + :step WHERE day = :day"
                " AND entry_id = :entry AND outcome = :outcome AND channel = :channel"),
                {"step": step, **key})
