"""Where a slot's named values and their aliases occur in a question ("Best Buy", "bestbuy",
"best-buy's", "BB"): words of a name may be run together or split by spaces, hyphens,
apostrophes, dots or quotes; a value that is also an ordinary word ("target") counts only as
written, or before a word that makes it a vendor ("target orders").

One regex alternation per slot (`_choice_pattern`) defines the matches; compiling it took ~20 ms
a slot, ~0.2 s of every start. `_find_terms` finds the same matches from a lookup table built in
about a millisecond, and the pattern remains the matcher for the few terms the table cannot hold.
A value may also have `patterns` of its own, for ways of writing it with numbers ("2 of the 5
items have shipped"); an alias inside such a match does not count. A value that is also a
product brand counts only where it names the seller.
"""

from __future__ import annotations

import itertools
import re
import string
from functools import lru_cache
from typing import NamedTuple

from app.knowledge.conditions import GAP, Slot, norm

# A value that is also an ordinary word ("target", "extend") counts in any case right before
# these: what a seller or a protection plan is named before.
_ORDER_WORDS = r"orders?|po|purchase|returns?|packages?|deliver(?:y|ies)"
NAME_CONTEXT = rf"\s+(?:{_ORDER_WORDS}|(?:protection\s+)?plans?|warrant(?:y|ies)|coverage)\b"
# A value that is also a product brand ("a Samsung TV") counts as the seller only before an order
# word, a seller's doing or the end of a phrase ("a Samsung order", "Samsung says", "vendor:
# Samsung."), or after a word that names the seller ("bought from Samsung", "vendor is Dell").
_SELLER_AFTER = re.compile(
    rf"(?:['’]s)?(?:\.com)?(?:\s+(?:{_ORDER_WORDS}|ordered|pos|purchases|shipments?|vendor|store|"
    r"site|website|account|support|warehouse|said|says|confirmed|replied|responded|shipped|"
    r"cancell?ed|accepted|declined|refused|rejected)\b|\s*(?:[-–—,.;:?!)]|$))", re.IGNORECASE)
_SELLER_BEFORE = re.compile(r"\b(?:from|at|via|through|vendor|seller|retailer|supplier|merchant)"
                            r"(?:\s+(?:is|was|being))?[\s:=]+$", re.IGNORECASE)


def find_values(question: str, slot: Slot) -> list[tuple[int, str, str]]:
    """(start, canonical value, text as written) of each of the slot's values in the question,
    in the order written."""
    if (index := _slot_index(slot)) is not None:
        matches, canonical = _find_terms(question, index), index.canonical
    else:
        pattern, canonical = _slot_choice_pattern(slot)
        matches = [(m.start(), m.end()) for m in pattern.finditer(question)]
    # Folded first: the match may hold a letter the pattern took for an ASCII one ("Wısh").
    found = [(start, canonical[norm(question[start:end].translate(_FOLD))], question[start:end])
             for start, end in matches]
    if slot.brands:
        found = [(at, value, text) for at, value, text in found
                 if value not in slot.brands or _SELLER_AFTER.match(question, at + len(text))
                 or _SELLER_BEFORE.search(question, 0, at)]
    if not slot.patterns:
        return found
    written = [(m.start(), m.end(), value) for value, pattern in _compiled(slot.patterns)
               for m in pattern.finditer(question)]
    outside = [(at, value, text) for at, value, text in found
               if not any(start < at + len(text) and at < end for start, end, _ in written)]
    return sorted(outside + [(start, value, question[start:end]) for start, end, value in written])


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[tuple[str, str], ...]) -> list[tuple[str, re.Pattern[str]]]:
    # The same text and flags conditions.py compiled to check it: re's cache answers.
    return [(value, re.compile(pattern, re.IGNORECASE)) for value, pattern in patterns]


def words_pattern(text: str, between: str) -> str:
    """A name as a pattern tolerant of a missing or different space, hyphen or apostrophe."""
    parts = [r"\s*&\s*".join(map(re.escape, p.split("&"))) for p in _WORD_BREAK.split(text) if p]
    return between.join(parts)


class _Term(NamedTuple):
    rank: int  # its place in longest-first order: of the terms that fit at one start, the first wins
    raw: str  # its words run together as written
    gaps: dict[int, bool]  # offset in raw -> any GAP characters may stand there, or only whitespace
    exact: bool  # a match_case value


class _Index(NamedTuple):
    terms: dict[str, list[_Term]]  # by raw.lower(), in rank order
    # The beginnings of terms up to where a question's term may stop: a gap, a character outside
    # [\w&], or the term's end. No term fits past a stretch of question that is not one of these.
    stops: frozenset[str]
    canonical: dict[str, str]


