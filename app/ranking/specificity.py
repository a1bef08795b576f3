"""Questions too short to pick one card: "PO status", "productsecure", "cancel?", "tracking issue".

An embedding and an intent head both answer such a one-liner with a near-certain card, but the
question itself cannot tell the cards it names apart. A question of at most MAX_WORDS content
words that every one of k >= 2 cards contains (in its question, alternates or answer) could be
any of them: its answer is ambiguous and may claim at most 1/k. Filler words ("issue",
"question") say nothing of the card. A phrasing the knowledge itself holds (a card's question or
alternate, as `playbook review add` teaches them) is never vague. A glossary abbreviation and
what it stands for are one word here: a card using "package" uses "pkg", so "lost pkg" is as
vague as "lost package".

Words are not stemmed: Snowball stems refused one more vague dev question, and 79 more
in-scope BANKING77 questions ("When will the card arrive?", two intents hold both words).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence

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
    """Nothing is made ahead but one folded text (a few ms at 100,000 entries, where every
    card's word list took ~3 s, once in a background thread that early short questions waited
    for). The cards using a word are found when a question first needs it: str.find gives the
    cards whose folded text holds it (never fewer than use it), each one's exact word list
    decides, and the answer is kept for the next question with that word."""

    def __init__(self, entries: Sequence[Entry], expand: Iterable[str] = (),
                 glossary: Mapping[str, str] | None = None) -> None:
        """`expand`: extra text per entry (e.g. the glossary-expanded question), same order.
        `glossary`: abbreviation -> what it stands for."""
        self._entries = tuple(entries)
        extra = list(expand)
        self._texts = [" ".join((e.question, e.answer, *e.alternates,
                                 extra[i] if i < len(extra) else ""))
                       for i, e in enumerate(self._entries)]
        folded = [text.casefold() for text in self._texts]
        self._folded = "\0".join(folded)
        self._starts = list(itertools.accumulate((len(t) + 1 for t in folded[:-1]), initial=0))
        self._words: dict[int, set[str]] = {}
        self._users: dict[str, frozenset[int]] = {}
        self._keys: dict[int, set[str]] = {}
        # A word -> the word sets that mean the same: "pkg" -> {"package"}, "package" -> {"pkg"},
        # "oos" -> {"out", "stock"}. A card holding every word of one of them uses the word.
        self._same: dict[str, list[frozenset[str]]] = {}
        for short, long in (glossary or {}).items():
            short_words, long_words = content_words(short), content_words(long)
            if not short_words or not long_words or short_words == long_words:
                continue
            for one, other in ((short_words, long_words), (long_words, short_words)):
                if len(one) == 1:  # a single word: "pkg", "package"; not "PO Box"
                    self._same.setdefault(next(iter(one)), []).append(frozenset(other))

    def cards(self, question: str) -> frozenset[str]:
        """The ids of the cards that contain every content word of a short question (none for a
        question longer than MAX_WORDS content words, or with none, or one the knowledge
        holds)."""
        words = content_words(question)
        if not words or len(words) > MAX_WORDS:
            return frozenset()
        cards = frozenset.intersection(*(self._using(word) for word in words))
        key = question_key(question)
        # A card holding the question as a phrasing holds all its words: it is among `cards`.
        if any(key in self._phrasings(i) for i in cards):
            return frozenset()
        return frozenset(self._entries[i].id for i in cards)

    def _using(self, word: str) -> frozenset[int]:
        """The cards whose question, answer, alternates or extra text use the word, or all the
        words of something the glossary says it means."""
        found = self._using_as_written(word)
        for other in self._same.get(word, ()):
            found = found | frozenset.intersection(*(self._using_as_written(w) for w in other))
        return found

    def _using_as_written(self, word: str) -> frozenset[int]:
        if (found := self._users.get(word)) is not None:
            return found
        folded, starts, cards = self._folded, self._starts, []
        at = folded.find(word)
        while at != -1:
            i = bisect.bisect_right(starts, at) - 1
            if word in self._words_of(i):
                cards.append(i)
            at = folded.find(word, starts[i + 1]) if i + 1 < len(starts) else -1
        found = self._users[word] = frozenset(cards)
        return found

    def _words_of(self, i: int) -> set[str]:
        if (words := self._words.get(i)) is None:
            words = self._words[i] = content_words(self._texts[i])
        return words

    def _phrasings(self, i: int) -> set[str]:
        if (keys := self._keys.get(i)) is None:
            entry = self._entries[i]
            keys = self._keys[i] = {question_key(t) for t in (entry.question, *entry.alternates)}
        return keys
