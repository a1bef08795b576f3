"""Ranked entries -> calibrated matches -> the answer: matched, refused, or ambiguous."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from app.knowledge.conditions import Mention, contradictions, met
from app.ranking.calibration import Calibration
from app.ranking.out_of_scope import Nearest
from app.ranking.ranker import Scored
from app.records import HIGH_CONFIDENCE, Answer, Match, RuledOut

# The most an ambiguous answer may claim: the top of the medium band.
AMBIGUOUS_MAX = round(HIGH_CONFIDENCE - 0.01, 2)
# A ruled-out card this near the top may claim the question's subject (see _off_subject).
SUBJECT_RANKS = 2


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
    question: str, ranked: Sequence[Scored], calibration: Calibration, alternatives: int,
    mentions: tuple[Mention, ...] = (), vague: Collection[str] = (),
    out_of_scope: Nearest | None = None,
) -> Answer:
    """The best entry that applies, if it is confident enough.

    An entry whose condition the question contradicts ("applies to Best Buy orders" for a Home
    Depot question) is ruled out: it keeps its rank as a suggestion with the reason, at
    confidence 0. The other entries keep the confidence they had beside it, so ruling out the top
    entry never makes the runner-up look surer than it was.

    Ambiguity and confidence agree: two entries within `ambiguity_margin` make an answer
    ambiguous, and an ambiguous answer is shown at most at AMBIGUOUS_MAX, below the high band
    (the calibrated confidence alone called "tracking not updated" 93 % sure between two
    tracking cards). A question short enough that k >= 2 cards (`vague`, their ids) contain all
    of its words (app.ranking.specificity) cannot pick one: it is not answered, and those cards
    come first among the suggestions, all at the top card's confidence but at most 1/k (and
    below the threshold: two cards' share shows as 0.49); no other card claims more.

    A question nearer a line of out_of_scope.txt (`out_of_scope`) than to any card's text is
    not answered either: the line is named, and the closest cards are suggested below the
    threshold."""
    eligible: list[Match] = []
    ruled_out: list[RuledOut] = []
    for match in to_matches(ranked, calibration):
        found = contradictions(match.entry.conditions, mentions)
        if found:
            ruled_out.append(RuledOut(replace(match, confidence=0.0), found))
        else:
            eligible.append(match)
    if not eligible:
        return Answer(question, False, None, False, ruled_out=tuple(ruled_out))
    eligible = _off_subject(eligible, ruled_out, ranked, mentions, calibration)
    best = eligible[0]
    close = len(eligible) > 1 and best.score - eligible[1].score < calibration.ambiguity_margin
    ambiguous = close or len(vague) >= 2
    if len(vague) >= 2:  # the question cannot tell these cards apart: each gets the same share
        share = min(1.0 / len(vague), max(0.0, calibration.threshold - 0.01), best.confidence)
        eligible = sorted((replace(m, confidence=share if m.entry.id in vague
                                   else min(m.confidence, share)) for m in eligible),
                          key=lambda m: m.entry.id not in vague)
    if close and eligible[0].confidence > AMBIGUOUS_MAX:
        eligible[0] = replace(eligible[0], confidence=AMBIGUOUS_MAX)
    best = eligible[0]
    if out_of_scope is not None and out_of_scope.refuses(max(r.best_cosine for r in ranked)):
        below = max(0.0, calibration.threshold - 0.01)
        capped = [replace(m, confidence=min(m.confidence, below)) for m in eligible]
        return Answer(question, False, None, ambiguous, tuple(capped[:alternatives]),
                      tuple(ruled_out), out_of_scope=out_of_scope.line)
    if best.confidence >= calibration.threshold and len(vague) < 2:
        return Answer(question, True, best, ambiguous, tuple(eligible[1 : 1 + alternatives]),
                      tuple(ruled_out))
    return Answer(question, False, None, ambiguous, tuple(eligible[:alternatives]),
                  tuple(ruled_out))


def _off_subject(eligible: list[Match], ruled_out: list[RuledOut], ranked: Sequence[Scored],
                 mentions: tuple[Mention, ...], calibration: Calibration) -> list[Match]:
    """A question that states a ruled-out card's own circumstances ("no cancel option", of a
    Target order, where the card is for Amazon orders without one) is that card's subject under
    a condition it does not apply to. A card that does not depend on those circumstances was not
    written for it either: it stays a suggestion, below the answer threshold. Only a ruled-out
    card among the top SUBJECT_RANKS claims the subject; a card conditioned on the same slot
    (one written for these circumstances, the question meets its condition) still answers."""
    near = {r.entry.id for r in ranked[:SUBJECT_RANKS]}
    stated = {c.slot.name for r in ruled_out if r.match.entry.id in near
              for c in met(r.match.entry.conditions, mentions)}
    if not stated:
        return eligible
    below = max(0.0, calibration.threshold - 0.01)
    return [m if any(c.slot.name in stated for c in m.entry.conditions)
            else replace(m, confidence=min(m.confidence, below)) for m in eligible]
