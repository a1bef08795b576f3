"""Approximate search for large playbooks: HNSW, accepted only if it agrees with exact search."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faiss
import numpy as np

from app.embedding.embedder import Vectors
from app.errors import IndexInvalid

MIN_RECALL_AT_5 = 0.99
RECALL_SAMPLE = 500


def recall_at_5(index: Any, vectors: Vectors, sample: int = RECALL_SAMPLE) -> float:
    """Share of exact top-5 neighbours that the index also returns, for a sample of stored
    vectors asked as queries (real text embeddings, not random vectors)."""
    rng = np.random.default_rng(0)
    queries = vectors[rng.choice(len(vectors), min(sample, len(vectors)), replace=False)]
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 5)
    _, found = index.search(queries, 5)
    hits = sum(len(set(t) & set(f)) for t, f in zip(truth.tolist(), found.tolist(), strict=True))
    return hits / truth.size


@contextmanager
def build_threads() -> Iterator[None]:
    """All cores for building (a batch job); back to one search thread afterwards."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def build_hnsw(vectors: Vectors, neighbours: int = 32) -> Any:
    index = faiss.IndexHNSWFlat(vectors.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    with build_threads():
        index.add(vectors)
        for ef_search in (64, 128, 256):
            index.hnsw.efSearch = ef_search
            recall = recall_at_5(index, vectors)
            if recall >= MIN_RECALL_AT_5:
                return index
    raise IndexInvalid(f"HNSW recall@5 is {recall:.3f} even at efSearch {ef_search}, below "
                       f"{MIN_RECALL_AT_5}; refusing to serve an index that misses answers")