_WORD_BREAK = re.compile(r"[\s\-'’.]+")
_GAP_CHAR = GAP.removesuffix("*")
_GAP_RUN = re.compile(_GAP_CHAR + "+")
# Where a term may start, with the characters up to where it may first end (no gap between).
_TERM_START = re.compile(rf"(?<![\w&])(?=((?!{_GAP_CHAR}).[\w&]*))", re.DOTALL)
_TERM_END = re.compile(rf"(?!{_GAP_CHAR}).(?![\w&])", re.DOTALL)
_CONTEXT_AFTER = re.compile(NAME_CONTEXT, re.IGNORECASE)
# Each character re.IGNORECASE equates with an ASCII one (found by trying all of Unicode) as that
# one in lower case; all are word characters, so folding moves no start or end.
_FOLD = str.maketrans({**{c: c.lower() for c in string.ascii_uppercase},
                       "\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


@lru_cache(maxsize=64)
def _slot_index(slot: Slot) -> _Index | None:
    """A slot's terms for _find_terms (built in a few ms where compiling _choice_pattern took
    ~20), looked up like _slot_choice_pattern. None when a term is one _find_terms may read
    differently (outside ASCII, a quote in it, '&' at an end): the slot keeps the pattern."""
    by_key: dict[str, list[_Term]] = {}
    stops: set[str] = set()
    longest_first = _longest_first(slot)
    for rank, (text, value) in enumerate(longest_first):
        words = [w for w in _WORD_BREAK.split(text) if w]
        raw = "".join(words)
        if not raw.isascii() or '"' in raw or raw[:1] in ("", "&") or raw.endswith("&"):
            return None
        bounds = set(itertools.accumulate(len(w) for w in words[:-1]))
        gaps = {i: i in bounds for i in range(1, len(raw)) if i in bounds or "&" in raw[i - 1 : i + 1]}
        key = raw.lower()
        by_key.setdefault(key, []).append(_Term(rank, raw, gaps, value in slot.match_case))
        stops.update(key[:i] for i in range(1, len(key) + 1)
                     if i == len(key) or i in gaps or not (key[i].isalnum() or key[i] in "_&"))
    return _Index(by_key, frozenset(stops), {norm(term): value for term, value in longest_first})


@lru_cache(maxsize=8)
def _scan(question: str) -> tuple[str, dict[str, list[int]]]:
    """The question folded, and where a term may start by the word there: once for all slots."""
    folded = question.translate(_FOLD)
    starts: dict[str, list[int]] = {}
    for m in _TERM_START.finditer(folded):
        starts.setdefault(m[1], []).append(m.start())
    return folded, starts


def _find_terms(question: str, index: _Index) -> list[tuple[int, int]]:
    """Where _choice_pattern's finditer matches, without building the pattern: at each place a
    term may start, the first in longest-first order that fits, then on from its end. A term fits
    question[start:end] when the characters left out of GAP are its own, up to case."""
    folded, starts = _scan(question)
    found: list[tuple[int, int]] = []
    for start in sorted(p for word in index.stops.intersection(starts) for p in starts[word]):
        if found and start < found[-1][1]:
            continue
        best: tuple[int, int] | None = None  # (rank, end)
        for end in (m.end() for m in _TERM_END.finditer(folded, start)):
            key = _GAP_RUN.sub("", folded[start:end])
            if key not in index.stops:
                break
            for term in index.terms.get(key, ()):
                if best is not None and term.rank > best[0]:
                    break
                if _fits(term, question, start, end):
                    best = (term.rank, end)
                    break
        if best is not None:
            found.append((start, best[1]))
    return found


def _fits(term: _Term, question: str, start: int, end: int) -> bool:
    """Whether question[start:end], the term's characters up to case, has gaps only where the
    term's pattern allows them and, for a match_case value, its case or NAME_CONTEXT after."""
    if term.exact and _GAP_RUN.sub("", question[start:end]) != term.raw \
            and not _CONTEXT_AFTER.match(question, end):
        return False
    gaps_before = start
    for run in _GAP_RUN.finditer(question, start, end):
        anything = term.gaps.get(run.start() - gaps_before)
        if anything is None or not (anything or run[0].isspace()):
            return False
        gaps_before += len(run[0])
    return True


def _longest_first(slot: Slot) -> list[tuple[str, str]]:
    terms = [(t, v) for v, aliases in slot.values.items() for t in (v, *aliases)]
    return sorted(terms, key=lambda term: -len(term[0]))


@lru_cache(maxsize=64)
def _slot_choice_pattern(slot: Slot) -> tuple[re.Pattern[str], dict[str, str]]:
    """A slot's pattern, looked up by the slot itself: the same Slot object comes back with every
    question, and gathering its terms again cost more than matching them. (A slot's hash leaves
    out its values, but equality compares them: an edited slot gets its own pattern.)"""
    return _choice_pattern(tuple(_longest_first(slot)), tuple(slot.match_case))


@lru_cache(maxsize=64)
def _choice_pattern(terms: tuple[tuple[str, str], ...],
                    match_case: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    """A slot's values as one pattern: the definition _find_terms follows, and the matcher for
    the slots it leaves alone."""
    longest_first = sorted(terms, key=lambda term: -len(term[0]))
    canonical = {norm(term): value for term, value in longest_first}
    alternation = "|".join(
        f"(?-i:{words_pattern(t, GAP)})|{words_pattern(t, GAP)}(?={NAME_CONTEXT})"
        if v in match_case else words_pattern(t, GAP) for t, v in longest_first)
    return re.compile(rf"(?<![\w&])(?:{alternation})(?![\w&])", re.IGNORECASE), canonical

