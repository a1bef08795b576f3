"""Time elapsed between two points in time a question names: calendar dates ("ordered March 2nd
… it is now April 9th", "ordered 3/2, now 3/30"), days of the month against today ("last scan
on the 2nd, today's the 19th") or weekdays against today ("placed Fri, it's Wed now"). One
point alone says nothing about how long ago it was. Each gives (where it starts, days, at most
days, text as written)."""

from __future__ import annotations

import datetime
import itertools
import re

Span = tuple[int, float, float | None, str]

# Calendar dates written with the month's name ("March 2nd", "Apr 9", "the 3rd of May"); dates in
# digits only after a word that makes them dates (_DIGIT_DATE).
_MONTH = (r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?")
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_DATE = re.compile(rf"(?<![\w/])(?:(?P<month>{_MONTH})\.?\s+(?P<day>{_DAY})|(?:the\s+)?(?P<day2>{_DAY})"
                   rf"\s+(?:of\s+)?(?P<month2>{_MONTH}))(?![\w/])", re.IGNORECASE)
# What names the present ("today's the 19th", "it's Wed now"), and what names a day before it
# ("on the 2nd", "since Monday", "placed Fri"). "Last Friday" is left to the weekday ranges.
_TODAY = r"(?:today(?:['’]?s|\s+is)|it['’]?s|it\s+is|now\s+it['’]?s)"
_TODAY_IS = _TODAY + r"\s+"
_EARLIER = r"(?:on|since|from|placed|ordered|bought|purchased|shipped)\s+(?:on\s+)?"
# An ordinal before a noun is a place in a list ("the 2nd item", "the 5th time"), not a day.
_ORDINAL = (r"the\s+(?P<day>[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)(?![\w/])"
            r"(?!\s+(?:items?|skus?|pos?|orders?|lines?|box(?:es)?|packages?|times?|attempts?|ones?|"
            r"calls?|e?mails?|messages?|shipments?|tracking|weeks?|days?|months?|floors?|"
            r"st(?:reet)?|ave(?:nue)?|road)\b)")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A weekday's name, whole or shortened ("Wednesday", "Wed", "wednes").
WEEKDAY_NAME = r"mon|tue|tues|wed|wednes|thu|thur|thurs|fri|sat|satur|sun"
# A day of the month may follow its weekday ("today is Saturday the 14th", "since last Wed the 4th").
_NAMED = rf"(?:(?:last\s+)?(?:{WEEKDAY_NAME})(?:day)?,?\s+)?"
_DAY_TODAY = re.compile(rf"(?<!\w){_TODAY_IS}{_NAMED}{_ORDINAL}", re.IGNORECASE)
_DAY_BEFORE = re.compile(rf"(?<!\w){_EARLIER}{_NAMED}{_ORDINAL}(?!\s+of\b)", re.IGNORECASE)
# Month/day in digits only after a word that makes it a date ("ordered 3/2, now 3/30"): alone,
# "2/5 shipped" is a count.
_DIGIT_DATE = re.compile(r"(?<!\w)(?:ordered|placed|bought|purchased|on|since|from|now|"
                         rf"{_TODAY})\s+(?:on\s+)?"
                         r"(?P<month>1[0-2]|0?[1-9])/(?P<day>[12]\d|3[01]|0?[1-9])(?![\w/])",
                         re.IGNORECASE)
_WEEKDAY = rf"(?P<weekday>{WEEKDAY_NAME})(?P<full>day)?\.?(?![\w/])"
_WEEKDAY_TODAY = re.compile(rf"(?<!\w){_TODAY_IS}{_WEEKDAY}", re.IGNORECASE)
_WEEKDAY_BEFORE = re.compile(rf"(?<!\w){_EARLIER}{_WEEKDAY}", re.IGNORECASE)


def elapsed_spans(question: str) -> list[Span]:
    """Calendar dates if the question has two; else a day of the month or a weekday against
    the one it calls today."""
    return _between_dates(question) or _since_day_of_month(question) or _since_weekday(question)


def _between_dates(question: str) -> list[Span]:
    """From the earliest date to the latest, over a year end when that is shorter (Dec 28 …
    Jan 3)."""
    dates = []
    for m in _DATE.finditer(question):
        month, day = (m["month"], m["day"]) if m["month"] else (m["month2"], m["day2"])
        dates += _day_of_year(_month_number(month), int(re.sub(r"\D", "", day)), m)
    for m in _DIGIT_DATE.finditer(question) if "/" in question else ():
        dates += _day_of_year(int(m["month"]), int(m["day"]), m)
    if len({day for day, _ in dates}) < 2:
        return []
    dates.sort(key=lambda date: date[0])
    # The shortest stretch of the year holding every date ends before the widest gap.
    gaps = [(later[0] - earlier[0]) % 365 for earlier, later in itertools.pairwise([*dates, dates[0]])]
    widest = max(range(len(gaps)), key=gaps.__getitem__)
    (_, first), (_, last) = dates[(widest + 1) % len(dates)], dates[widest]
    days = 365 - gaps[widest]
    return [(min(first.start(), last.start()), float(days), None, f"{first[0]} … {last[0]}")]


def _day_of_year(month: int, day: int, m: re.Match[str]) -> list[tuple[int, re.Match[str]]]:
    try:  # a year without a Feb 29: "Feb 29" is not read
        return [(datetime.date(2001, month, day).timetuple().tm_yday, m)]
    except ValueError:
        return []


def _since_day_of_month(question: str) -> list[Span]:
    """"On the 2nd … today's the 19th": 17 days; "on the 28th … today's the 3rd": the month
    before had 28 to 31 days, so 3 to 6."""
    today = _DAY_TODAY.search(question)
    if today is None:
        return []
    now = int(today["day"])
    spans: list[Span] = []
    for m in _DAY_BEFORE.finditer(question):
        then = int(m["day"])
        if then < now:
            spans.append((m.start(), float(now - then), None, f"{m[0]} … {today[0]}"))
        elif then > now:
            spans.append((m.start(), float(now + 28 - then), float(now + 31 - then),
                          f"{m[0]} … {today[0]}"))
    return spans


def _since_weekday(question: str) -> list[Span]:
    """"Placed Fri, it's Wed now": 5 days (the same weekday is a week); "sat" and "sun" in lower
    case are words ("it's sat in the warehouse")."""
    today = _WEEKDAY_TODAY.search(question)
    if today is None or not _is_weekday(today):
        return []
    now = _WEEKDAYS.index(today["weekday"][:3].casefold())
    return [(m.start(), float((now - _WEEKDAYS.index(m["weekday"][:3].casefold()) - 1) % 7 + 1),
             None, f"{m[0]} … {today[0]}")
            for m in _WEEKDAY_BEFORE.finditer(question) if _is_weekday(m)]


def _is_weekday(m: re.Match[str]) -> bool:
    return bool(m["full"]) or m["weekday"].casefold() not in ("sat", "sun") or m["weekday"][0].isupper()


def _month_number(name: str) -> int:
    return ("jan feb mar apr may jun jul aug sep oct nov dec".split()).index(name[:3].casefold()) + 1
