"""The slot values a question mentions: vendors by name or alias, time that has passed ("3 weeks
ago", "48ish hrs", "yesterday", "this morning", "last Tuesday", "the Tuesday before last", "over
the weekend", and two days in app.knowledge.dates), counts before a slot's noun ("3 tracking
numbers").

A missed mention only shows the card as usual, while a false one rules out the right card, so
extraction leans to precision: vague phrases ("last week", "a while") and durations that read
as a rule or an estimate ("3-5 business days SLA", "it takes 2 weeks", "a 30-day window") are not
mentions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache

from app.knowledge.conditions import Mention, Slot
from app.knowledge.dates import WEEKDAY_NAME, elapsed_spans
from app.knowledge.quantities import COUNT_NUM, HOURS, NUM, UNIT, number, unit
from app.knowledge.terms import find_values, words_pattern
from app.knowledge.unlisted import unlisted_names

_AT_MOST = r"(?:within|in)\s+the\s+(?:last|past)|within|(?:less|fewer)\s+th[ae]n|under|up\s+to|at\s+most"
_AT_LEAST = r"more\s+th[ae]n|at\s+least|over|after"
_DURATION = re.compile(
    rf"(?<![\w.])(?:(?P<most>{_AT_MOST})\s+|(?P<least>{_AT_LEAST})\s+)?(?P<num>{NUM})(?:ish)?"
    rf"(?:\s*(?:-|to)\s*(?P<num2>{NUM}))?(?P<half>\s+and\s+a\s+half)?(?P<plus>\+)?(?:(?<=\d)\s*|\s+)"
    rf"(?P<unit>{UNIT})(?P<half2>\s+and\s+a\s+half)?(?P<more>\+|\s+or\s+(?:more|longer)|\s+plus)?"
    r"(?!\w)", re.IGNORECASE)
# Earlier the same day: less than a day has passed.
_TODAY = re.compile(r"(?<!\w)(?:(?:earlier\s+)?today|this\s+(?:morning|afternoon|evening)|tonight)(?!\w)",
                    re.IGNORECASE)
SAME_DAY_HOURS = 23.0
_YESTERDAY = re.compile(r"(?<!\w)(?:(?:the\s+)?day\s+before\s+)?yesterday(?!\w)", re.IGNORECASE)
# "last Tuesday": one to 13 days ago; "since Monday": one to 7.
_WEEKDAY = re.compile(rf"(?<!\w)(?:(?P<last>last|this\s+past)|since)\s+(?:{WEEKDAY_NAME})(?:day)?(?!\w)",
                      re.IGNORECASE)
# "the Tuesday before last": 8 to 15 days ago, whatever today is.
_WEEKDAY_BEFORE_LAST = re.compile(rf"(?<!\w)(?:{WEEKDAY_NAME})(?:day)?\s+before\s+last(?!\w)",
                                  re.IGNORECASE)
# The weekend just gone: one to 8 days ago ("last weekend": to 13); not one to come.
_WEEKEND = re.compile(r"(?<!\w)(?:(?P<last>last)|over\s+the|during\s+the|this\s+past)\s+weekend(?!\w)",
                      re.IGNORECASE)
_FUTURE_BEFORE = re.compile(
    r"\b(?:will|['’]ll|gonna|going\s+to|should|supposed\s+to|be)\s+(?:[\w'’]+\s+){0,3}$", re.IGNORECASE)
_NEGATED = re.compile(r"\b(?:not|no|no\s+longer|never|(?:is|are|was|were|has|have|had|does|do|did)n[’']?t)"
                      r"\s+(?:\w+\s+)?$",
                      re.IGNORECASE)
_COMPARED = re.compile(r"\b(?:like|unlike|same\s+as|similar\s+to|different\s+(?:from|than)|than)\s+"
                       r"(?:(?:we|you|they|i|it)\s+(?:do|did|does|would|normally|usually)(?:\s+(?:do|be))?\s+)?"
                       r"(?:with|for|on|at|in)\s+(?:an?\s+|the\s+)?$", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|(?:has|have|is|was|did)n[’']?t)\b", re.IGNORECASE)
# Near these words a duration is a rule, an estimate or a frequency, not time that has passed.
_RULE_IN_SENTENCE = re.compile(r"\b(?:slas?|turnaround|eta|lead\s+time|processing\s+times?|how\s+long)\b",
                               re.IGNORECASE)
_RULE_BEFORE = re.compile(r"\b(?:takes?|will|would|expected|estimated?|supposed\s+to|policy|window|wait|"
                          r"ships|per|every|each|once|twice|times)[\s'’]+(?:[\w'’]+\s+){0,3}$", re.IGNORECASE)
# A necessary condition for a _DURATION match, cheap to test: its unit, after a digit or a space
# and before a non-word character.
_ANY_UNIT = re.compile(rf"(?<=[\d\s])(?:{UNIT})(?!\w)", re.IGNORECASE)
# "5 weeks ago" is time that has passed, whatever rule the sentence also names ("ordered 5 weeks
# ago, is that within the processing time?").
_AGO = re.compile(r"[\s,]*ago\b", re.IGNORECASE)
_RULE_AFTER = re.compile(r"^[\s'’]*(?:[\w'’]+\s+)?(?:sla|turnaround|processing|shipping|window|policy|"
                         r"guarantee|returns?|lead\s+time)\b", re.IGNORECASE)


def extract_mentions(question: str, slots: dict[str, Slot]) -> tuple[Mention, ...]:
    """The slot values a question mentions, in the order written."""
    found: list[tuple[int, Mention]] = []
    for slot in slots.values():
        found += _EXTRACTORS[slot.kind](question, slot)
    if len(found) < 2:
        return (found[0][1],) if found else ()
    return tuple(mention for _, mention in sorted(found, key=lambda item: item[0]))


def _choices(question: str, slot: Slot) -> list[tuple[int, Mention]]:
    """A value right after a negation ("no longer in stock", "not Best Buy") says only what is
    not the case, and one the question compares with ("like we do for Amazon", "same as for BB
    orders") is another case than its own: neither is a mention. (Values that are negations
    themselves, "not yet sent", are written out in the slot and matched whole.) A slot with
    `unlisted` also counts a name in a seller's place that it does not list, as written."""
    values = find_values(question, slot)
    found = [(start, Mention(slot.name, value, text)) for start, value, text in values
             if not _NEGATED.search(question, 0, start) and not _COMPARED.search(question, 0, start)]
    if slot.unlisted:
        listed = [(start, start + len(text)) for start, _, text in values]
        found += [(start, Mention(slot.name, name, name))
                  for start, name in unlisted_names(question, slot, listed)
                  if not _NEGATED.search(question, 0, start)]
    return found

