"""Misspellings typed in a hurry ("cx wnats to cancl, amzon dont have cancel buton"), corrected
towards the playbook's own words before embedding.

A word is left alone when it is English (the 82,765-word frequency list that ships with
symspellpy), a word of the knowledge, a glossary abbreviation or slot value ("lowes" is a vendor,
not "does"), shorter than 3 letters, written with a capital (a name: "Priya", "KitchenAid") or
with an apostrophe ("doesn't", "macy's"). Any other word of letters becomes the knowledge word
within edit distance 1 (words of up to 4 letters) or 2, a swap of two neighbours counting as one
edit; among equally close words the one the knowledge uses most wins. A word with no knowledge
word that close is left as typed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import cache
from importlib import resources

from rapidfuzz import process
from rapidfuzz.distance import OSA

from app.knowledge.conditions import norm

SHORT_WORD = 4
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# Contractions typed without their apostrophe are not misspellings of knowledge words.
_APOSTROPHE_DROPPED = frozenset(
    "dont cant wont doesnt isnt didnt hasnt havent wasnt arent shouldnt couldnt wouldnt im ive "
    "thats whats theres todays theyre youre weve youve whos wouldve couldve shouldve aint hadnt "
    "mustnt werent theyve theyll youll".split())


@cache
def english_words() -> frozenset[str]:
    """The English frequency list shipped with symspellpy (read once per process). Each line is
    "word count", so the words are every other item of the split text (55 against 85 ms for
    splitting line by line)."""
    listing = resources.files("symspellpy").joinpath("frequency_dictionary_en_82_765.txt")
    return frozenset(listing.read_text(encoding="utf-8").split()[::2])


class Speller:
    def __init__(self, texts: Iterable[str], keep: Iterable[str] = ()) -> None:
        """`texts`: the knowledge's questions, answers and alternates; `keep`: terms never
        corrected (the glossary's abbreviations, the slots' values and aliases)."""
        keep = tuple(keep)
        counts: Counter[str] = Counter()
        # One pass over all the text, then one per distinct spelling (a word per word took
        # 2.6 s at 100,000 entries); the order of first use, which breaks ties, is kept.
        for word, count in Counter(_WORD.findall("\n".join(texts))).items():
            counts[word.casefold()] += count
        self._choices = [word for word, _ in counts.most_common() if len(word) >= 3]
        self._known = (english_words() | _APOSTROPHE_DROPPED | set(counts)
                       | {w.casefold() for term in keep for w in _WORD.findall(term)}
                       | {norm(term).replace("&", "") for term in keep})  # lowes, bestbuy

    def correct(self, text: str) -> str:
        return _WORD.sub(lambda m: self._word(m.group(0)), text)

    def _word(self, word: str) -> str:
        if len(word) < 3 or not word.islower() or word in self._known or not word.isalpha():
            return word
        limit = 1 if len(word) <= SHORT_WORD else 2
        found = process.extractOne(word, self._choices, scorer=OSA.distance, score_cutoff=limit)
        return found[0] if found is not None else word
