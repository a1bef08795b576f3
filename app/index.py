"""Build, save and load the self-describing vector index.

Layout of an index folder:
    CURRENT                 name of the build in use (replaced atomically)
    builds/<build-id>/      vectors.faiss, rows.jsonl, manifest.json (+ head.npz when the
                            intent head is on and fitted)
    embedding-cache.sqlite3 text -> vector cache shared by builds

A build is written to its own new folder and only then made current, so a crash or a kill
mid-build leaves the previous index intact and served. The manifest records the model,
dimension, counts, knowledge hash, library versions, calibration and a sha256 of each file;
loading refuses any mismatch instead of guessing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from app.calibration import MAX_HELD_OUT, Calibration, fit_calibration, held_out_features
from app.embedder import Embedder, Vectors
from app.embedding_cache import EmbeddingCache
from app.errors import IndexInvalid
from app.glossary import Glossary
from app.head import IntentHead, fit_head, head_skipped
from app.knowledge import KnowledgeBase, write_atomic

FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
BUILDS_DIR = "builds"
CACHE_FILE = "embedding-cache.sqlite3"
FILES = ("vectors.faiss", "rows.jsonl")
HEAD_FILE = "head.npz"
# Calibration scores each held-out alternate with a head fitted without it (cross-fitting):
# a head that had seen the query would make the calibration over-confident.
CROSS_FIT_FOLDS = 5
# Exact search stays fast (under a millisecond) up to about this many vectors; above it the
# index is HNSW, checked for recall against exact search when built.
FLAT_MAX_VECTORS = 20_000
KEEP_BUILDS = 2
# Queries are searched one at a time. A second OpenMP thread only adds synchronisation: at 11k
# vectors a k=256 flat search took 58 ms instead of 1.9 ms when the other core was busy.
# Builds raise it while they run (app.hnsw.build_threads).
SEARCH_THREADS = 1
faiss.omp_set_num_threads(SEARCH_THREADS)


@dataclass(frozen=True)
class Row:
    """One indexed text: its entry, and whether it is the question or an alternate."""

    entry_id: str
    kind: str
    text: str


@dataclass(frozen=True)
class Manifest:
    format: int
    build_id: str
    model: str
    encoder: str
    space: str
    dimension: int
    entry_count: int
    vector_count: int
    knowledge_hash: str
    built_at: str
    index_type: str
    calibration: Calibration
    versions: dict[str, str]
    files: dict[str, str]
    head_weight: float = 0.0  # ranking = best cosine + head_weight * log p(entry | query)
    head: str = "off"  # "fitted", "off", or "skipped: <why>"

    def to_json(self) -> str:
        data = {**self.__dict__, "calibration": self.calibration.to_dict()}
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["calibration"] = Calibration(**data["calibration"])
        return cls(**data)


@dataclass(frozen=True)
class LoadedIndex:
    manifest: Manifest
    rows: tuple[Row, ...]
    vectors: Any  # a faiss.Index; inner product on unit vectors = cosine similarity
    path: Path
    head: IntentHead | None = None


def embedding_space(embedder: Embedder) -> str:
    """Vectors are interchangeable only within one space: same model, equivalent runtime.
    torch and ONNX fp32 give the same vectors (cosine >= 0.9999); int8 does not."""
    if embedder.encoder in ("torch", "onnx-fp32"):
        return embedder.identity
    return f"{embedder.identity}#{embedder.encoder}"


def index_rows(kb: KnowledgeBase, glossary: Glossary) -> list[Row]:
    """Every entry's question and alternates, with abbreviations spelled out, grouped by entry."""
    rows: list[Row] = []
    for entry in kb.entries:
        rows.append(Row(entry.id, "question", glossary.expand(entry.question)))
        rows.extend(Row(entry.id, "alternate", glossary.expand(a)) for a in entry.alternates)
    return rows


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("faiss-cpu", "numpy", "sentence-transformers", "onnxruntime", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _vector_index(vectors: Vectors) -> tuple[Any, str]:
    dimension = vectors.shape[1]
    if len(vectors) <= FLAT_MAX_VECTORS:
        index = faiss.IndexFlatIP(dimension)
        index.add(vectors)
        return index, "flat"
    from app.hnsw import build_hnsw

    return build_hnsw(vectors), "hnsw"


def _fit_head(
    vectors: Vectors, rows: list[Row], kb: KnowledgeBase, head_weight: float
) -> tuple[IntentHead | None, str]:
    if head_weight <= 0:
        return None, "off"
    alternates = sum(1 for r in rows if r.kind == "alternate")
    why = head_skipped(len(kb.entries), len(rows), alternates, vectors.shape[1])
    if why is not None:
        return None, f"skipped: {why}"
    labels = row_entries(rows, [e.id for e in kb.entries])
    return fit_head(vectors, labels, len(kb.entries)), "fitted"


def cross_fitted_log_probs(
    vectors: Vectors, labels: npt.NDArray[np.int64], held_out: npt.NDArray[np.int64],
    entries: int,
) -> npt.NDArray[np.float64]:
    """log p(entry | held-out row) from heads that never saw that row: the held-out rows are
    dealt round-robin into folds, and each fold is scored by a head fitted on every other row
    (each entry keeps its question, which is never held out)."""
    out = np.zeros((len(held_out), entries))
    fold_of = np.arange(len(held_out)) % CROSS_FIT_FOLDS
    for fold in range(min(CROSS_FIT_FOLDS, len(held_out))):
        in_fold = fold_of == fold
        training = np.ones(len(vectors), dtype=bool)
        training[held_out[in_fold]] = False
        head = fit_head(vectors[training], labels[training], entries)
        out[in_fold] = head.log_probs(vectors[held_out[in_fold]])
    return out


def _calibrate(
    vectors: Vectors, rows: list[Row], kb: KnowledgeBase, negatives: Vectors,
    head: IntentHead | None = None, head_weight: float = 0.0,
) -> Calibration:
    row_entry = row_entries(rows, [e.id for e in kb.entries])
    held_out = np.array([i for i, r in enumerate(rows) if r.kind == "alternate"], dtype=np.int64)
    if len(held_out) > MAX_HELD_OUT:
        held_out = np.sort(np.random.default_rng(0).choice(held_out, MAX_HELD_OUT, replace=False))
    held_out_bonus = negative_bonus = None
    if head is not None:
        held_out_bonus = head_weight * cross_fitted_log_probs(
            vectors, row_entry, held_out, len(kb.entries))
        # No out-of-scope line trained the head, so the served head scores them honestly.
        negative_bonus = head_weight * head.log_probs(negatives)
    scores, margins, correct = held_out_features(
        vectors, row_entry, held_out, negatives, held_out_bonus, negative_bonus)
    return fit_calibration(scores, margins, correct)


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


def build_index(
    kb: KnowledgeBase,
    embedder: Embedder,
    index_dir: Path,
    show_progress: bool = False,
    previous: LoadedIndex | None = None,
    head_weight: float = 0.0,
) -> LoadedIndex:
    """Embed the knowledge (reusing `previous`'s vectors, then the on-disk cache), fit the
    intent head when `head_weight` > 0, calibrate, write a new build, make it current."""
    if not kb.entries:
        raise IndexInvalid("the knowledge base has no entries to index")
    glossary = Glossary(kb.glossary)
    rows = index_rows(kb, glossary)
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

    vectors = embed([r.text for r in rows])
    negatives = embed([glossary.expand(t) for t in kb.out_of_scope])
    head, head_status = _fit_head(vectors, rows, kb, head_weight)
    calibration = _calibrate(vectors, rows, kb, negatives, head, head_weight)
    if head is not None and calibration.positives + calibration.negatives == 0:
        # The fallback calibration knows cosines, not the head's log-probability gaps, which
        # run large on questions unlike any entry's: an uncalibrated head would be over-confident.
        head, head_status = None, "skipped: too few held-out examples to calibrate it"
        calibration = _calibrate(vectors, rows, kb, negatives)
    vector_index, index_type = _vector_index(vectors)

    build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    builds = index_dir / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=builds))
    try:
        faiss.write_index(vector_index, str(staging / "vectors.faiss"))
        with (staging / "rows.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row.__dict__, ensure_ascii=False) + "\n")
        files: tuple[str, ...] = FILES
        if head is not None:
            head.save(staging / HEAD_FILE)
            files = (*FILES, HEAD_FILE)
        manifest = Manifest(
            format=FORMAT_VERSION,
            build_id=build_id,
            model=embedder.identity,
            encoder=embedder.encoder,
            space=space,
            dimension=embedder.dimension,
            entry_count=len(kb.entries),
            vector_count=len(rows),
            knowledge_hash=kb.content_hash(),
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            index_type=index_type,
            calibration=calibration,
            versions=_versions(),
            files={name: _sha256(staging / name) for name in files},
            head_weight=head_weight,
            head=head_status,
        )
        (staging / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        for name in (*files, "manifest.json"):
            with (staging / name).open("rb") as written:
                os.fsync(written.fileno())
        os.replace(staging, builds / build_id)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_atomic(index_dir / CURRENT_FILE, build_id + "\n")
    _remove_old_builds(builds, keep=build_id)
    return LoadedIndex(manifest, tuple(rows), vector_index, builds / build_id, head)


def _remove_old_builds(builds: Path, keep: str) -> None:
    """Keep the current build and the one before it; drop staging folders of builds that were
    killed (older than an hour, so a build still running in another process is left alone)."""
    done = sorted((p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)
    for old in [p for p in done if p.name != keep][: -(KEEP_BUILDS - 1) or None]:
        shutil.rmtree(old, ignore_errors=True)
    for staging in builds.glob(".staging-*"):
        if time.time() - staging.stat().st_mtime > 3600:
            shutil.rmtree(staging, ignore_errors=True)


def load_index(index_dir: Path) -> LoadedIndex:
    """Load the current build, verifying every file against the manifest."""
    try:
        build_id = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise IndexInvalid(f"no index built yet in {index_dir}") from exc
    path = index_dir / BUILDS_DIR / build_id
    try:
        manifest = Manifest.from_json((path / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexInvalid(f"index build {build_id} has no manifest") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise IndexInvalid(f"index build {build_id} has an unreadable manifest: {exc}") from exc
    if manifest.format != FORMAT_VERSION:
        raise IndexInvalid(f"index format {manifest.format}, this version reads {FORMAT_VERSION}")
    has_head = manifest.head == "fitted"
    for name in (*FILES, HEAD_FILE) if has_head else FILES:
        file = path / name
        if not file.exists() or _sha256(file) != manifest.files.get(name):
            raise IndexInvalid(f"index file {file} is missing or corrupt (checksum mismatch)")
    rows = tuple(Row(**json.loads(line)) for line in
                 (path / "rows.jsonl").read_text(encoding="utf-8").splitlines())
    vectors = faiss.read_index(str(path / "vectors.faiss"))
    if vectors.ntotal != manifest.vector_count or len(rows) != manifest.vector_count:
        raise IndexInvalid(f"index build {build_id} holds {vectors.ntotal} vectors, "
                           f"manifest says {manifest.vector_count}")
    head = IntentHead.load(path / HEAD_FILE) if has_head else None
    if head is not None and head.weights.shape != (manifest.dimension, manifest.entry_count):
        raise IndexInvalid(f"index build {build_id} has an intent head of shape "
                           f"{head.weights.shape}, manifest says "
                           f"{(manifest.dimension, manifest.entry_count)}")
    return LoadedIndex(manifest, rows, vectors, path, head)


def staleness(
    index: LoadedIndex, kb: KnowledgeBase, space: str, head_weight: float = 0.0
) -> str | None:
    """Why this index must not serve this knowledge with this embedder and intent-head weight,
    or None if it may."""
    if index.manifest.knowledge_hash != kb.content_hash():
        return "the knowledge changed since the index was built"
    if index.manifest.space != space:
        return f"the index was built with {index.manifest.space}, the engine uses {space}"
    if index.manifest.head_weight != head_weight:
        return (f"the index was calibrated with head weight {index.manifest.head_weight}, "
                f"the engine uses {head_weight}")
    return None


def row_entries(rows: tuple[Row, ...] | list[Row], entry_ids: list[str]) -> npt.NDArray[np.int64]:
    number = {entry_id: i for i, entry_id in enumerate(entry_ids)}
    return np.array([number[r.entry_id] for r in rows], dtype=np.int64)
