"""How the assistant is doing over a period: questions per day, the share answered, flagged
ambiguous and refused, agents' 👍/👎, an estimated accuracy, per-card figures, the cards never
answered, and the most-asked questions it could not answer.

Drawn from the daily counts (app.store.daily), so the figures outlive the questions themselves;
only the unanswered list needs the question text and covers what retention has kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

from app.records import Entry
from app.store.feedback import FeedbackStore
from app.store.review_queue import review_groups

Z_95 = 1.96
OUTCOMES = ("answered", "ambiguous", "refused")  # DayFigures' order
TOP_UNANSWERED = 10
ESTIMATE_NOTE = (
    "An estimate without labels: the mean calibrated confidence of the answers given. It holds "
    "as far as the confidence is calibrated on these questions (see README, Evaluation); the "
    "interval covers only the chance in which answers happen to be right.")


@dataclass(frozen=True)
class DayFigures:
    day: str
    asked: int
    answered: int
    ambiguous: int
    refused: int


@dataclass(frozen=True)
class CardFigures:
    entry_id: str
    question: str
    answered: int
    up: int
    down: int
    mean_confidence: float
    last_used: str


@dataclass(frozen=True)
class CardRef:
    entry_id: str
    question: str


@dataclass(frozen=True)
class Unanswered:
    question: str
    count: int
    query_id: int


@dataclass(frozen=True)
class Insights:
    since: str
    until: str
    asked: int
    answered: int
    ambiguous: int
    refused: int
    shares: dict[str, float]  # answered, ambiguous, refused: of all asked
    up: int
    down: int
    thumbs_up_rate: float | None
    estimated_accuracy: float | None  # the mean calibrated confidence of the answers given
    accuracy_interval: tuple[float, float] | None
    days: list[DayFigures]
    cards: list[CardFigures]
    never_answered: list[CardRef]
    unanswered: list[Unanswered]
    estimate_note: str = field(default=ESTIMATE_NOTE)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def insights(store: FeedbackStore, entries: Sequence[Entry], since: date,
             until: date) -> Insights:
    """The figures for the days `since` … `until` (UTC, both included)."""
    rows = store.daily_counts(since.isoformat(), until.isoformat())
    by_day: dict[str, dict[str, int]] = {}
    outcomes = dict.fromkeys(OUTCOMES, 0)
    cards: dict[str, dict[str, float]] = {}
    last_used: dict[str, str] = {}
    up = down = 0
    confidence_sum = confidence_sq = 0.0
    for row in rows:
        by_day.setdefault(row.day, dict.fromkeys(OUTCOMES, 0))[row.outcome] += row.asked
        outcomes[row.outcome] += row.asked
        up += row.up
        down += row.down
        if row.outcome == "refused":
            continue
        confidence_sum += row.confidence_sum
        confidence_sq += row.confidence_sq
        card = cards.setdefault(row.entry_id, dict.fromkeys(("answered", "up", "down", "sum"), 0.0))
        card["answered"] += row.asked
        card["up"] += row.up
        card["down"] += row.down
        card["sum"] += row.confidence_sum
        last_used[row.entry_id] = max(last_used.get(row.entry_id, ""), row.day)
    asked = sum(outcomes.values())
    answers = asked - outcomes["refused"]
    estimate, interval = None, None
    if answers:
        estimate = confidence_sum / answers
        # The count of right answers is a sum of independent Bernoulli(p_i): its variance is
        # the sum of p_i (1 - p_i).
        spread = Z_95 * math.sqrt(max(confidence_sum - confidence_sq, 0.0)) / answers
        interval = (round(max(0.0, estimate - spread), 4), round(min(1.0, estimate + spread), 4))
        estimate = round(estimate, 4)
    questions = {entry.id: entry.question for entry in entries}
    no_match = review_groups(store, entries)[1]
    empty = dict.fromkeys(OUTCOMES, 0)
    return Insights(
        since=since.isoformat(), until=until.isoformat(), asked=asked,
        answered=outcomes["answered"], ambiguous=outcomes["ambiguous"],
        refused=outcomes["refused"],
        shares={k: round(n / asked, 4) if asked else 0.0 for k, n in outcomes.items()},
        up=up, down=down, thumbs_up_rate=round(up / (up + down), 4) if up + down else None,
        estimated_accuracy=estimate, accuracy_interval=interval,
        days=[DayFigures(day, sum(counts.values()), *counts.values())
              for day, counts in ((d.isoformat(), by_day.get(d.isoformat(), empty))
                                  for d in _days(since, until))],
        cards=sorted((CardFigures(entry_id, questions.get(entry_id, entry_id),
                                  int(c["answered"]), int(c["up"]), int(c["down"]),
                                  round(c["sum"] / c["answered"], 4), last_used[entry_id])
                      for entry_id, c in cards.items()),
                     key=lambda card: (-card.answered, card.entry_id)),
        never_answered=[CardRef(entry.id, entry.question) for entry in entries
                        if entry.id not in cards],
        unanswered=[Unanswered(item.question, item.count, item.query_id)
                    for item in no_match.items[:TOP_UNANSWERED]],
    )

def _days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]

