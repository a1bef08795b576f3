"""Ranking: nearest indexed texts -> entries (best text per entry, plus the intent head's
weighted log-probability when the index has one)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from app.embedding.embedder import Vectors
from app.index.format import LoadedIndex, row_entries
from app.records import Entry

# Exhaustive over small indexes; over large ones, the best entries are among the top rows
# (searched again more widely when an entry's many phrasings crowd the others out).
EXHAUSTIVE_ROWS = 2048
SEARCH_ROWS = 64
# With an intent head, this many times `limit` entries (by cosine) are candidates it may
# reorder; over small indexes, every entry is.
HEAD_CANDIDATES = 4


@dataclass(frozen=True)
class Scored:
    entry: Entry
    score: float  # what entries are ranked by: best cosine (+ head weight * log p(entry | query))
    matched_text: str


class Ranker:
    def __init__(self, index: LoadedIndex, entries: Sequence[Entry]) -> None:
        self.index = index
        self.entries = tuple(entries)
        self._row_entry = row_entries(index.rows, [e.id for e in self.entries])
        self._entry_number = {e.id: i for i, e in enumerate(self.entries)}
        self._rows_by_tag: dict[str, np.ndarray] = {}
        for tag in {t for e in self.entries for t in e.tags}:
            ids = [i for i, e in enumerate(self.entries) if tag in e.tags]
            self._rows_by_tag[tag] = np.flatnonzero(np.isin(self._row_entry, ids))

    def rank(self, query: Vectors, limit: int, tags: Collection[str] = ()) -> list[Scored]:
        """Entries by their best-matching text, best first, at most `limit` of them."""
        candidates = self.index.vectors.ntotal
        params = None
        if tags:
            allowed = [self._rows_by_tag[t] for t in tags if t in self._rows_by_tag]
            if not allowed:
                return []
            selected = np.unique(np.concatenate(allowed)).astype(np.int64)
            selector = faiss.IDSelectorBatch(selected)
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]  # stubs lag
            candidates = len(selected)
        exhaustive = candidates <= EXHAUSTIVE_ROWS
        wanted = limit
        if self.index.head is not None:
            wanted = len(self.entries) if exhaustive else limit * HEAD_CANDIDATES
        k = candidates if exhaustive else max(SEARCH_ROWS, wanted * 8)
        while True:
            ranked = self._best_per_entry(query, min(k, candidates), wanted, params)
            if len(ranked) >= wanted or k >= candidates:
                return self._with_head(query, ranked)[:limit]
            k *= 4

    def nearest_texts(self, query: Vectors, k: int = SEARCH_ROWS) -> dict[str, float]:
        """The best cosine of each entry among the query's `k` nearest indexed texts."""
        scores, rows = self.index.vectors.search(query.reshape(1, -1),
                                                 min(k, self.index.vectors.ntotal))
        best: dict[str, float] = {}
        for score, row in zip(scores[0].tolist(), rows[0].tolist(), strict=True):
            if row >= 0:
                entry_id = self.entries[int(self._row_entry[row])].id
                best.setdefault(entry_id, float(score))
        return best

    def _with_head(self, query: Vectors, ranked: list[Scored]) -> list[Scored]:
        if self.index.head is None:
            return ranked
        weight = self.index.manifest.head_weight
        log_probs = self.index.head.log_probs(query.reshape(1, -1))[0]
        combined = [Scored(s.entry, s.score + weight * float(
            log_probs[self._entry_number[s.entry.id]]), s.matched_text) for s in ranked]
        return sorted(combined, key=lambda s: -s.score)

    def _best_per_entry(
        self, query: Vectors, k: int, limit: int, params: Any
    ) -> list[Scored]:
        scores, rows = self.index.vectors.search(query.reshape(1, -1), k, params=params)
        ranked: list[Scored] = []
        seen: set[int] = set()
        for score, row in zip(scores[0].tolist(), rows[0].tolist(), strict=True):
            if row < 0:
                continue
            entry_number = int(self._row_entry[row])
            if entry_number in seen:
                continue
            seen.add(entry_number)
            ranked.append(Scored(self.entries[entry_number], score,
                                 self.index.rows[row].text))
            if len(ranked) == limit:
                break
        return ranked
