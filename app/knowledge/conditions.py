"""Conditions on cards: which vendor, how much time has passed, how many tracking numbers.

`knowledge/slots.yaml` declares the slots once; an entry's `conditions:` bounds some of them
(`vendor: Best Buy`, `elapsed: within 5 days`). The slot values a question mentions are found by
plain rules, and a condition is contradicted only when the question mentions its slot and no
mentioned value can satisfy it. A missed mention only shows the card as usual, while a false one
rules out the right card, so extraction leans to precision: vague phrases ("last week", "a
while") and durations that read as a rule or an estimate ("3-5 business days SLA", "it takes 2
weeks", "a 30-day window") are not mentions. Durations are held in hours.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from app.errors import KnowledgeError

Kind = Literal["choice", "duration", "count"]
Op = Literal["in", "<", "<=", ">", ">="]
_KINDS: tuple[Kind, ...] = ("choice", "duration", "count")
_SLOT_KEYS = ("kind", "label", "noun", "values", "match_case", "nouns")
_LINE_KEY = "__line__"  # the playbook loader's line marker on mappings: a line number, not a slot
_GAP = r"[\s\-'’.]*"  # between the words of a name: best buy, bestbuy, best-buy; lowe's, lowes

_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0, "business day": 24.0, "week": 168.0,
          "month": 720.0, "year": 8760.0}
_ABBREVIATIONS = {"min": "minute", "mins": "minute", "h": "hour", "hr": "hour", "hrs": "hour", "d": "day",
                  "wk": "week", "wks": "week", "yr": "year", "yrs": "year"}
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_SPECIAL = {"a": 1.0, "an": 1.0, "couple": 2.0, "couple of": 2.0, "a couple": 2.0, "a couple of": 2.0,
            "a dozen": 12.0, "dozen": 12.0, "half a": 0.5, "half an": 0.5}
_BOUND_WORDS: dict[Op, str] = {">": "more than", ">=": "at least", "<": "fewer than", "<=": "at most"}


def _either(words: list[str] | tuple[str, ...], last: str = "or") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _longest_first(words: list[str]) -> str:
    return "|".join(w.replace(" ", r"\s+") for w in sorted(words, key=len, reverse=True))


_WORD_NUM = rf"(?:{_longest_first(_TENS)})(?:[\s-]+(?:{_longest_first(_ONES[1:10])}))?" \
            rf"|{_longest_first(_ONES)}"
_COUNT_NUM = rf"\d+|{_WORD_NUM}|a\s+dozen|dozen"
_NUM = rf"\d+(?:\.\d+)?|{_WORD_NUM}|{_longest_first(list(_SPECIAL))}"
_UNIT = _longest_first([f"{u}s" for u in _HOURS] + list(_HOURS) + list(_ABBREVIATIONS))
# "than" is often typed "then" in a hurry.
_AT_MOST = r"(?:within|in)\s+the\s+(?:last|past)|within|(?:less|fewer)\s+th[ae]n|under|up\s+to|at\s+most"
_AT_LEAST = r"more\s+th[ae]n|at\s+least|over|after"
_DURATION = re.compile(
    rf"(?<![\w.])(?:(?P<most>{_AT_MOST})\s+|(?P<least>{_AT_LEAST})\s+)?(?P<num>{_NUM})"
    rf"(?:\s*(?:-|to)\s*(?P<num2>{_NUM}))?(?P<half>\s+and\s+a\s+half)?(?P<plus>\+)?(?:(?<=\d)\s*|\s+)"
    rf"(?P<unit>{_UNIT})(?P<half2>\s+and\s+a\s+half)?(?P<more>\+|\s+or\s+(?:more|longer)|\s+plus)?"
    r"(?!\w)", re.IGNORECASE)
# A value that is also an ordinary word ("target") counts in any case right before these.
_VENDOR_CONTEXT = r"\s+(?:orders?|po|purchase|returns?|packages?|deliver(?:y|ies))\b"
# Earlier the same day: less than a day has passed.
_TODAY = re.compile(r"(?<!\w)(?:(?:earlier\s+)?today|this\s+(?:morning|afternoon|evening)|tonight)(?!\w)",
                    re.IGNORECASE)
SAME_DAY_HOURS = 23.0
_YESTERDAY = re.compile(r"(?<!\w)(?:(?:the\s+)?day\s+before\s+)?yesterday(?!\w)", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|(?:has|have|is|was|did)n[’']?t)\b", re.IGNORECASE)
# Near these words a duration is a rule, an estimate or a frequency, not time that has passed.
_RULE_IN_SENTENCE = re.compile(r"\b(?:slas?|turnaround|eta|lead\s+time|processing\s+times?|how\s+long)\b",
                               re.IGNORECASE)
_RULE_BEFORE = re.compile(r"\b(?:takes?|will|would|expected|estimated?|supposed\s+to|policy|window|wait|"
                          r"ships|per|every|each|once|twice|times)[\s'’]+(?:[\w'’]+\s+){0,3}$", re.IGNORECASE)
_RULE_AFTER = re.compile(r"^[\s'’]*(?:[\w'’]+\s+)?(?:sla|turnaround|processing|shipping|window|policy|"
                         r"guarantee|returns?|lead\s+time)\b", re.IGNORECASE)
_BOUNDS: dict[Kind, list[tuple[str, Op]]] = {
    "count": [("more than|over", ">"), ("at least", ">="), ("fewer than|less than|under", "<"),
              ("at most|up to", "<=")],
    "duration": [("within(?: the (?:past|last))?|at most|under|less than|up to", "<="),
                 ("after|more than|over|at least", ">=")],
}


@dataclass(frozen=True)
class Slot:
    """Something a card can depend on. `values`: canonical name -> aliases (choice); `nouns`: how
    a count is written (count); `label` names the slot in messages, `noun` ends "applies to X ___"."""

    name: str
    kind: Kind
    label: str
    line: int | None = None
    noun: str = ""
    values: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    match_case: tuple[str, ...] = ()
    nouns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Condition:
    """`value`: canonical names (choice), hours (duration) or a count; `unit` words a duration."""

    slot: Slot
    op: Op
    value: tuple[str, ...] | float
    unit: str = ""

    def describe(self) -> str:
        if isinstance(self.value, tuple):
            return f"{self.slot.label} is {_either(self.value)}"
        if self.slot.kind == "count":
            return f"{self.to_yaml_value()} {self.slot.nouns[0]}"
        return f"{self.slot.label} is {self.to_yaml_value()}"

    def to_yaml_value(self) -> str | list[str]:
        if isinstance(self.value, tuple):
            return self.value[0] if len(self.value) == 1 else list(self.value)
        if self.slot.kind == "count":
            return f"{_BOUND_WORDS[self.op]} {self.value:g}"
        amount = self.value / _HOURS[self.unit]
        return f"{_BOUND_WORDS[self.op]} {amount:g} {self.unit}{'' if amount == 1 else 's'}"


@dataclass(frozen=True)
class Mention:
    """A slot value in a question, `text` as written. A duration or count may be a range from
    `value` to `upper` ("over a month": 720 to infinity; "3-5 days": 72 to 120)."""

    slot: str
    value: str | float
    text: str
    upper: float | None = None


@dataclass(frozen=True)
class Contradiction:
    condition: Condition
    mention: Mention
    reason: str


def load_slots(path: Path) -> dict[str, Slot]:
    """Read slots.yaml; a missing or empty file declares no slots."""
    if not path.exists():
        return {}
    file = str(path)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise KnowledgeError(file, line, f"unreadable YAML: {exc.problem}") from exc
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise KnowledgeError(file, _line(root), "expected a mapping of slot name: declaration")
    slots: dict[str, Slot] = {}
    for key, body in root.value:
        if key.value in slots:
            raise KnowledgeError(file, _line(key), f"slot {key.value!r} is declared twice")
        slots[key.value] = _parse_slot(key.value, body, file, _line(key))
    return slots


def _parse_slot(name: str, body: yaml.Node, file: str, line: int) -> Slot:
    def problem(text: str, at: int = line) -> KnowledgeError:
        return KnowledgeError(file, at, f"slot {name!r}: {text}")

    if not isinstance(body, yaml.MappingNode):
        raise problem("expected 'kind:' and its settings")
    nodes = {k.value: v for k, v in body.value}
    if unknown := sorted(set(nodes) - set(_SLOT_KEYS)):
        raise problem(f"unknown setting(s) {unknown}; allowed: {', '.join(_SLOT_KEYS)}")
    kind, label = _scalar(nodes.get("kind")), _scalar(nodes.get("label")) or name.replace("_", " ")
    if kind == "duration":
        return Slot(name, "duration", label, line)
    if kind == "count":
        if not (nouns := _strings(nodes.get("nouns"))):
            raise problem("a count needs 'nouns:', the words agents count (tracking numbers)")
        return Slot(name, "count", label, line, nouns=nouns)
    if kind != "choice":
        raise problem(f"unknown kind {kind!r}; expected {_either(_KINDS)}")
    values_node = nodes.get("values")
    if not isinstance(values_node, yaml.MappingNode) or not values_node.value:
        raise problem("a choice needs 'values:', each a name with its aliases (Best Buy: [BB])")
    values: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for key, aliases in values_node.value:
        values[key.value] = _strings(aliases)
        for term in (key.value, *values[key.value]):
            if (first := owner.setdefault(_norm(term), key.value)) != key.value:
                raise problem(f"{term!r} is claimed by both {first} and {key.value}", _line(key))
    match_case = _strings(nodes.get("match_case"))
    if stray := [v for v in match_case if v not in values]:
        raise problem(f"match_case names unknown value(s) {stray}")
    return Slot(name, "choice", label, line, _scalar(nodes.get("noun")), values, match_case)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: yaml.Node | None) -> str:
    return str(node.value).strip() if isinstance(node, yaml.ScalarNode) else ""


def _strings(node: yaml.Node | None) -> tuple[str, ...]:
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    return tuple(text for item in items if (text := _scalar(item)))


def _norm(term: str) -> str:
    return re.sub(r"[^0-9a-z&]", "", term.casefold())


def parse_conditions(
    raw: object, slots: dict[str, Slot], file: str, line: int | None
) -> tuple[Condition, ...]:
    """An entry's `conditions:` (slot: bound) as Conditions; None means none."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise KnowledgeError(file, line, "'conditions' must be a mapping of slot: value")
    line = raw.get(_LINE_KEY, line)
    conditions = []
    for name, value in raw.items():
        if name == _LINE_KEY:
            continue
        if name not in slots:
            known = ", ".join(slots) or "none (declare them in slots.yaml)"
            raise KnowledgeError(file, line, f"unknown condition {name!r}; declared slots: {known}")
        conditions.append(_parse_condition(slots[name], value, file, line))
    return tuple(conditions)


