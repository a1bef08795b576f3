"""Labelled query files (JSONL or CSV): each query with the entry ids that count as right, or
none for an out-of-scope query that should get "no confident match"."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.errors import QueryFileError
from app.files import json_lines
from app.knowledge.playbook import KnowledgeBase, read_text

CSV_SEPARATOR = "|"


@dataclass(frozen=True)
class QueryCase:
    query: str
    relevant: tuple[str, ...]  # empty: out of scope, no entry is a right answer
    line: int
    category: str | None = None  # optional grouping: figures are reported per category too

    @property
    def in_scope(self) -> bool:
        return bool(self.relevant)


def load_queries(path: Path, known_ids: Iterable[str] | None = None) -> list[QueryCase]:
    """Read JSONL or CSV (by suffix) of `query` and `expected` (an entry id, a list of ids, or
    null/empty for out of scope; the benchmarks' `relevant` list is accepted too). When
    `known_ids` is given, an expected id that is not among them is an error."""
    text = read_text(path)
    parse = _parse_csv if path.suffix.lower() == ".csv" else _parse_jsonl
    cases = parse(text, str(path))
    if not cases:
        raise QueryFileError(str(path), None, "the file holds no queries")
    if known_ids is not None:
        known = set(known_ids)
        for case in cases:
            unknown = [r for r in case.relevant if r not in known]
            if unknown:
                raise QueryFileError(str(path), case.line,
                                     f"unknown entry id {unknown[0]!r} in the expected answer")
    return cases


@dataclass(frozen=True)
class StaleLabel:
    """A query whose expected entry is retired or no longer in the playbook: not scored."""

    case: QueryCase
    entry_id: str
    retired: bool

    def __str__(self) -> str:
        state = "is retired" if self.retired else "is not in the playbook"
        return (f"line {self.case.line}: expected entry {self.entry_id!r} {state}; the query "
                f"{self.case.query!r} is not scored (relabel it)")


def split_stale(cases: Iterable[QueryCase], kb: KnowledgeBase
                ) -> tuple[list[QueryCase], list[StaleLabel]]:
    """The cases whose labels all name entries in service, and the others, reported."""
    active = {e.id for e in kb.entries}
    retired = {e.id for e in kb.retired}
    usable: list[QueryCase] = []
    stale: list[StaleLabel] = []
    for case in cases:
        gone = next((r for r in case.relevant if r not in active), None)
        if gone is None:
            usable.append(case)
        else:
            stale.append(StaleLabel(case, gone, gone in retired))
    return usable, stale


def _parse_jsonl(text: str, file: str) -> list[QueryCase]:
    cases = []
    for number, line in enumerate(json_lines(text), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QueryFileError(file, number, f"not valid JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise QueryFileError(file, number, "expected a JSON object with 'query' and "
                                 "'expected'")
        cases.append(_case(row, file, number))
    return cases


def _parse_csv(text: str, file: str) -> list[QueryCase]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "query" not in header or not ({"expected", "relevant"} & set(header)):
        raise QueryFileError(file, 1, "the header must name a 'query' column and an 'expected' "
                             f"column; found {header}")
    cases = []
    for row in reader:
        number = reader.line_num
        if None in row:
            raise QueryFileError(file, number, "more cells than header columns")
        cell = row.get("expected") if "expected" in header else row.get("relevant")
        cell = (cell or "").strip()
        expected: Any = [part.strip() for part in cell.split(CSV_SEPARATOR)] if cell else None
        cases.append(_case({"query": row.get("query"), "expected": expected,
                            "category": row.get("category")}, file, number))
    return cases


def _case(row: dict[str, Any], file: str, line: int) -> QueryCase:
    query = row.get("query")
    if not isinstance(query, str) or not query.strip():
        raise QueryFileError(file, line, "missing or empty 'query'")
    if "expected" in row:
        expected = row["expected"]
    elif "relevant" in row:
        expected = row["relevant"]
    else:
        raise QueryFileError(file, line, "missing 'expected' (an entry id, a list of ids, or "
                             "null for an out-of-scope query)")
    if expected is None or expected == "":
        relevant: tuple[str, ...] = ()
    elif isinstance(expected, str):
        relevant = (expected.strip(),)
    elif isinstance(expected, list) and all(isinstance(e, str) and e.strip() for e in expected):
        relevant = tuple(dict.fromkeys(e.strip() for e in expected))
    else:
        raise QueryFileError(file, line, f"'expected' must be an entry id, a list of entry ids "
                             f"or null, got {expected!r}")
    category = row.get("category")
    if category is not None and not isinstance(category, str):
        raise QueryFileError(file, line, f"'category' must be text, got {category!r}")
    return QueryCase(query.strip(), relevant, line, category.strip() or None if category else None)


def slice_alternates(kb: KnowledgeBase, keep: int) -> KnowledgeBase:
    """The knowledge with each entry's alternates cut to the first `keep` (0 removes them)."""
    return replace(kb, entries=tuple(replace(e, alternates=e.alternates[:keep])
                                     for e in kb.entries))
