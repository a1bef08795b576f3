"""Flashcard exports -> playbook entries, reporting every line that cannot be paired or merged.

Two export shapes are read: alternating lines (a question line, then its answer line) and
tab-separated `question<TAB>answer` lines. Nothing is dropped: a line that lost its partner
goes to "needs review", a repeated card is merged with its twin recorded, and a card that
contradicts an existing one is held for review.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from pathlib import Path

from app.errors import KnowledgeError
from app.knowledge.macros import extract_macro
from app.knowledge.playbook import KnowledgeBase, display_path, read_text
from app.knowledge.text import question_key
from app.records import Entry, SourceRef, UnpairedLine, Variant

# Two answers this similar to each other are one answer with a typo ("Processing"/"Proessing").
TYPO_SIMILARITY = 0.85

_STOPWORDS = frozenset(
    (
        "a an the is are was were be been to of for in on at by and or if it its this that what "
        "which who whom when where how should would will do does did you your we our us can "
        "there their they with from as after before has have had not no"
    ).split()
)


@dataclass(frozen=True)
class Card:
    question: str
    answer: str
    question_source: SourceRef


@dataclass(frozen=True)
class Finding:
    """Something the importer noticed; `level` is "error", "warning" or "info"."""

    level: str
    source: SourceRef
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.level}: {self.message}"


@dataclass(frozen=True)
class ParsedExport:
    cards: tuple[Card, ...]
    orphans: tuple[UnpairedLine, ...]


def _looks_like_question(line: str) -> bool:
    return line.rstrip().endswith("?")


def parse_export(path: Path) -> ParsedExport:
    """Pair the lines of an export. Raises KnowledgeError for an unreadable or empty file."""
    name = display_path(path)
    text = read_text(path)
    raw = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not raw:
        raise KnowledgeError(name, None, "the file is empty: no cards to import")
    if all("\t" in line for _, line in raw):
        return _parse_tab_separated(raw, name)
    return _parse_alternating([(n, line.strip()) for n, line in raw], name)


def _parse_tab_separated(lines: list[tuple[int, str]], name: str) -> ParsedExport:
    cards: list[Card] = []
    orphans: list[UnpairedLine] = []
    for number, line in lines:
        question, _, answer = (part.strip() for part in line.partition("\t"))
        if question and answer and "\t" not in answer:
            cards.append(Card(question, answer, SourceRef(name, number)))
        else:
            orphans.append(UnpairedLine(line.strip(), SourceRef(name, number),
                                      "expected exactly 'question<TAB>answer'"))
    return ParsedExport(tuple(cards), tuple(orphans))


def _parse_alternating(lines: list[tuple[int, str]], name: str) -> ParsedExport:
    """Question line, answer line. A would-be answer that is itself a question ('...?') means
    the line before it lost its partner: that line is set aside and pairing resumes."""
    cards: list[Card] = []
    orphans: list[UnpairedLine] = []
    i = 0
    while i < len(lines):
        number, question = lines[i]
        if i + 1 >= len(lines):
            orphans.append(UnpairedLine(question, SourceRef(name, number),
                                      "last line of the file has no partner line"))
            break
        _, answer = lines[i + 1]
        if _looks_like_question(answer):
            orphans.append(UnpairedLine(
                question, SourceRef(name, number),
                "no partner line: the next line is a question, so this line's question or "
                "answer was lost in the export",
            ))
            i += 1
            continue
        cards.append(Card(question, answer, SourceRef(name, number)))
        i += 2
    return ParsedExport(tuple(cards), tuple(orphans))


# ---------------------------------------------------------------- merging into a playbook


def _answers_agree(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, question_key(a), question_key(b)).ratio()


def slugify(question: str, taken: set[str]) -> str:
    folded = question.casefold().replace("’", "").replace("'", "")
    words = [w for w in re.findall(r"[a-z0-9]+", folded) if w not in _STOPWORDS]
    base = "-".join(words[:6]) or "entry"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


@dataclass(frozen=True)
class ImportReport:
    added: tuple[str, ...]
    unchanged: tuple[str, ...]
    findings: tuple[Finding, ...]


def merge_export(kb: KnowledgeBase, export: ParsedExport) -> tuple[KnowledgeBase, ImportReport]:
    """Fold parsed cards into a knowledge base, keeping every card and every stray line."""
    entries: list[Entry] = list(kb.entries)
    review: list[UnpairedLine] = list(kb.needs_review)
    by_key = {question_key(e.question): i for i, e in enumerate(entries)}
    for i, entry in enumerate(entries):
        for variant in entry.variants:
            by_key.setdefault(question_key(variant.question), i)
    taken = {e.id for e in entries}
    added: list[str] = []
    unchanged: list[str] = []
    findings: list[Finding] = []

    for orphan in export.orphans:
        findings.append(Finding("warning", orphan.source, f"orphan line kept for review: "
                                f"{orphan.text!r} ({orphan.reason})"))
        if all(r.source != orphan.source for r in review):
            review.append(orphan)

    for card in export.cards:
        key = question_key(card.question)
        if key not in by_key:
            entry_id = slugify(card.question, taken)
            taken.add(entry_id)
            entries.append(Entry(id=entry_id, question=card.question, answer=card.answer,
                                 macro=extract_macro(card.answer), source=card.question_source))
            by_key[key] = len(entries) - 1
            added.append(entry_id)
            continue
        index = by_key[key]
        existing = entries[index]
        if existing.source == card.question_source or any(
            v.source == card.question_source for v in existing.variants
        ):
            unchanged.append(existing.id)
            continue
        similarity = _answers_agree(existing.answer, card.answer)
        if similarity == 1.0 or similarity >= TYPO_SIMILARITY:
            note = "exact duplicate" if similarity == 1.0 else (
                f"duplicate card; answer {card.answer!r} differs from {existing.answer!r} "
                "by a typo, kept the first")
            entries[index] = replace(existing, variants=(
                *existing.variants, Variant(card.question, card.answer, card.question_source, note)
            ))
            findings.append(Finding("warning", card.question_source,
                                    f"merged into entry {existing.id!r}: {note}"))
        else:
            reason = (f"conflict: same question as entry {existing.id!r} "
                      f"({existing.source}) but a different answer {card.answer!r}")
            review.append(UnpairedLine(f"{card.question}\n{card.answer}", card.question_source,
                                     reason))
            findings.append(Finding("error", card.question_source, reason + "; held for review"))

    merged = replace(kb, entries=tuple(entries), needs_review=tuple(review))
    return merged, ImportReport(tuple(added), tuple(unchanged), tuple(findings))
