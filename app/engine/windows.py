"""Long pasted messages: the question inside is found by also ranking its sentences.

A customer's message pasted whole ("Hi, I ordered a heater on March 2nd … what do I do first?")
dilutes its one question in greetings and story. A text longer than LONG_TEXT characters is
also asked as each of its sentences and each pair of neighbouring sentences; the engine keeps
the window whose top answer is surest.
"""

from __future__ import annotations

import itertools
import re

LONG_TEXT = 240
MAX_WINDOWS = 40
MIN_WORDS = 3
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
