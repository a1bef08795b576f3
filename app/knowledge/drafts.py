"""Whole-entry edits of playbook.yaml: create a card, change any of its fields, retire it.

An edited entry's block is replaced in the file's text by the entry as the rest of the file is
written (PyYAML, width 100), and a new entry goes after the last one, so every other entry,
comment and blank line stays byte for byte. Comments inside an edited entry's block are lost.
The edited text is parsed back and must hold exactly the expected entries before it is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.errors import KnowledgeError
from app.knowledge.conditions import Slot, parse_conditions
from app.knowledge.playbook import (
    KnowledgeBase,
    display_path,
    entry_to_dict,
    parse_playbook_yaml,
)
from app.records import Entry

ENTRY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


@dataclass(frozen=True)
class EntryDraft:
    """Every field a knowledge manager edits; provenance (source, variants) is kept as it is."""

    id: str
    question: str
    answer: str
    macro: str | None = None
    alternates: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    conditions: Mapping[str, str | list[str]] = field(default_factory=dict)
    retired: bool = False

    @classmethod
    def of(cls, entry: Entry, retired: bool = False) -> EntryDraft:
        return cls(id=entry.id, question=entry.question, answer=entry.answer, macro=entry.macro,
                   alternates=entry.alternates, tags=entry.tags,
                   conditions={c.slot.name: c.to_yaml_value() for c in entry.conditions},
                   retired=retired)


def _clean(text: str) -> str:
    return " ".join(text.split())


def to_entry(draft: EntryDraft, slots: dict[str, Slot], existing: Entry | None,
             where: str) -> Entry:
    """The entry a draft describes, every field checked as the file's loader would."""
    if not ENTRY_ID.match(draft.id):
        raise KnowledgeError(where, None, f"id {draft.id!r}: use 1-80 lowercase letters, digits "
                             "and dashes, starting with a letter or digit")
    for name, value in (("question", draft.question), ("answer", draft.answer)):
        if not value.strip():
            raise KnowledgeError(where, None, f"{draft.id}: '{name}' is empty")
    alternates = tuple(dict.fromkeys(_clean(a) for a in draft.alternates if a.strip()))
    tags = tuple(dict.fromkeys(t.strip() for t in draft.tags if t.strip()))
    macro = draft.macro.strip() if draft.macro and draft.macro.strip() else None
    conditions = parse_conditions(dict(draft.conditions) or None, slots, where, None)
    return Entry(id=draft.id, question=draft.question.strip(), answer=draft.answer.strip(),
                 macro=macro, alternates=alternates, tags=tags,
                 source=existing.source if existing else None,
                 variants=existing.variants if existing else (), conditions=conditions)


def apply_drafts(text: str, path: Path, slots: dict[str, Slot],
                 drafts: Iterable[EntryDraft]) -> tuple[str, KnowledgeBase]:
    """The playbook text with the drafts applied (an existing id is replaced, a new one added),
    and the knowledge it now holds. Raises KnowledgeError naming what is wrong."""
    where = display_path(path)
    before = parse_playbook_yaml(text, path, slots)
    active = {e.id: e for e in before.entries}
    retired = {e.id: e for e in before.retired}
    edited = text
    for draft in drafts:
        existing = active.get(draft.id) or retired.get(draft.id)
        entry = to_entry(draft, slots, existing, where)
        block = _entry_block(entry, draft.retired)
        edited = (_replace_block(edited, draft.id, block) if existing
                  else _append_block(edited, block))
        active.pop(draft.id, None)
        retired.pop(draft.id, None)
        (retired if draft.retired else active)[draft.id] = entry
    after = parse_playbook_yaml(edited, path, slots)
    if _shape(after.entries) != _shape(active.values()) or _shape(after.retired) != _shape(
            retired.values()):
        raise KnowledgeError(where, None, "the edit would change other entries in the file; "
                             "edit it by hand")
    return edited, after


def _shape(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: e.id)


def _entry_block(entry: Entry, retired: bool) -> str:
    dumped: str = yaml.safe_dump([entry_to_dict(entry, retired)], sort_keys=False,
                                 allow_unicode=True, width=100)
    return dumped


def _entries_node(text: str) -> yaml.SequenceNode:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)  # parse_playbook_yaml has checked the shape
    node = next(v for k, v in root.value if k.value == "entries")
    assert isinstance(node, yaml.SequenceNode)
    return node


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _block_span(text: str, item: yaml.Node) -> tuple[int, int, int]:
    """Where an entry's text starts (its line, dash included) and ends (trailing blank lines and
    comments at the list's depth belong to what follows), and its column."""
    column = item.start_mark.column
    start = _line_start(text, item.start_mark.index)
    end = item.end_mark.index
    lines = text[start:end].splitlines(keepends=True)
    while len(lines) > 1:
        last = lines[-1]
        body = last.lstrip(" ")
        if body.strip() and not (body.startswith("#") and len(last) - len(body) <= column):
            break
        end -= len(last)
        lines.pop()
    if end > start and text[end - 1] != "\n":
        end = text.find("\n", end)
        end = len(text) if end < 0 else end + 1
    return start, end, column - 2


def _indented(block: str, indent: int) -> str:
    pad = " " * indent
    return "".join(pad + line if line.strip() else line
                   for line in block.splitlines(keepends=True))


def _replace_block(text: str, entry_id: str, block: str) -> str:
    for item in _entries_node(text).value:
        fields = {k.value: v for k, v in item.value}
        if "id" in fields and fields["id"].value == entry_id:
            start, end, indent = _block_span(text, item)
            return text[:start] + _indented(block, indent) + text[end:]
    raise KnowledgeError("playbook.yaml", None, f"no entry {entry_id!r} to replace")


def _append_block(text: str, block: str) -> str:
    node = _entries_node(text)
    if node.flow_style:
        raise KnowledgeError("playbook.yaml", node.start_mark.line + 1,
                             "'entries' is a [flow] list; write it as a block list to edit it")
    _, end, indent = _block_span(text, node.value[-1])
    prefix = text[:end] if text[:end].endswith("\n") else text[:end] + "\n"
    return prefix + _indented(block, indent) + text[end:]

