"""Conditions on cards: which vendor, how much time has passed, what state the shipment is in,
how many tracking numbers.

`knowledge/slots.yaml` declares the slots once; an entry's `conditions:` bounds some of them
(`vendor: Best Buy`, `elapsed: within 5 days`). A condition is contradicted only when the
question mentions its slot (app.knowledge.mentions) and no mentioned value can satisfy it.
Durations are held in hours.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from app.errors import KnowledgeError
from app.knowledge.quantities import (
    ABBREVIATIONS,
    COUNT_NUM,
    HOURS,
    NUM,
    UNIT,
    either,
    number,
    unit,
)

Kind = Literal["choice", "duration", "count"]
Op = Literal["in", "<", "<=", ">", ">="]
_KINDS: tuple[Kind, ...] = ("choice", "duration", "count")
_BOUND_WORDS: dict[Op, str] = {">": "more than", ">=": "at least", "<": "fewer than", "<=": "at most"}
_SLOT_KEYS = ("kind", "label", "noun", "values", "match_case", "brands", "patterns", "nouns",
              "unlisted")
# In a choice's `patterns`, {n} stands for a number in digits or words ("2", "two", "a dozen").
NUMBER_PLACEHOLDER = "{n}"
# libyaml's parser when PyYAML has it: about 10x faster, with the same nodes and marks.
_FAST_LOADER: type[Any] = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
_LINE_KEY = "__line__"  # the playbook loader's line marker on mappings: a line number, not a slot
GAP = r"""[\s\-'’."“”]*"""  # between words: best buy, bestbuy, best-buy; lowe's; no "cancel" option
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
    # Values that are also product brands ("a Samsung TV"): they count only as the seller.
    brands: tuple[str, ...] = ()
    nouns: tuple[str, ...] = ()
    # (value, regular expression) for the ways of writing a value that hold numbers ("2 of the
    # 5 items have shipped"); a pattern's match hides any alias found inside it.
    patterns: tuple[tuple[str, str], ...] = ()
    # Whether a name in a seller's place that is not a value counts (app.knowledge.unlisted).
    unlisted: bool = False

    def terms(self) -> tuple[str, ...]:
        """Every way the slot's values are written: names, aliases, count nouns and, for a
        duration, its units ("wks" is a unit, not a misspelling of "was")."""
        units = (*HOURS, *ABBREVIATIONS) if self.kind == "duration" else ()
        return (*self.values, *(a for aliases in self.values.values() for a in aliases),
                *self.nouns, *units)


@dataclass(frozen=True)
class Condition:
    """`value`: canonical names (choice), hours (duration) or a count; `unit` words a duration."""

    slot: Slot
    op: Op
    value: tuple[str, ...] | float
    unit: str = ""

    def describe(self) -> str:
        if isinstance(self.value, tuple):
            return f"{self.slot.label} is {either(self.value)}"
        if self.slot.kind == "count":
            return f"{self.to_yaml_value()} {self.slot.nouns[0]}"
        return f"{self.slot.label} is {self.to_yaml_value()}"

    def to_yaml_value(self) -> str | list[str]:
        if isinstance(self.value, tuple):
            return self.value[0] if len(self.value) == 1 else list(self.value)
        if self.slot.kind == "count":
            return f"{_BOUND_WORDS[self.op]} {self.value:g}"
        amount = self.value / HOURS[self.unit]
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
    file, text = str(path), path.read_text(encoding="utf-8")
    try:
        try:
            root = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:  # the pure-Python parser re-reads a broken file, for its messages
            root = yaml.compose(text, Loader=yaml.SafeLoader)
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
        raise problem(f"unknown kind {kind!r}; expected {either(_KINDS)}")
    values_node = nodes.get("values")
    if not isinstance(values_node, yaml.MappingNode) or not values_node.value:
        raise problem("a choice needs 'values:', each a name with its aliases (Best Buy: [BB])")
    values: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for key, aliases in values_node.value:
        values[key.value] = _strings(aliases)
        for term in (key.value, *values[key.value]):
            if (first := owner.setdefault(norm(term), key.value)) != key.value:
                raise problem(f"{term!r} is claimed by both {first} and {key.value}", _line(key))
    match_case, brands = _strings(nodes.get("match_case")), _strings(nodes.get("brands"))
    for key, named in (("match_case", match_case), ("brands", brands)):
        if stray := [v for v in named if v not in values]:
            raise problem(f"{key} names unknown value(s) {stray}")
    unlisted = _scalar(nodes.get("unlisted")).casefold() or "false"
    if unlisted not in ("true", "false"):
        raise problem(f"'unlisted:' is true or false, not {unlisted!r}")
    return Slot(name, "choice", label, line, _scalar(nodes.get("noun")), values, match_case,
                brands, patterns=_patterns(nodes.get("patterns"), values, problem),
                unlisted=unlisted == "true")


def _patterns(node: yaml.Node | None, values: dict[str, tuple[str, ...]],
              problem: Callable[[str, int], KnowledgeError]) -> tuple[tuple[str, str], ...]:
    """A choice's `patterns:` (value: [regular expressions]), {n} spelled out and bounded by
    whole words, each compiled here so that a broken one is reported with its line."""
    if node is None:
        return ()
    if not isinstance(node, yaml.MappingNode):
        raise problem("'patterns:' maps a value to its regular expressions", _line(node))
    found = []
    for key, expressions in node.value:
        if key.value not in values:
            raise problem(f"patterns name unknown value {key.value!r}", _line(key))
        for expression in _strings(expressions):
            spelled = expression.replace(NUMBER_PLACEHOLDER, f"(?:{COUNT_NUM})")
            pattern = rf"(?<![\w&])(?:{spelled})(?![\w&])"
            try:
                re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise problem(f"pattern {expression!r} for {key.value}: {exc.msg}", _line(key)) from exc
            found.append((key.value, pattern))
    return tuple(found)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: yaml.Node | None) -> str:
    return str(node.value).strip() if isinstance(node, yaml.ScalarNode) else ""


