"""Ranked entries -> calibrated matches -> the answer: matched, refused, or ambiguous."""

from __future__ import annotations

from collections.abc import Sequence

from app.ranking.calibration import Calibration
from app.ranking.ranker import Scored
from app.records import Answer, Match


def to_matches(ranked: Sequence[Scored], calibration: Calibration) -> list[Match]:
    """Confidence that the entry is the right one.

    The top entry's comes from the calibrated model (its score, and its margin over the runner-
    up). At most one entry is right, so the others share what the top one leaves: each gets that
    remainder in proportion to what the model would say of it alone (its score, and its negative
    margin to the top), and together they never claim more than the remainder."""
    if not ranked:
        return []
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    top = calibration.confidence(ranked[0].score, ranked[0].score - runner_up)
    alone = [calibration.confidence(r.score, r.score - ranked[0].score) for r in ranked[1:]]
    share = (1.0 - top) / max(1.0, sum(alone))
    confidences = [top, *(c * share for c in alone)]
    return [Match(r.entry, r.score, c, r.matched_text)
            for r, c in zip(ranked, confidences, strict=True)]


def to_answer(
    question: str, ranked: Sequence[Scored], calibration: Calibration, alternatives: int
) -> Answer:
    matches = to_matches(ranked, calibration)
    if not matches:
        return Answer(question, matched=False, best=None, ambiguous=False)
    best = matches[0]
    ambiguous = len(matches) > 1 and best.score - matches[1].score < calibration.ambiguity_margin
    if best.confidence >= calibration.threshold:
        return Answer(question, True, best, ambiguous, tuple(matches[1 : 1 + alternatives]))
    return Answer(question, False, None, ambiguous, tuple(matches[:alternatives]))
