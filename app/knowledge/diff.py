"""What changed between two versions of the knowledge, entry by entry and field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.knowledge.playbook import KnowledgeBase
from app.records import Entry

ChangeKind = Literal["added", "removed", "retired", "restored", "edited"]
_TEXT_FIELDS = ("question", "answer", "macro")


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str | None = None
    after: str | None = None
    added: tuple[str, ...] = ()  # list fields: what came and went
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntryChange:
    entry_id: str
    kind: ChangeKind
    question: str
    fields: tuple[FieldChange, ...] = ()

    def summary(self) -> str:
        if self.kind != "edited":
            return f"{self.kind} {self.entry_id}"
        return f"edited {self.entry_id}: {', '.join(f.field for f in self.fields)}"


def _conditions(entry: Entry) -> tuple[str, ...]:
    return tuple(c.describe() for c in entry.conditions)


def field_changes(before: Entry, after: Entry) -> tuple[FieldChange, ...]:
    changes = [FieldChange(name, getattr(before, name), getattr(after, name))
               for name in _TEXT_FIELDS if getattr(before, name) != getattr(after, name)]
    for name, old, new in (("alternates", before.alternates, after.alternates),
                           ("tags", before.tags, after.tags),
                           ("conditions", _conditions(before), _conditions(after))):
        if old != new:
            changes.append(FieldChange(name, added=tuple(t for t in new if t not in old),
                                       removed=tuple(t for t in old if t not in new)))
    return tuple(changes)


def knowledge_changes(before: KnowledgeBase | None, after: KnowledgeBase) -> list[EntryChange]:
    """Every entry added, removed, retired, brought back or edited, in the new file's order."""
    old_active = {e.id: e for e in before.entries} if before else {}
    old_retired = {e.id: e for e in before.retired} if before else {}
    changes: list[EntryChange] = []
    for entry, retired in [*((e, False) for e in after.entries),
                           *((e, True) for e in after.retired)]:
        was = old_active.pop(entry.id, None)
        was_retired = old_retired.pop(entry.id, None)
        previous = was or was_retired
        if previous is None:
            changes.append(EntryChange(entry.id, "added", entry.question))
            continue
        fields = field_changes(previous, entry)
        if retired and was is not None:
            changes.append(EntryChange(entry.id, "retired", entry.question, fields))
        elif not retired and was_retired is not None:
            changes.append(EntryChange(entry.id, "restored", entry.question, fields))
        elif fields:
            changes.append(EntryChange(entry.id, "edited", entry.question, fields))
    changes.extend(EntryChange(e.id, "removed", e.question)
                   for e in (*old_active.values(), *old_retired.values()))
    return changes
