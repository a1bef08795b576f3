"""The shared vocabulary: a playbook entry, a ranked match, an answer."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.knowledge.conditions import Condition, Contradiction


@dataclass(frozen=True)
class SourceRef:
    """Where a piece of knowledge came from: a file and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Variant:
    """A duplicate card merged into an entry, kept for provenance (e.g. a typo'd twin)."""

    question: str
    answer: str
    source: SourceRef
    note: str = ""


@dataclass(frozen=True)
class Entry:
    """One playbook card: the policy answer, the macro to send, and how agents ask for it."""

    id: str
    question: str
    answer: str
    macro: str | None = None
    alternates: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source: SourceRef | None = None
    variants: tuple[Variant, ...] = ()
    conditions: tuple[Condition, ...] = ()  # when the card applies (vendor, time, count)

    @property
    def policy(self) -> str | None:
        """The answer to show beside the macro; None when the answer is just the macro (it is
        then shown once, as the macro)."""
        return None if self.answer == self.macro else self.answer


@dataclass(frozen=True)
class UnpairedLine:
    """A line from a flashcard export that could not be turned into an entry on its own."""

    text: str
    source: SourceRef
    reason: str


@dataclass(frozen=True)
class Match:
    """An entry ranked for a query. `score` is what it was ranked by (best cosine, plus the
    intent head's weighted log-probability when the index has one); `confidence` is calibrated."""

    entry: Entry
    score: float
    confidence: float
    matched_text: str


@dataclass(frozen=True)
class RuledOut:
    """An entry the ranking put near the top whose condition the question contradicts: shown as
    a suggestion with the reasons, never given as the answer."""

    match: Match
    contradictions: tuple[Contradiction, ...]

    @property
    def reason(self) -> str:
        return "; ".join(c.reason for c in self.contradictions)


@dataclass(frozen=True)
class Answer:
    """The engine's reply to one question.

    `matched` is False when no entry is confident enough; `best` is then None and
    `alternatives` holds the closest entries as suggestions.
    """

    question: str
    matched: bool
    best: Match | None
    ambiguous: bool
    alternatives: tuple[Match, ...] = field(default=())
    ruled_out: tuple[RuledOut, ...] = field(default=())
    # The line of out_of_scope.txt the question is nearer to than to any card, when that is
    # why it was not answered.
    out_of_scope: str | None = None

    @property
    def confidence(self) -> float:
        if self.best is not None:
            return self.best.confidence
        return self.alternatives[0].confidence if self.alternatives else 0.0

    @property
    def needs_detail(self) -> bool:
        """Not answered because several entries fit and the question does not say which (a
        vague one-liner, or two entries about equally close), rather than because none does."""
        return not self.matched and self.ambiguous and self.out_of_scope is None


# What an agent is told when an answer `needs_detail` (the chat says the same in chat.js).
NEEDS_DETAIL = ("Several entries could fit and the question does not say which: add a detail "
                "(the vendor, how long ago, the order's status) and ask again.")


HIGH_CONFIDENCE = 0.8


def confidence_band(confidence: float) -> str:
    """How agents should read a confidence: act on high, double-check medium, distrust low."""
    if confidence >= HIGH_CONFIDENCE:
        return "high"
    if confidence >= 0.5:
        return "medium"
    return "low"
