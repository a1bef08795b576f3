"""Knowledge findings: orphans, duplicates, conflicts, misplaced alternates, odd macro names,
conditions a card states in words but not in `conditions:`, out-of-scope lines close to a card."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from app.embedding.embedder import Embedder, Vectors
from app.knowledge.glossary import Glossary
from app.knowledge.macros import macro_problem, normalize_dashes
from app.knowledge.mentions import extract_mentions
from app.knowledge.playbook import OUT_OF_SCOPE_FILE, KnowledgeBase, display_path, read_text
from app.knowledge.text import question_key
from app.ranking.out_of_scope import SIBLING
from app.records import Entry

# Questions of two entries this similar (cosine) ask the same thing.
NEAR_DUPLICATE = 0.92
# out_of_scope.txt's questions, each with its file:line.
OutOfScopeLines = list[tuple[str, str]]


@dataclass(frozen=True)
class LintFinding:
    level: str  # "error" fails `playbook lint`; "warning" and "info" do not
    where: str  # file:line
    entry_id: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        entry = f" [{self.entry_id}]" if self.entry_id else ""
        return f"{self.where}{entry} {self.level}: {self.message} (fix: {self.fix})"


def _where(kb: KnowledgeBase, entry: Entry) -> str:
    line = kb.entry_lines.get(entry.id)
    path = display_path(kb.path or "")
    return f"{path}:{line}" if line else path


def lint(kb: KnowledgeBase, embedder: Embedder) -> list[LintFinding]:
    out_of_scope = _out_of_scope_lines(kb)
    findings = [*_orphans(kb), *_exact_duplicates(kb, out_of_scope), *macro_findings(kb),
                *unstated_conditions(kb)]
    findings += _by_embedding(kb, embedder, out_of_scope)
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: order[f.level])


def _orphans(kb: KnowledgeBase) -> list[LintFinding]:
    return [
        LintFinding("warning", str(item.source), None,
                    f"needs review, not indexed: {item.text!r} ({item.reason})",
                    "write the missing question or answer and move it into entries, or delete it")
        for item in kb.needs_review
    ]


def unstated_conditions(kb: KnowledgeBase) -> list[LintFinding]:
    """A card whose question names a slot value ("the vendor is best buy", "within the past 5
    days") without a condition on that slot answers questions that contradict it."""
    findings = []
    for entry in kb.entries:
        stated = {c.slot.name for c in entry.conditions}
        for mention in extract_mentions(entry.question, kb.slots):
            if mention.slot in stated:
                continue
            stated.add(mention.slot)
            findings.append(LintFinding(
                "info", _where(kb, entry), entry.id,
                f"the question names {mention.slot} {mention.text!r} but the card has no "
                f"{mention.slot} condition",
                f"add `conditions: {{{mention.slot}: ...}}` if the card applies only then"))
    return findings


def _exact_duplicates(kb: KnowledgeBase, out_of_scope: OutOfScopeLines) -> list[LintFinding]:
    findings: list[LintFinding] = []
    owner: dict[str, Entry] = {}
    for entry in kb.entries:
        for text in (entry.question, *entry.alternates):
            key = question_key(text)
            first = owner.setdefault(key, entry)
            if first.id != entry.id:
                findings.append(LintFinding(
                    "error", _where(kb, entry), entry.id,
                    f"{text!r} is also a phrasing of entry {first.id!r}",
                    "keep the phrasing on one entry only, or merge the two entries"))
    for line, where in out_of_scope:
        if (card := owner.get(question_key(line))) is not None:
            findings.append(LintFinding(
                "error", where, card.id,
                f"out-of-scope line {line!r} is also a phrasing of entry {card.id!r}",
                "delete the line if the card answers it, else the phrasing"))
        for variant in entry.variants:
            findings.append(LintFinding(
                "info", str(variant.source), entry.id,
                f"merged duplicate card recorded: {variant.note or variant.answer!r}",
                "nothing to do; delete the variant once the source export is fixed"))
    return findings


def macro_findings(kb: KnowledgeBase) -> list[LintFinding]:
    findings: list[LintFinding] = []
    for entry in kb.entries:
        if entry.macro is None:
            continue
        problem = macro_problem(entry.macro)
        if problem:
            findings.append(LintFinding("warning", _where(kb, entry), entry.id,
                                        f"macro {entry.macro!r} looks malformed: {problem}",
                                        "copy the macro name exactly as the helpdesk shows it"))
        if normalize_dashes(entry.macro) not in normalize_dashes(entry.answer):
            findings.append(LintFinding("warning", _where(kb, entry), entry.id,
                                        f"macro {entry.macro!r} does not appear in the answer",
                                        "make the answer name the macro, or correct 'macro'"))
        if "–" in entry.macro or "—" in entry.macro:
            findings.append(LintFinding(
                "info", _where(kb, entry), entry.id,
                f"macro {entry.macro!r} is written with an en/em dash; most use '-'",
                "check the helpdesk's spelling; agents copy this text verbatim"))
    return findings


def _by_embedding(kb: KnowledgeBase, embedder: Embedder,
                  out_of_scope: OutOfScopeLines) -> list[LintFinding]:
    if len(kb.entries) < 2:
        return []
    glossary = Glossary(kb.glossary)
    questions = embedder.encode([glossary.expand(e.question) for e in kb.entries])
    findings: list[LintFinding] = []
    similarity = questions @ questions.T
    for i, j in combinations(range(len(kb.entries)), 2):
        if similarity[i, j] < NEAR_DUPLICATE:
            continue
        a, b = kb.entries[i], kb.entries[j]
        same = question_key(a.answer) == question_key(b.answer) and a.macro == b.macro
        findings.append(LintFinding(
            "warning" if same else "error", _where(kb, b), b.id,
            f"near-duplicate of {a.id!r} (cosine {similarity[i, j]:.2f})"
            + ("" if same else " with a different answer or macro: a conflict"),
            "merge the entries" if same else "decide which answer is right and merge"))
    texts: list[str] = []
    owners: list[int] = []
    for number, entry in enumerate(kb.entries):
        for text in (entry.question, *entry.alternates):
            texts.append(glossary.expand(text))
            owners.append(number)
    vectors = embedder.encode(texts)
    owner = np.array(owners)
    findings += _misplaced_alternates(kb, vectors, owner)
    findings += _out_of_scope_near_cards(kb, out_of_scope, vectors, owner, embedder, glossary)
    return findings


def _misplaced_alternates(kb: KnowledgeBase, vectors: Vectors,
                          owner: npt.NDArray[np.int_]) -> list[LintFinding]:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    findings: list[LintFinding] = []
    row = 0
    for number, entry in enumerate(kb.entries):
        row += 1  # the question itself
        for alternate in entry.alternates:
            own = similarity[row, owner == number].max()
            others = np.where(owner != number, similarity[row], -np.inf)
            best_other = int(np.argmax(others))
            if others[best_other] > own:
                rival = kb.entries[owner[best_other]].id
                findings.append(LintFinding(
                    "warning", _where(kb, entry), entry.id,
                    f"alternate {alternate!r} sits closer to entry {rival!r} "
                    f"({others[best_other]:.2f}) than to its own ({own:.2f})",
                    "reword it with the words that set this entry apart, or move it"))
            row += 1
    return findings


def _out_of_scope_near_cards(kb: KnowledgeBase, out_of_scope: OutOfScopeLines, vectors: Vectors,
                             owner: npt.NDArray[np.int_], embedder: Embedder,
                             glossary: Glossary) -> list[LintFinding]:
    """A line of out_of_scope.txt as near a card's text as SIBLING: a question worded like it
    is refused, though meant for the card (the rule at query time refuses a question nearer a
    line than to any card)."""
    phrasings = {question_key(t) for e in kb.entries for t in (e.question, *e.alternates)}
    lines = [(line, where) for line, where in out_of_scope
             if question_key(line) not in phrasings]  # those are errors already
    if not lines:
        return []
    similarity = embedder.encode([glossary.expand(line) for line, _ in lines]) @ vectors.T
    findings: list[LintFinding] = []
    for (line, where), row in zip(lines, similarity, strict=True):
        nearest = int(np.argmax(row))
        if row[nearest] < SIBLING:
            continue
        card = kb.entries[owner[nearest]].id
        findings.append(LintFinding(
            "info", where, card,
            f"out-of-scope line {line!r} is close to entry {card!r} ({row[nearest]:.2f}): a "
            "question worded like it is refused, even one the card answers",
            "delete the line if the card answers it; if not, keep it or reword it with what "
            "sets it apart"))
    return findings


def _out_of_scope_lines(kb: KnowledgeBase) -> OutOfScopeLines:
    if not kb.out_of_scope or kb.path is None:
        return []
    path = kb.path.parent / OUT_OF_SCOPE_FILE
    numbers: dict[str, int] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        numbers.setdefault(line.strip(), number)
    return [(line, f"{display_path(path)}:{numbers.get(line, 0)}") for line in kb.out_of_scope]
