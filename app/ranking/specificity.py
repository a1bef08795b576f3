"""Questions too short to pick one card: "PO status", "productsecure", "cancel?", "tracking issue".

An embedding and an intent head both answer such a one-liner with a near-certain card, but the
question itself cannot tell the cards it names apart. A question of at most MAX_WORDS content
words that every one of k >= 2 cards contains (in its question, alternates or answer) could be
any of them: its answer is ambiguous and may claim at most 1/k. Filler words ("issue",
"question") say nothing of the card. A phrasing the knowledge itself holds (a card's question or
alternate, as `playbook review add` teaches them) is never vague.

Words are not stemmed: Snowball stems refused one more vague dev question, and 79 more
in-scope BANKING77 questions ("When will the card arrive?", two intents hold both words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cached_property

from app.knowledge.text import question_key
from app.records import Entry

MAX_WORDS = 3
_WORD = re.compile(r"[^\W_]+")
# Words that say nothing about which card is meant.
STOPWORDS = frozenset(
    "a an the is are was were be been to of for in on at by and or if it its this that what which "
    "who when where how should would will do does did you your we our us can there their they "
    "with from as after before has have had not no i my me so just any some about cx customer "
    "customers wants want need needs please help issue issues problem problems question questions q "
    "query".split())


def content_words(text: str) -> set[str]:
    """Case-folded words that carry meaning, plural "s" dropped ("orders" is "order")."""
    words = {w.casefold() for w in set(_WORD.findall(text))} - STOPWORDS
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words}


class Specificity:
    """Both word lists are made on first use, or by `prepare` in the background: at 100,000
    entries they took about 3 s that a start need not wait for (only questions of at most
    MAX_WORDS content words consult them, and such a question waits until they are made)."""

    def __init__(self, entries: Sequence[Entry], expand: Iterable[str] = ()) -> None:
        """`expand`: extra text per entry (e.g. the glossary-expanded question), same order."""
        self._entries = tuple(entries)
        self._extra = list(expand)

    def candidates(self, question: str) -> int:
        """How many cards contain every content word of a short question (0 for a question
        longer than MAX_WORDS content words, or with none)."""
        words = content_words(question)
        if not words or len(words) > MAX_WORDS or question_key(question) in self._taught:
            return 0
        return sum(1 for known in self._words if words <= known)

    def prepare(self) -> None:
        """Make the word lists now (the engine runs this in a background thread)."""
        _ = self._taught, self._words

    @cached_property
    def _taught(self) -> set[str]:
        """The knowledge's own phrasings."""
        return {question_key(text) for e in self._entries for text in (e.question, *e.alternates)}

    @cached_property
    def _words(self) -> list[set[str]]:
        """Each card's content words: its question, answer, alternates and extra text."""
        extra = self._extra
        return [content_words(" ".join((e.question, e.answer, *e.alternates,
                                        extra[i] if i < len(extra) else "")))
                for i, e in enumerate(self._entries)]
