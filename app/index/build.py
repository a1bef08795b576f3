"""Build an index from the knowledge: embed every question and alternate (reusing vectors the
previous build or the on-disk cache holds), train the ranking models, write a new build."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from app.embedding.cache import EmbeddingCache
from app.embedding.embedder import Embedder, Vectors
from app.errors import IndexInvalid
from app.index.format import (
    CACHE_FILE,
    FORMAT_VERSION,
    LoadedIndex,
    Manifest,
    Row,
    embedding_space,
    new_build_id,
    row_entries,
    save_build,
)
from app.knowledge.glossary import Glossary
from app.knowledge.playbook import KnowledgeBase
from app.ranking.training import train
from app.versions import library_versions

# Exact search stays fast (under a millisecond) up to about this many vectors; above it the
# index is HNSW, checked for recall against exact search when built.
FLAT_MAX_VECTORS = 20_000
RECORDED_PACKAGES = ("faiss-cpu", "numpy", "sentence-transformers", "onnxruntime", "torch")


def index_rows(kb: KnowledgeBase, glossary: Glossary) -> list[Row]:
    """Every entry's question and alternates, with abbreviations spelled out, grouped by entry."""
    rows: list[Row] = []
    for entry in kb.entries:
        rows.append(Row(entry.id, "question", glossary.expand(entry.question)))
        rows.extend(Row(entry.id, "alternate", glossary.expand(a)) for a in entry.alternates)
    return rows


def _vector_index(vectors: Vectors) -> tuple[Any, str]:
    dimension = vectors.shape[1]
    if len(vectors) <= FLAT_MAX_VECTORS:
        index = faiss.IndexFlatIP(dimension)
        index.add(vectors)
        return index, "flat"
    from app.index.hnsw import build_hnsw

    return build_hnsw(vectors), "hnsw"


def _reusable_vectors(previous: LoadedIndex | None, space: str, texts: list[str]) -> dict[str, Any]:
    """Vectors of texts the index in memory already holds: an edit re-reads nothing else."""
    if previous is None or previous.manifest.space != space:
        return {}
    row_of = {row.text: i for i, row in enumerate(previous.rows)}
    found = list(dict.fromkeys(t for t in texts if t in row_of))
    if not found:
        return {}
    vectors = previous.vectors.reconstruct_batch(np.array([row_of[t] for t in found]))
    return dict(zip(found, vectors, strict=True))


def _embedder_with_cache(
    embedder: Embedder, index_dir: Path, previous: LoadedIndex | None, show_progress: bool,
) -> Any:
    """texts -> vectors, from the index in memory first, then the on-disk cache, then the model."""
    space = embedding_space(embedder)
    cache = EmbeddingCache(index_dir / CACHE_FILE)

    def encode(texts: Any) -> Vectors:
        if show_progress and len(texts) > 200:
            from tqdm import tqdm

            chunks = [texts[i : i + 256] for i in range(0, len(texts), 256)]
            parts = [embedder.encode(c) for c in tqdm(chunks, desc="embedding", unit="batch")]
            return np.vstack(parts)
        return embedder.encode(texts)

    def embed(texts: list[str]) -> Vectors:
        known = _reusable_vectors(previous, space, texts)
        missing = [t for t in texts if t not in known]
        fresh, _ = cache.encode(space, embedder.dimension, missing, encode)
        known.update(zip(missing, fresh, strict=True))
        out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = known[text]
        return out

    return embed


def build_index(
    kb: KnowledgeBase,
    embedder: Embedder,
    index_dir: Path,
    show_progress: bool = False,
    previous: LoadedIndex | None = None,
    head_weight: float = 0.0,
) -> LoadedIndex:
    """Embed the knowledge, fit the intent head when `head_weight` > 0, calibrate, write a new
    build and make it current."""
    if not kb.entries:
        raise IndexInvalid("the knowledge base has no entries to index")
    glossary = Glossary(kb.glossary)
    rows = index_rows(kb, glossary)
    embed = _embedder_with_cache(embedder, index_dir, previous, show_progress)
    vectors = embed([r.text for r in rows])
    negatives = embed([glossary.expand(t) for t in kb.out_of_scope])
    row_entry = row_entries(rows, [e.id for e in kb.entries])
    is_alternate = np.array([r.kind == "alternate" for r in rows], dtype=bool)
    head, head_status, calibration = train(vectors, row_entry, is_alternate, len(kb.entries),
                                           negatives, head_weight)
    vector_index, index_type = _vector_index(vectors)
    manifest = Manifest(
        format=FORMAT_VERSION,
        build_id=new_build_id(),
        model=embedder.identity,
        encoder=embedder.encoder,
        space=embedding_space(embedder),
        dimension=embedder.dimension,
        entry_count=len(kb.entries),
        vector_count=len(rows),
        knowledge_hash=kb.content_hash(),
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        index_type=index_type,
        calibration=calibration,
        versions=library_versions(RECORDED_PACKAGES),
        files={},
        head_weight=head_weight,
        head=head_status,
    )
    return save_build(index_dir, manifest, rows, vector_index, head, negatives)
