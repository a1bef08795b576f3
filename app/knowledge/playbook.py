"""The structured playbook: load and validate it (file:line errors), hash it, save it atomically.

A knowledge folder holds `playbook.yaml` (entries and the "needs review" list), and optionally
`glossary.yaml` (abbreviation -> expansion) and `out_of_scope.txt` (questions the playbook does
not answer, used to calibrate when to say "no confident match"). A benchmark `entries.jsonl`
(id, question, answer, alternates) loads too, so public sets run through the same code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from app.errors import KnowledgeError
from app.files import json_line, json_lines, write_atomic
from app.knowledge.conditions import Slot, load_slots, parse_conditions
from app.knowledge.macros import extract_macro
from app.records import Entry, SourceRef, UnpairedLine, Variant

PLAYBOOK_FILE = "playbook.yaml"
GLOSSARY_FILE = "glossary.yaml"
OUT_OF_SCOPE_FILE = "out_of_scope.txt"
SLOTS_FILE = "slots.yaml"

_ENTRY_KEYS = {"id", "question", "answer", "macro", "alternates", "tags", "source", "variants",
               "conditions", "retired"}
_REQUIRED_KEYS = ("id", "question", "answer")
_LINE = "__line__"


@dataclass(frozen=True)
class KnowledgeBase:
    entries: tuple[Entry, ...]
    needs_review: tuple[UnpairedLine, ...] = ()
    glossary: dict[str, str] = field(default_factory=dict)
    out_of_scope: tuple[str, ...] = ()
    slots: dict[str, Slot] = field(default_factory=dict, compare=False)
    path: Path | None = None
    entry_lines: dict[str, int] = field(default_factory=dict, compare=False)
    # Cards taken out of service: kept in the file (and its history), never indexed or answered.
    retired: tuple[Entry, ...] = ()

    def entry(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def retired_entry(self, entry_id: str) -> Entry | None:
        return next((e for e in self.retired if e.id == entry_id), None)

    def content_hash(self) -> str:
        """sha256 of everything that shapes the index; the manifest stores it to spot staleness."""
        return self._content_hash

    @cached_property
    def _content_hash(self) -> str:  # the object is immutable, so hash it once
        payload = {
            "entries": [entry_to_dict(e) for e in self.entries],
            "glossary": self.glossary,
            "out_of_scope": list(self.out_of_scope),
            **({"retired": sorted(e.id for e in self.retired)} if self.retired else {}),
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def with_alternate(self, entry_id: str, alternate: str) -> KnowledgeBase:
        """A copy with one more phrasing on an entry (no-op if it is already there)."""
        entries = []
        for entry in self.entries:
            if entry.id == entry_id and alternate not in entry.alternates:
                entry = replace(entry, alternates=(*entry.alternates, alternate))
            entries.append(entry)
        return replace(self, entries=tuple(entries))


# ---------------------------------------------------------------- loading


def display_path(path: Path | str) -> str:
    """A path as a person would type it: relative to the current folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping, for file:line error messages."""


# libyaml's parser (about 10x faster: most of a start-up's knowledge loading) with the same
# constructor; the pure-Python one re-reads a broken file, for its clearer error messages.
_FastLineLoader: type[Any] = (
    type("_FastLineLoader", (yaml.CSafeLoader,), {}) if yaml.__with_libyaml__ else _LineLoader)


def _construct_mapping_with_line(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_loader: type[Any]
for _loader in (_LineLoader, _FastLineLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                            _construct_mapping_with_line)


def read_text(path: Path) -> str:
    """Read a UTF-8 file, naming the line of the first undecodable byte if it is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KnowledgeError(display_path(path), None, f"cannot read file: {exc.strerror}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise KnowledgeError(
            display_path(path), line, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8"
        ) from exc


def load_knowledge(location: Path) -> KnowledgeBase:
    """Load a knowledge folder, a playbook.yaml, or a benchmark entries.jsonl."""
    if location.is_dir():
        if (location / PLAYBOOK_FILE).exists():
            return _load_folder(location)
        if (location / "entries.jsonl").exists():
            return load_entries_jsonl(location / "entries.jsonl")
        raise KnowledgeError(str(location), None, f"no {PLAYBOOK_FILE} or entries.jsonl here")
    if location.suffix == ".jsonl":
        return load_entries_jsonl(location)
    if location.exists():
        return _load_folder(location.parent, playbook=location)
    raise KnowledgeError(str(location), None, "no such file or folder")


