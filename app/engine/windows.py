"""Long pasted messages: the question inside is found by also ranking its sentences.

A customer's message pasted whole ("Hi, I ordered a heater on March 2nd … what do I do first?")
dilutes its one question in greetings and story. A text longer than LONG_TEXT characters is
also asked as each of its sentences, each pair of neighbouring sentences, and its two sentences
nearest the playbook put together (the message without its story and greetings); the engine
keeps the window whose top answer is surest, if that window's card is the whole message's top
card.
"""

from __future__ import annotations

import itertools
import re

from app.records import Answer, Match

LONG_TEXT = 240
MAX_WINDOWS = 40
MIN_WORDS = 3
# A window may answer only with the whole message's top card: on the category set, allowing its
# top 3 let stray sentences ("…sent to her house…") answer with confident wrong cards (13 % of
# long pastes wrong at >= 0.9, none with 1).
TOPIC_ENTRIES = 1
# Two sentences, not one or three: on the long pastes of knowledge/eval/ (longdev, dev, trust,
# holdout; 99 in scope) they answered 4 more right (82 -> 86) and refused 4 fewer, with no more
# wrong answers; one sentence changed nothing, three gained 2.
CONDENSED_SENTENCES = 2
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*")


def sentences(text: str) -> list[str]:
    """A long text's sentences of at least MIN_WORDS words (none for a short text)."""
    if len(text) <= LONG_TEXT:
        return []
    found = [s.strip() for s in _SENTENCE_END.split(text)]
    return [s for s in found if len(s.split()) >= MIN_WORDS]


def windows(text: str) -> list[str]:
    """The text itself, then (for a long text) its sentences and neighbouring pairs."""
    parts = sentences(text)
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(parts)]
    return list(dict.fromkeys([text, *parts, *pairs]))[:MAX_WINDOWS]


def condensed(text: str, answered: dict[str, Answer]) -> str | None:
    """A long text's CONDENSED_SENTENCES sentences nearest any card (their windows' top scores
    in `answered`), in the order written; None when that is a window already."""
    top_score = {part: max((m.score for m in _candidates(answer)), default=-1.0)
                 for part, answer in answered.items()}
    parts = [s for s in sentences(text) if s in top_score]
    nearest = sorted(parts, key=lambda s: -top_score[s])[:CONDENSED_SENTENCES]
    joined = " ".join(s for s in parts if s in nearest)
    return None if not joined or joined in answered else joined


def _candidates(answer: Answer) -> list[Match]:
    shown = [answer.best] if answer.best is not None else []
    return [*shown, *answer.alternatives, *(r.match for r in answer.ruled_out)]


def surest_on_topic(whole: Answer, parts: list[Answer]) -> Answer:
    """A long message's surest window among those that answer with an entry the whole message
    ranks near the top (a stray sentence about an address must not answer a message about a lost
    package); the whole message's own answer when no window is surer."""
    ranked = ([whole.best] if whole.best is not None else []) + list(whole.alternatives)
    topic = {m.entry.id for m in ranked[:TOPIC_ENTRIES]}
    best = whole
    for part in parts:
        top = part.best.entry.id if part.best is not None else None
        if top in topic and (part.matched, part.confidence) > (best.matched, best.confidence):
            best = part
    return best