def _strings(node: yaml.Node | None) -> tuple[str, ...]:
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    return tuple(text for item in items if (text := _scalar(item)))


def norm(term: str) -> str:
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
        by_norm = {norm(v): v for v in slot.values}
        if unknown := [n for n in names if norm(n) not in by_norm] if names else [""]:
            raise KnowledgeError(file, line, f"{slot.name}: {_unknown_value(slot, unknown[0])}")
        return Condition(slot, "in", tuple(by_norm[norm(n)] for n in names))
    amount, units = (NUM, rf"\s*(?P<unit>{UNIT})") if slot.kind == "duration" else (COUNT_NUM, "")
    text = " ".join(str(value).casefold().split())
    match = re.fullmatch(rf"(?:(?P<op>[a-z ]+?)\s+)?(?P<num>{amount}){units}"
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
        return Condition(slot, op, number(match["num"]))
    unit_name = unit(match["unit"])
    return Condition(slot, op, number(match["num"]) * HOURS[unit_name], unit_name)


def _unknown_value(slot: Slot, value: str) -> str:
    owner = next((v for v, aliases in slot.values.items() if norm(value) in map(norm, aliases)), None)
    if owner:
        return f"{value!r} is an alias; write {owner!r}"
    known = f"known values: {', '.join(slot.values)}"
    if not value:
        return f"name at least one value; {known}"
    close = difflib.get_close_matches(value, list(slot.values), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown value {value!r}{hint}; {known}"


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


def met(conditions: tuple[Condition, ...], mentions: tuple[Mention, ...]) -> tuple[Condition, ...]:
    """The conditions a question states outright: a mentioned value fits."""
    return tuple(c for c in conditions
                 if any(m.slot == c.slot.name and _satisfies(c, m) for m in mentions))


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
        applies = f"applies to {either(condition.value)} {condition.slot.noun}"
    elif condition.slot.kind == "count":
        applies = f"applies to {condition.describe()}"
    else:
        applies = f"applies when the {condition.describe()}"
    return f"{applies}; your question mentions {either(said, 'and')}"