def _load_folder(folder: Path, playbook: Path | None = None) -> KnowledgeBase:
    playbook = playbook or folder / PLAYBOOK_FILE
    slots = load_slots(folder / SLOTS_FILE)
    kb = parse_playbook_yaml(read_text(playbook), playbook, slots)
    glossary_path = folder / GLOSSARY_FILE
    glossary = _parse_glossary(glossary_path) if glossary_path.exists() else {}
    oos_path = folder / OUT_OF_SCOPE_FILE
    out_of_scope = parse_lines(read_text(oos_path)) if oos_path.exists() else ()
    return replace(kb, glossary=glossary, out_of_scope=out_of_scope, slots=slots)


def parse_playbook_yaml(text: str, path: Path, slots: dict[str, Slot] | None = None) -> KnowledgeBase:
    name = display_path(path)
    if not text.strip():
        raise KnowledgeError(name, None, "the file is empty; expected 'entries:' with a list")
    _refuse_values_that_are_comments(text, name)
    try:
        try:
            doc = yaml.load(text, Loader=_FastLineLoader)
        except yaml.YAMLError:
            doc = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise KnowledgeError(name, line, f"unreadable YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise KnowledgeError(name, None, f"unreadable YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise KnowledgeError(name, 1, "expected a mapping with an 'entries:' list")
    if not doc["entries"]:
        line = next((n for n, text in enumerate(text.splitlines(), start=1)
                     if text.startswith("entries:")), 1)
        raise KnowledgeError(name, line, "'entries' is empty: a playbook needs at least one entry")

    entries: list[Entry] = []
    retired: list[Entry] = []
    lines: dict[str, int] = {}
    for raw in doc["entries"]:
        entry = _parse_entry(raw, name, slots or {})
        line = raw[_LINE]
        if entry.id in lines:
            raise KnowledgeError(
                name, line, f"duplicate id {entry.id!r} (first used on line {lines[entry.id]})"
            )
        lines[entry.id] = line
        (retired if _retired(raw, name, line) else entries).append(entry)
    if not entries:
        raise KnowledgeError(name, lines[retired[0].id] if retired else 1,
                             "every entry is retired: a playbook needs at least one in service")
    review = tuple(_parse_review_item(raw, name) for raw in doc.get("needs_review") or [])
    return KnowledgeBase(entries=tuple(entries), needs_review=review, path=path,
                         entry_lines=lines, retired=tuple(retired))


def _retired(raw: dict[str, Any], file: str, line: int) -> bool:
    value = raw.get("retired", False)
    if not isinstance(value, bool):
        raise KnowledgeError(file, line, "'retired' must be true or false")
    return value


# `macro: #SD - No Price Match` is a YAML comment: the macro would silently be empty.
_COMMENT_AS_VALUE = re.compile(r"^\s*(?:-\s+)?(?:(?P<key>question|answer|macro):\s+|-\s+)#")


def _refuse_values_that_are_comments(text: str, name: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _COMMENT_AS_VALUE.match(line):
            what = f"'{match['key']}'" if match["key"] else "this list item"
            value = line[match.end() - 1 :].strip()
            raise KnowledgeError(name, number, f"{what} starts with '#', which YAML reads as a "
                                 f"comment, leaving it empty; quote it: '{value}'")


def _parse_entry(raw: Any, file: str, slots: dict[str, Slot]) -> Entry:
    if not isinstance(raw, dict):
        raise KnowledgeError(file, None, f"each entry must be a mapping, got {raw!r}")
    line = raw[_LINE]
    unknown = set(raw) - _ENTRY_KEYS - {_LINE}
    if unknown:
        raise KnowledgeError(file, line, f"unknown field(s) {sorted(unknown)}; allowed: "
                             f"{sorted(_ENTRY_KEYS)}")
    for key in _REQUIRED_KEYS:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise KnowledgeError(file, line, f"missing or empty field {key!r}")
    macro = raw.get("macro")
    if macro is not None and (not isinstance(macro, str) or not macro.strip()):
        raise KnowledgeError(file, line, "'macro' must be text or null")
    return Entry(
        id=raw["id"],
        question=raw["question"],
        answer=raw["answer"],
        macro=macro,
        alternates=_string_list(raw, "alternates", file, line),
        tags=_string_list(raw, "tags", file, line),
        source=_parse_source(raw.get("source"), file, line),
        variants=tuple(_parse_variant(v, file, line) for v in raw.get("variants") or []),
        conditions=parse_conditions(raw.get("conditions"), slots, file, line),
    )


def _string_list(raw: dict[str, Any], key: str, file: str, line: int) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise KnowledgeError(file, line, f"'{key}' must be a list of non-empty strings")
    return tuple(value)


def _parse_source(raw: Any, file: str, line: int) -> SourceRef | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str) or not isinstance(
        raw.get("line"), int
    ):
        raise KnowledgeError(file, line, "'source' must have 'file' (text) and 'line' (number)")
    return SourceRef(raw["file"], raw["line"])


def _parse_variant(raw: Any, file: str, line: int) -> Variant:
    if not isinstance(raw, dict) or not all(
        isinstance(raw.get(k), str) for k in ("question", "answer")
    ):
        raise KnowledgeError(file, line, "each variant needs 'question' and 'answer' text")
    source = _parse_source(raw.get("source"), file, raw.get(_LINE, line))
    if source is None:
        raise KnowledgeError(file, raw.get(_LINE, line), "each variant needs a 'source'")
    return Variant(raw["question"], raw["answer"], source, str(raw.get("note", "")))


def _parse_review_item(raw: Any, file: str) -> UnpairedLine:
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise KnowledgeError(file, None, "each needs_review item needs 'text'")
    source = _parse_source(raw.get("source"), file, raw[_LINE])
    if source is None:
        raise KnowledgeError(file, raw[_LINE], "each needs_review item needs a 'source'")
    return UnpairedLine(raw["text"], source, str(raw.get("reason", "")))


def _parse_glossary(path: Path) -> dict[str, str]:
    try:
        doc = yaml.safe_load(read_text(path)) or {}
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise KnowledgeError(str(path), line, f"unreadable YAML: {exc.problem}") from exc
    if not isinstance(doc, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in doc.items()
    ):
        raise KnowledgeError(str(path), 1, "expected 'ABBREVIATION: expansion' lines")
    return dict(doc)


def parse_lines(text: str) -> tuple[str, ...]:
    """out_of_scope.txt's questions: its lines but blank ones and #-comments."""
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def load_entries_jsonl(path: Path) -> KnowledgeBase:
    """Entries in the public benchmarks' shape: one JSON object a line."""
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(json_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            row = json_line(line)
        except json.JSONDecodeError as exc:
            raise KnowledgeError(str(path), number, f"not valid JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise KnowledgeError(str(path), number, "expected a JSON object")
        for key in ("id", "question"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise KnowledgeError(str(path), number, f"missing or empty field {key!r}")
        if row["id"] in seen:
            raise KnowledgeError(str(path), number, f"duplicate id {row['id']!r}")
        seen[row["id"]] = number
        answer = str(row.get("answer") or "")
        entries.append(
            Entry(
                id=row["id"],
                question=row["question"],
                answer=answer,
                macro=extract_macro(answer),
                alternates=tuple(str(a) for a in row.get("alternates") or []),
                tags=tuple(str(t) for t in row.get("tags") or []),
                source=SourceRef(str(path), number),
            )
        )
    if not entries:
        raise KnowledgeError(str(path), None, "the file holds no entries")
    oos_path = path.parent / OUT_OF_SCOPE_FILE  # a benchmark's negatives, beside its entries
    out_of_scope = parse_lines(read_text(oos_path)) if oos_path.exists() else ()
    return KnowledgeBase(entries=tuple(entries), out_of_scope=out_of_scope, path=path,
                         entry_lines=seen)


# ---------------------------------------------------------------- saving


def entry_to_dict(entry: Entry, retired: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": entry.id,
        **({"retired": True} if retired else {}),
        "question": entry.question,
        "answer": entry.answer,
        "macro": entry.macro,
        **({"conditions": {c.slot.name: c.to_yaml_value() for c in entry.conditions}}
           if entry.conditions else {}),
        "alternates": list(entry.alternates),
        "tags": list(entry.tags),
    }
    if entry.source is not None:
        out["source"] = {"file": entry.source.file, "line": entry.source.line}
    if entry.variants:
        out["variants"] = [
            {
                "question": v.question,
                "answer": v.answer,
                "source": {"file": v.source.file, "line": v.source.line},
                "note": v.note,
            }
            for v in entry.variants
        ]
    return out


def dump_playbook_yaml(entries: Iterable[Entry], needs_review: Iterable[UnpairedLine],
                       retired: Iterable[Entry] = ()) -> str:
    doc = {
        "entries": [*(entry_to_dict(e) for e in entries),
                    *(entry_to_dict(e, retired=True) for e in retired)],
        "needs_review": [
            {"text": r.text, "source": {"file": r.source.file, "line": r.source.line},
             "reason": r.reason}
            for r in needs_review
        ],
    }
    header = (
        "# The playbook: the source of truth for the index. Edit, then run `playbook lint`.\n"
        "# needs_review holds export lines that could not be paired; they are not indexed.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def save_playbook(kb: KnowledgeBase, path: Path) -> None:
    """Validate what we are about to write by parsing it back (against the slots declared
    beside it, which are what it will be read with), then replace the file atomically."""
    text = dump_playbook_yaml(kb.entries, kb.needs_review, kb.retired)
    parse_playbook_yaml(text, path, load_slots(path.parent / SLOTS_FILE))
    write_atomic(path, text)
