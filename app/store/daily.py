"""Daily counts per card, outcome and channel: what insights are drawn from once retention has
deleted the questions themselves. They hold no question text. Kept in step with the query log
and the feedback inside the same transactions (see app.store.feedback)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["answered", "ambiguous", "refused"]
NO_ENTRY = ""  # the entry key of a refused question

SCHEMA = """
CREATE TABLE IF NOT EXISTS daily_stats (
    day            TEXT    NOT NULL,
    entry_id       TEXT    NOT NULL,
    outcome        TEXT    NOT NULL CHECK (outcome IN ('answered', 'ambiguous', 'refused')),
    channel        TEXT    NOT NULL,
    asked          INTEGER NOT NULL DEFAULT 0,
    confidence_sum REAL    NOT NULL DEFAULT 0,
    confidence_sq  REAL    NOT NULL DEFAULT 0,
    up             INTEGER NOT NULL DEFAULT 0,
    down           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, entry_id, outcome, channel)
);
"""


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


def read(connection: sqlite3.Connection, since: str, until: str) -> list[DailyCount]:
    rows = connection.execute(
        "SELECT day, entry_id, outcome, channel, asked, confidence_sum, confidence_sq, up, down"
        " FROM daily_stats WHERE day BETWEEN ? AND ? ORDER BY day, entry_id, outcome, channel",
        (since, until)).fetchall()
    return [DailyCount(*row) for row in rows]


def outcome_of(matched: bool, ambiguous: bool) -> Outcome:
    if not matched:
        return "refused"
    return "ambiguous" if ambiguous else "answered"


def count_asked(connection: sqlite3.Connection, asked_at: str, entry_id: str | None,
                outcome: Outcome, channel: str, confidence: float) -> None:
    connection.execute(
        "INSERT INTO daily_stats (day, entry_id, outcome, channel, asked, confidence_sum,"
        " confidence_sq) VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (day, entry_id, outcome,"
        " channel) DO UPDATE SET asked = asked + 1,"
        " confidence_sum = confidence_sum + excluded.confidence_sum,"
        " confidence_sq = confidence_sq + excluded.confidence_sq",
        (asked_at[:10], entry_id or NO_ENTRY, outcome, channel, confidence, confidence ** 2))


def count_rating(connection: sqlite3.Connection, query_id: int, old: str | None,
                 new: str) -> None:
    """Move the query's verdict in its day's counts from `old` (None: no verdict yet) to `new`."""
    if old == new:
        return
    row = connection.execute("SELECT asked_at, entry_id, matched, ambiguous, channel"
                             " FROM queries WHERE id = ?", (query_id,)).fetchone()
    key = (row[0][:10], row[1] or NO_ENTRY, outcome_of(bool(row[2]), bool(row[3])), row[4])
    for rating, step in ((old, -1), (new, 1)):
        if rating in ("up", "down"):
            connection.execute(
                f"UPDATE daily_stats SET {rating} = {rating} + ? WHERE day = ? AND entry_id = ?"
                " AND outcome = ? AND channel = ?", (step, *key))


def backfill(connection: sqlite3.Connection) -> None:
    """Counts for a query log written before the counts existed (schema version 1)."""
    connection.execute("DELETE FROM daily_stats")
    connection.execute(
        "INSERT INTO daily_stats (day, entry_id, outcome, channel, asked, confidence_sum,"
        " confidence_sq, up, down)"
        " SELECT substr(q.asked_at, 1, 10), coalesce(q.entry_id, ''),"
        " CASE WHEN q.matched = 0 THEN 'refused' WHEN q.ambiguous = 1 THEN 'ambiguous'"
        " ELSE 'answered' END, q.channel, count(*), sum(q.confidence),"
        " sum(q.confidence * q.confidence), coalesce(sum(f.rating = 'up'), 0),"
        " coalesce(sum(f.rating = 'down'), 0)"
        " FROM queries q LEFT JOIN feedback f ON f.query_id = q.id GROUP BY 1, 2, 3, 4")
