"""Checks on a knowledge draft before it is previewed or published: everything `playbook lint`
checks on the edited entries, the round trip through the file, and phrasings that would pull
questions away from another entry (checked against the index being served)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from app.engine.engine import Engine
from app.errors import KnowledgeError
from app.knowledge.drafts import EntryDraft, apply_drafts, to_entry
from app.knowledge.lint import macro_findings, unstated_conditions
from app.knowledge.playbook import KnowledgeBase, display_path, read_text
from app.knowledge.text import question_key

# A new entry's phrasing this close (cosine) to another entry's texts will often be answered
# with that entry instead.
CLOSE_TO_ANOTHER = 0.85


@dataclass(frozen=True)
class Problem:
    entry_id: str
    level: Literal["error", "warning", "info"]  # an error blocks preview and publish
    message: str


@dataclass(frozen=True)
class CheckedDraft:
    problems: tuple[Problem, ...]
    text: str | None  # the playbook.yaml the draft makes; None when it has errors
    knowledge: KnowledgeBase | None

    @property
    def ok(self) -> bool:
        return self.text is not None


def check_drafts(engine: Engine, drafts: Sequence[EntryDraft]) -> CheckedDraft:
    current = engine.knowledge
    if current.path is None or current.path.suffix not in (".yaml", ".yml"):
        return CheckedDraft((Problem("", "error", "only a playbook.yaml can be edited here"),),
                            None, None)
    where = display_path(current.path)
    problems: list[Problem] = []
    seen: set[str] = set()
    for draft in drafts:
        if draft.id in seen:
            problems.append(Problem(draft.id, "error", "the draft edits this entry twice"))
        seen.add(draft.id)
        try:
            to_entry(draft, current.slots, None, where)
        except KnowledgeError as exc:
            problems.append(Problem(draft.id, "error", exc.problem))
    if problems:
        return CheckedDraft(tuple(problems), None, None)
    try:
        text, edited = apply_drafts(read_text(current.path), current.path, current.slots, drafts)
    except KnowledgeError as exc:
        return CheckedDraft((Problem("", "error", exc.problem),), None, None)
    # The rest of the folder (glossary, out-of-scope examples, slots) is the current one's.
    after = replace(edited, glossary=current.glossary, out_of_scope=current.out_of_scope,
                    slots=current.slots)
    problems.extend(_phrasing_problems(engine, current, after, drafts))
    subset = KnowledgeBase(entries=tuple(e for e in after.entries if e.id in seen),
                           slots=after.slots, path=after.path, entry_lines=after.entry_lines)
    problems.extend(Problem(f.entry_id or "", "info" if f.level == "info" else "warning",
                            f"{f.message} (fix: {f.fix})")
                    for f in (*macro_findings(subset), *unstated_conditions(subset)))
    if any(p.level == "error" for p in problems):
        return CheckedDraft(tuple(problems), None, None)
    return CheckedDraft(tuple(problems), text, after)


def _phrasing_problems(engine: Engine, before: KnowledgeBase, after: KnowledgeBase,
                       drafts: Sequence[EntryDraft]) -> list[Problem]:
    owners: dict[str, list[str]] = {}
    for owner in after.entries:
        for text in (owner.question, *owner.alternates):
            owners.setdefault(question_key(text), []).append(owner.id)
    problems: list[Problem] = []
    for draft in drafts:
        entry = after.entry(draft.id)
        if entry is None:  # retired
            continue
        old = before.entry(draft.id)
        known = {question_key(t) for t in (old.question, *old.alternates)} if old else set()
        for text in (entry.question, *entry.alternates):
            other = next((o for o in owners[question_key(text)] if o != entry.id), None)
            if other is not None:
                problems.append(Problem(entry.id, "error",
                                        f"{text!r} is already a phrasing of {other!r}"))
            elif question_key(text) not in known:
                problems.extend(_closeness(engine, entry.id, text, is_new=old is None))
    return problems


def _closeness(engine: Engine, entry_id: str, text: str, is_new: bool) -> list[Problem]:
    found = engine.rival(entry_id, text)
    if found is None:
        return []
    rival, closest, own = found
    if is_new and closest < CLOSE_TO_ANOTHER:
        return []
    where = "" if is_new else f" than to its own entry ({own:.2f})"
    return [Problem(entry_id, "warning",
                    f"{text!r} sits closer to {rival!r} ({closest:.2f}){where}: agents asking "
                    f"it may get {rival!r}; reword it, or publish anyway")]