def _parse_condition(slot: Slot, value: object, file: str, line: int | None) -> Condition:
    if slot.kind == "choice":
        names = [str(item) for item in (value if isinstance(value, list) else [value])]
        by_norm = {_norm(v): v for v in slot.values}
        if unknown := [n for n in names if _norm(n) not in by_norm] if names else [""]:
            raise KnowledgeError(file, line, f"{slot.name}: {_unknown_value(slot, unknown[0])}")
        return Condition(slot, "in", tuple(by_norm[_norm(n)] for n in names))
    number, unit = (_NUM, rf"\s*(?P<unit>{_UNIT})") if slot.kind == "duration" else (_COUNT_NUM, "")
    text = " ".join(str(value).casefold().split())
    match = re.fullmatch(rf"(?:(?P<op>[a-z ]+?)\s+)?(?P<num>{number}){unit}"
                         rf"(?:\s+or\s+(?P<tail>more|longer|fewer|less))?", text)
    op: Op | None = None
    if match and (match["op"] is None) != (match["tail"] is None):
        words = match["op"] or ""
        op = next((o for w, o in _BOUNDS[slot.kind] if re.fullmatch(w, words)), None) if words else \
            (">=" if match["tail"] in ("more", "longer") else "<=")
    if match is None or op is None:
        hint = ("'within 5 days', 'after 24 hours', 'at least 30 days', '30 days or more'"
                if slot.kind == "duration" else "'more than 10', '10 or more', 'fewer than 3', 'at most 3'")
        raise KnowledgeError(file, line, f"{slot.name}: cannot read {value!r}; write it like {hint}")
    if slot.kind == "count":
        return Condition(slot, op, _number(match["num"]))
    unit_name = _unit(match["unit"])
    return Condition(slot, op, _number(match["num"]) * _HOURS[unit_name], unit_name)


