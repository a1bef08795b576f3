"""Ranking: nearest indexed texts -> entries (best text per entry, plus the intent head's
weighted log-probability when the index has one)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

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
    cosine: float | None = None  # the best cosine alone, when the score is not it

    @property
    def best_cosine(self) -> float:
        return self.score if self.cosine is None else self.cosine


class Ranker:
    def __init__(self, index: LoadedIndex, entries: Sequence[Entry]) -> None:
        self.index = index
        self.entries = tuple(entries)
        self._row_entry = row_entries(index.rows, [e.id for e in self.entries])
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
            scores, rows = self._best_per_entry(query, min(k, candidates), wanted, params)
            if len(rows) >= wanted or k >= candidates:
                return self._scored(query, scores, rows, limit)
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

    def _scored(self, query: Vectors, scores: npt.NDArray[np.float32],
                rows: npt.NDArray[np.int64], limit: int) -> list[Scored]:
        """The best `limit` of these entries (their best rows, best cosine first), reordered by
        the intent head when the index has one: cosine + weight * log p(entry | query), ties in
        cosine order. Only the entries returned become objects (the Python loop over every
        entry cost more than the search itself)."""
        if self.index.head is None:
            ranking: npt.NDArray[np.float64] | npt.NDArray[np.float32] = scores
            order = np.arange(min(limit, len(rows)))
        else:
            weight = self.index.manifest.head_weight
            log_probs = self.index.head.log_probs(query.reshape(1, -1))[0]
            # float64 throughout, as the scalar sum this replaces: the same numbers, the same
            # stable order.
            ranking = scores.astype(np.float64) + weight * log_probs[self._row_entry[rows]]
            order = np.argsort(-ranking, kind="stable")[:limit]
        best = rows[order]
        entries, texts = self.entries, self.index.rows
        return [Scored(entries[entry], score, texts[row].text, cosine)
                for score, cosine, row, entry in zip(
                    ranking[order].tolist(), scores[order].tolist(), best.tolist(),
                    self._row_entry[best].tolist(), strict=True)]

    def _best_per_entry(
        self, query: Vectors, k: int, limit: int, params: Any
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The cosine and row of each entry's best row among the query's `k` nearest, best
        first, at most `limit` of them."""
        found, hits = self.index.vectors.search(query.reshape(1, -1), k, params=params)
        scores: npt.NDArray[np.float32] = found[0]
        rows: npt.NDArray[np.int64] = hits[0]
        kept = rows >= 0  # faiss pads with -1 when it finds fewer than k rows
        if not kept.all():
            scores, rows = scores[kept], rows[kept]
        # Each entry's first (best) row, in rank order.
        _, first = np.unique(self._row_entry[rows], return_index=True)
        first.sort()
        first = first[:limit]
        return scores[first], rows[first]
