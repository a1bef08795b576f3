"""Amounts as agents write them: numbers in digits or words ("two", "a couple of", "a dozen"),
time units and their abbreviations ("24 hrs", "5 wks"), all durations held in hours."""

from __future__ import annotations

import re

HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0, "business day": 24.0, "week": 168.0,
          "fortnight": 336.0, "month": 720.0, "year": 8760.0}
ABBREVIATIONS = {"min": "minute", "mins": "minute", "h": "hour", "hr": "hour", "hrs": "hour", "d": "day",
                  "wk": "week", "wks": "week", "mo": "month", "mos": "month", "yr": "year",
                  "yrs": "year"}
ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
SPECIAL = {"a": 1.0, "an": 1.0, "couple": 2.0, "couple of": 2.0, "a couple": 2.0, "a couple of": 2.0,
            "a dozen": 12.0, "dozen": 12.0, "half a": 0.5, "half an": 0.5, "a single": 1.0,
            "single": 1.0}


def either(words: list[str] | tuple[str, ...], last: str = "or") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def longest_first(words: list[str]) -> str:
    return "|".join(w.replace(" ", r"\s+") for w in sorted(words, key=len, reverse=True))


WORD_NUM = rf"(?:{longest_first(TENS)})(?:[\s-]+(?:{longest_first(ONES[1:10])}))?" \
            rf"|{longest_first(ONES)}"
COUNT_NUM = rf"\d+|{WORD_NUM}|a\s+dozen|dozen|a\s+single|single"
NUM = rf"\d+(?:\.\d+)?|{WORD_NUM}|{longest_first(list(SPECIAL))}"
UNIT = longest_first([f"{u}s" for u in HOURS] + list(HOURS) + list(ABBREVIATIONS))


def number(text: str) -> float:
    words = " ".join(re.split(r"[\s-]+", text.casefold().strip()))
    if words[0].isdigit():
        return float(words)
    if words in SPECIAL:
        return SPECIAL[words]
    return float(sum(ONES.index(w) if w in ONES else 10 * TENS.index(w) + 20 for w in words.split()))


def unit(text: str) -> str:
    unit = " ".join(text.casefold().split())
    unit = ABBREVIATIONS.get(unit, unit)
    return unit if unit in HOURS else unit[:-1]