def _unknown_value(slot: Slot, value: str) -> str:
    owner = next((v for v, aliases in slot.values.items() if _norm(value) in map(_norm, aliases)), None)
    if owner:
        return f"{value!r} is an alias; write {owner!r}"
    known = f"known values: {', '.join(slot.values)}"
    if not value:
        return f"name at least one value; {known}"
    close = difflib.get_close_matches(value, list(slot.values), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown value {value!r}{hint}; {known}"


def _number(text: str) -> float:
    words = " ".join(re.split(r"[\s-]+", text.casefold().strip()))
    if words[0].isdigit():
        return float(words)
    if words in _SPECIAL:
        return _SPECIAL[words]
    return float(sum(_ONES.index(w) if w in _ONES else 10 * _TENS.index(w) + 20 for w in words.split()))


def _unit(text: str) -> str:
    unit = " ".join(text.casefold().split())
    unit = _ABBREVIATIONS.get(unit, unit)
    return unit if unit in _HOURS else unit[:-1]


def extract_mentions(question: str, slots: dict[str, Slot]) -> tuple[Mention, ...]:
    """The slot values a question mentions, in the order written."""
    found: list[tuple[int, Mention]] = []
    for slot in slots.values():
        found += {"choice": _choices, "duration": _durations, "count": _counts}[slot.kind](question, slot)
    return tuple(mention for _, mention in sorted(found, key=lambda item: item[0]))


def _words_pattern(text: str, between: str) -> str:
    """A name as a pattern tolerant of a missing or different space, hyphen or apostrophe."""
    parts = [r"\s*&\s*".join(map(re.escape, p.split("&"))) for p in re.split(r"[\s\-'’.]+", text) if p]
    return between.join(parts)


def _choices(question: str, slot: Slot) -> list[tuple[int, Mention]]:
    terms = sorted(((t, v) for v, aliases in slot.values.items() for t in (v, *aliases)),
                   key=lambda term: -len(term[0]))
    canonical = {_norm(term): value for term, value in terms}
    alternation = "|".join(
        f"(?-i:{_words_pattern(t, _GAP)})|{_words_pattern(t, _GAP)}(?={_VENDOR_CONTEXT})"
        if v in slot.match_case else _words_pattern(t, _GAP) for t, v in terms)
    pattern = re.compile(rf"(?<![\w&])(?:{alternation})(?![\w&])", re.IGNORECASE)
    return [(m.start(), Mention(slot.name, canonical[_norm(m[0])], m[0])) for m in pattern.finditer(question)]


def _durations(question: str, slot: Slot) -> list[tuple[int, Mention]]:
    found = [(m.start(), Mention(slot.name, 48.0 if " " in m[0] else 24.0, m[0]))
             for m in _YESTERDAY.finditer(question)]
    found += [(m.start(), Mention(slot.name, 0.0, m[0], SAME_DAY_HOURS))
              for m in _TODAY.finditer(question)]
    for m in _DURATION.finditer(question):
        before, after = question[: m.start()], question[m.end() :]
        sentence = re.split(r"[.?!;\n]", before)[-1] + m[0] + re.split(r"[.?!;\n]", after)[0]
        adjectival = m["unit"].casefold() in _HOURS and _number(m["num"]) > 1  # "a 30 day window"
        if adjectival or _RULE_IN_SENTENCE.search(sentence) or _RULE_BEFORE.search(before) \
                or _RULE_AFTER.search(after):
            continue
        hours, half = _HOURS[_unit(m["unit"])], 0.5 if m["half"] or m["half2"] else 0.0
        low = (_number(m["num"]) + half) * hours
        high = (_number(m["num2"]) + half) * hours if m["num2"] else None
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
    nouns = "|".join(_words_pattern(n[:-1], r"\s+") + "s?" if n.endswith("s") else _words_pattern(n, r"\s+")
                     for n in sorted(slot.nouns, key=len, reverse=True))
    pattern = re.compile(
        rf"(?<![\w.])(?P<amount>(?:(?P<most>{_AT_MOST})\s+|(?P<least>{_AT_LEAST})\s+)?(?P<num>{_COUNT_NUM})"
        rf"(?P<more>\+|\s+or\s+more)?)\s+(?:(?:new|different|separate|more|additional|extra)\s+)?"
        rf"(?:{nouns})(?!\w)", re.IGNORECASE)
    found = []
    for m in pattern.finditer(question):
        number = _number(m["num"])
        low, high = (0.0, number) if m["most"] else (number, math.inf if m["least"] or m["more"] else None)
        found.append((m.start(), Mention(slot.name, low, m["amount"], high)))
    return found


def contradictions(
    conditions: tuple[Condition, ...], mentions: tuple[Mention, ...]
) -> tuple[Contradiction, ...]:
    """The conditions a question rules out: it mentions their slot and no mentioned value fits."""
    ruled_out = []
    for condition in conditions:
        about = [m for m in mentions if m.slot == condition.slot.name]
        if about and not any(_satisfies(condition, m) for m in about):
            ruled_out.append(Contradiction(condition, about[0], _reason(condition, about)))
    return tuple(ruled_out)


def _satisfies(condition: Condition, mention: Mention) -> bool:
    if isinstance(condition.value, tuple):
        return mention.value in condition.value
    if isinstance(mention.value, str):
        return False
    low, bound = mention.value, condition.value
    high = low if mention.upper is None else mention.upper
    checks = {"<": low < bound, "<=": low <= bound, ">": high > bound, ">=": high >= bound}
    return checks.get(condition.op, False)


def _reason(condition: Condition, mentions: list[Mention]) -> str:
    said = list(dict.fromkeys(m.value if isinstance(m.value, str) else m.text for m in mentions))
    if isinstance(condition.value, tuple) and condition.slot.noun:
        applies = f"applies to {_either(condition.value)} {condition.slot.noun}"
    elif condition.slot.kind == "count":
        applies = f"applies to {condition.describe()}"
    else:
        applies = f"applies when the {condition.describe()}"
    return f"{applies}; your question mentions {_either(said, 'and')}"
