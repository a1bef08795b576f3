"""Names in a seller's place that slots.yaml does not list ("the vendor is Zzyzx Home"): for a
slot declared `unlisted: true`, such a name is a mention too, so a card for another vendor is
ruled out instead of answering as if the vendor were unknown.

A false mention rules out the right card, so only two plain statements count: a name right after
"vendor is", "vendor:", "seller was", "bought from", "ordered it from"..., or right before "is
the vendor" ("Zzyzx's the seller"). The name is one to four words on one line, each written
with a capital or not an English word; it must hold at least one word that is not English (the
82,765-word list holds many names: "Harbor Freight" is two English words and is not taken), must
not be a short abbreviation in capitals ("OOS", "RTS"), and must not be close to a listed value
or alias (a misspelled one, "bestbuyy", is that value, which the spelling layer may not mend).
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz, process

from app.knowledge.conditions import Slot, norm
from app.knowledge.spelling import english_words

MAX_WORDS = 4
# How alike (rapidfuzz ratio, 0-100) a name and a listed term may be before the name is taken
# for that term misspelled: "bestbuyy" is 93 from "bestbuy", "HD" 80 from "thd".
SAME_NAME = 80
_BEFORE = re.compile(
    r"\b(?:(?:vendor|seller|retailer|merchant|supplier)(?:\s+(?:is|was)|\s*[:=])"
    r"|(?:ordered|bought|purchased)(?:\s+it)?\s+(?:from|at|through|via))[ \t]+", re.IGNORECASE)
_AFTER = re.compile(r"(?:['’]s|[ \t]+(?:is|was))[ \t]+the[ \t]+"
                    r"(?:vendor|seller|retailer|merchant|supplier)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W_][\w&'’.-]*")
_ABBREVIATION = re.compile(r"[A-Z]{1,4}")


def unlisted_names(question: str, slot: Slot,
                   listed: list[tuple[int, int]]) -> list[tuple[int, str]]:
    """(start, name) of each unlisted name in a seller's place; `listed`: the (start, end) of the
    slot's values found in the question, which no name may overlap."""
    found = []
    for cue in _BEFORE.finditer(question):
        words = _name_after(question, cue.end())
        if words:
            found.append((words[0].start(), words[-1].end()))
    for cue in _AFTER.finditer(question):
        words = _name_before(question, cue.start())
        if words:
            found.append((words[0].start(), words[-1].end()))
    names = []
    for start, end in sorted(set(found)):
        name = question[start:end]
        if not any(a < end and start < b for a, b in listed) and _is_unlisted(name, slot):
            names.append((start, name))
    return names


def _name_after(question: str, at: int) -> list[re.Match[str]]:
    words: list[re.Match[str]] = []
    for word in _WORD.finditer(question, at):
        between = question[words[-1].end() if words else at : word.start()]
        if between.strip(" \t") or len(words) == MAX_WORDS or not _name_like(word[0]):
            break
        words.append(word)
    return words


def _name_before(question: str, at: int) -> list[re.Match[str]]:
    line_start = question.rfind("\n", 0, at) + 1
    words = list(_WORD.finditer(question, line_start, at))
    run: list[re.Match[str]] = []
    for word in reversed(words[-MAX_WORDS:]):
        end = run[0].start() if run else at
        if question[word.end() : end].strip(" \t") or not _name_like(word[0]):
            break
        run.insert(0, word)
    return run


def _name_like(word: str) -> bool:
    return word[0].isupper() or word[0].isdigit() or _plain(word) not in english_words()


def _is_unlisted(name: str, slot: Slot) -> bool:
    words = _WORD.findall(name)
    if len(words) == 1 and _ABBREVIATION.fullmatch(words[0]):
        return False
    if all(_plain(word) in english_words() for word in words):
        return False
    return process.extractOne(norm(name), _listed(slot), scorer=fuzz.ratio,
                              score_cutoff=SAME_NAME) is None


def _plain(word: str) -> str:
    return re.sub(r"['’]s$", "", word).casefold().strip(".")


@lru_cache(maxsize=64)
def _listed(slot: Slot) -> frozenset[str]:
    return frozenset(norm(term) for term in slot.terms())