def _durations(question: str, slot: Slot) -> list[tuple[int, Mention]]:
    found = [(m.start(), Mention(slot.name, 48.0 if " " in m[0] else 24.0, m[0]))
             for m in _YESTERDAY.finditer(question)]
    dates = [(start, Mention(slot.name, days * 24.0, text, None if most is None else most * 24.0))
             for start, days, most, text in elapsed_spans(question)]
    found += dates or [(m.start(), Mention(slot.name, 0.0, m[0], SAME_DAY_HOURS))
                       for m in _TODAY.finditer(question)]  # "today is April 9th": a date's day
    if not dates:  # two days named say exactly how long; a weekday alone gives a range
        found += [(m.start(), Mention(slot.name, 24.0, m[0], (13.0 if m["last"] else 7.0) * 24))
                  for m in _WEEKDAY.finditer(question)]
        folded = question.casefold()  # most questions name neither: skip their patterns
        if "before last" in folded:
            found += [(m.start(), Mention(slot.name, 8 * 24.0, m[0], 15 * 24.0))
                      for m in _WEEKDAY_BEFORE_LAST.finditer(question)]
        if "weekend" in folded:
            found += [(m.start(), Mention(slot.name, 24.0, m[0], (13.0 if m["last"] else 8.0) * 24))
                      for m in _WEEKEND.finditer(question)
                      if not _FUTURE_BEFORE.search(question, 0, m.start())]
    if not _ANY_UNIT.search(question):  # most questions name no time unit: skip the long pattern
        return found
    for m in _DURATION.finditer(question):
        before, after = question[: m.start()], question[m.end() :]
        sentence = re.split(r"[.?!;\n]", before)[-1] + m[0] + re.split(r"[.?!;\n]", after)[0]
        adjectival = m["unit"].casefold() in HOURS and number(m["num"]) > 1  # "a 30 day window"
        if not _AGO.match(after) and (adjectival or _RULE_IN_SENTENCE.search(sentence)
                                      or _RULE_BEFORE.search(before) or _RULE_AFTER.search(after)):
            continue
        hours, half = HOURS[unit(m["unit"])], 0.5 if m["half"] or m["half2"] else 0.0
        low = (number(m["num"]) + half) * hours
        high = (number(m["num2"]) + half) * hours if m["num2"] else None
        negated = _NEGATION.search(re.split(r"[,.?!;\n]", before)[-1]) is not None
        if m["most"] and negated and m["most"].casefold().startswith(("within", "in ")):  # not within 2 days
            high = math.inf
        elif m["most"]:
            low, high = 0.0, low
        elif m["least"] and m["least"].casefold() == "after":
            pass  # "not delivered after 2 weeks": 2 weeks have passed, not "2 weeks or more"
        elif m["least"] or m["plus"] or m["more"]:
            high = math.inf
        found.append((m.start(), Mention(slot.name, low, m[0], high)))
    return found


def _counts(question: str, slot: Slot) -> list[tuple[int, Mention]]:
    pattern = _count_pattern(slot.nouns)
    found = []
    for m in pattern.finditer(question):
        amount = number(m["num"])
        low, high = (0.0, amount) if m["most"] else (amount, math.inf if m["least"] or m["more"] else None)
        found.append((m.start(), Mention(slot.name, low, m["amount"], high)))
    return found


@lru_cache(maxsize=64)
def _count_pattern(nouns: tuple[str, ...]) -> re.Pattern[str]:
    """A count slot's pattern (built once: it is on every question's path). A number before a
    rate ("one tracking number per line") is not how many there are."""
    alternation = "|".join(
        words_pattern(n[:-1], r"\s+") + "s?" if n.endswith("s") else words_pattern(n, r"\s+")
        for n in sorted(nouns, key=len, reverse=True))
    return re.compile(
        rf"(?<![\w.])(?P<amount>(?:(?P<most>{_AT_MOST})\s+|(?P<least>{_AT_LEAST})\s+)?(?P<num>{COUNT_NUM})"
        rf"(?P<more>\+|\s+or\s+more)?)\s+(?:(?:new|different|separate|more|additional|extra)\s+)?"
        rf"(?:{alternation})(?!\w)(?!(?:\s+[\w#]+)?\s+(?:per|each|apiece)\b)", re.IGNORECASE)


_EXTRACTORS: dict[str, Callable[[str, Slot], list[tuple[int, Mention]]]] = {
    "choice": _choices, "duration": _durations, "count": _counts}
