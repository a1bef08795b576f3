"""Long pasted messages: the question inside is found by also ranking its sentences.

A customer's message pasted whole ("Hi, I ordered a heater on March 2nd … what do I do first?")
dilutes its one question in greetings and story. A text longer than LONG_TEXT characters is
also asked as each of its sentences and each pair of neighbouring sentences; the engine keeps
the window whose top answer is surest, if that window's card is the whole message's top card.
"""

from __future__ import annotations

import itertools
import re

from app.records import Answer

LONG_TEXT = 240
MAX_WINDOWS = 40
MIN_WORDS = 3
# A window may answer only with the whole message's top card: on the category set, allowing its
# top 3 let stray sentences ("…sent to her house…") answer with confident wrong cards (13 % of
# long pastes wrong at >= 0.9, none with 1).
TOPIC_ENTRIES = 1
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*")


def windows(text: str) -> list[str]:
    """The text itself, then (for a long text) its sentences and neighbouring pairs."""
    if len(text) <= LONG_TEXT:
        return [text]
    sentences = [s.strip() for s in _SENTENCE_END.split(text)]
    sentences = [s for s in sentences if len(s.split()) >= MIN_WORDS]
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(sentences)]
    found = list(dict.fromkeys([text, *sentences, *pairs]))
    return found[:MAX_WINDOWS]


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
