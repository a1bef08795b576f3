"""The self-describing index on disk: its format, writing a build, and verified loading.

Layout of an index folder:
    CURRENT                 name of the build in use (replaced atomically)
    builds/<build-id>/      vectors.faiss, rows.jsonl, manifest.json (+ head.npz when the
                            intent head is on and fitted, + out_of_scope.npy when the
                            knowledge has out-of-scope questions: their vectors, in order)
    embedding-cache.sqlite3 text -> vector cache shared by builds

A build is written to its own new folder and only then made current, so a crash or a kill
mid-build leaves the previous index intact and served. The manifest records the model,
dimension, counts, knowledge hash, library versions, calibration and a sha256 of each file;
loading refuses any mismatch instead of guessing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from pydantic import TypeAdapter, ValidationError

from app.embedding.embedder import Embedder
from app.errors import IndexInvalid
from app.files import json_line, json_lines, sha256_of, write_atomic
from app.knowledge.playbook import KnowledgeBase
from app.ranking.calibration import Calibration
from app.ranking.head import IntentHead

FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
BUILDS_DIR = "builds"
CACHE_FILE = "embedding-cache.sqlite3"
FILES = ("vectors.faiss", "rows.jsonl")
HEAD_FILE = "head.npz"
OUT_OF_SCOPE_FILE = "out_of_scope.npy"
KEEP_BUILDS = 2
# Queries are searched one at a time. A second OpenMP thread only adds synchronisation: at 11k
# vectors a k=256 flat search took 58 ms instead of 1.9 ms when the other core was busy.
# Builds raise it while they run (app.index.hnsw.build_threads).
SEARCH_THREADS = 1


def limit_search_threads() -> None:
    """One OpenMP thread for searches (the engine calls this when it starts)."""
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
        """The manifest, with a checksum of its own content: a hand edit (a calibration number,
        the threshold) is caught on load like a changed vector file."""
        data = {**self.__dict__, "calibration": self.calibration.to_dict()}
        return json.dumps({**data, "checksum": content_checksum(data)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse and check: the checksum, every field's type (strictly: "0.5" is no number),
        and that the numbers are usable. Raises ValueError saying what is wrong."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        if data.pop("checksum", None) != content_checksum(data):
            raise ValueError("its content does not match its checksum (edited by hand?)")
        try:
            manifest = _MANIFEST_SCHEMA.validate_json(json.dumps(data), strict=True)
        except ValidationError as exc:
            raise ValueError(str(exc).splitlines()[0] + ": " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
        calibration = manifest.calibration
        numbers = (calibration.intercept, calibration.weight_score, calibration.weight_margin,
                   calibration.ambiguity_margin, manifest.head_weight)
        if not all(math.isfinite(n) for n in numbers) or not 0 < calibration.threshold < 1:
            raise ValueError("its calibration holds numbers it cannot use")
        return manifest


_MANIFEST_SCHEMA: TypeAdapter[Manifest] = TypeAdapter(Manifest)


def content_checksum(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoadedIndex:
    manifest: Manifest
    rows: tuple[Row, ...]
    vectors: Any  # a faiss.Index; inner product on unit vectors = cosine similarity
    path: Path
    head: IntentHead | None = None
    out_of_scope: npt.NDArray[np.float32] | None = None  # a unit vector per out-of-scope line


def embedding_space(embedder: Embedder) -> str:
    """Vectors are interchangeable only within one space: same model, equivalent runtime.
    torch and ONNX fp32 give the same vectors (cosine >= 0.9999); int8 does not."""
    if embedder.encoder in ("torch", "onnx-fp32"):
        return embedder.identity
    return f"{embedder.identity}#{embedder.encoder}"


def new_build_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def save_build(index_dir: Path, manifest: Manifest, rows: list[Row], vectors: Any,
               head: IntentHead | None,
               out_of_scope: npt.NDArray[np.float32] | None = None) -> LoadedIndex:
    """Write a build to a staging folder, checksum and fsync it, move it into place, then make it
    current. `manifest.files` is filled in here."""
    builds = index_dir / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=builds))
    try:
        faiss.write_index(vectors, str(staging / "vectors.faiss"))
        with (staging / "rows.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row.__dict__, ensure_ascii=False) + "\n")
        files: tuple[str, ...] = FILES
        if head is not None:
            head.save(staging / HEAD_FILE)
            files = (*files, HEAD_FILE)
        if out_of_scope is not None and len(out_of_scope):
            np.save(staging / OUT_OF_SCOPE_FILE, out_of_scope, allow_pickle=False)
            files = (*files, OUT_OF_SCOPE_FILE)
        else:
            out_of_scope = None
        manifest = Manifest(**{**manifest.__dict__,
                               "files": {name: sha256_of(staging / name) for name in files}})
        (staging / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        for name in (*files, "manifest.json"):
            with (staging / name).open("rb") as written:
                os.fsync(written.fileno())
        os.replace(staging, builds / manifest.build_id)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_atomic(index_dir / CURRENT_FILE, manifest.build_id + "\n")
    _remove_old_builds(builds, keep=manifest.build_id)
    return LoadedIndex(manifest, tuple(rows), vectors, builds / manifest.build_id, head,
                       out_of_scope)


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
    except (UnicodeDecodeError, OSError) as exc:
        raise IndexInvalid(f"{index_dir / CURRENT_FILE} is unreadable: {exc}") from exc
    if not build_id or "/" in build_id or build_id.startswith("."):
        raise IndexInvalid(f"{index_dir / CURRENT_FILE} names no build: {build_id[:80]!r}")
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
    has_out_of_scope = OUT_OF_SCOPE_FILE in manifest.files
    for name in (*FILES, *([HEAD_FILE] if has_head else []),
                 *([OUT_OF_SCOPE_FILE] if has_out_of_scope else [])):
        file = path / name
        if not file.exists() or sha256_of(file) != manifest.files.get(name):
            raise IndexInvalid(f"index file {file} is missing or corrupt (checksum mismatch)")
    rows = tuple(Row(**json_line(line)) for line in
                 json_lines((path / "rows.jsonl").read_text(encoding="utf-8")) if line)
    vectors = faiss.read_index(str(path / "vectors.faiss"))
    if vectors.ntotal != manifest.vector_count or len(rows) != manifest.vector_count:
        raise IndexInvalid(f"index build {build_id} holds {vectors.ntotal} vectors, "
                           f"manifest says {manifest.vector_count}")
    head = IntentHead.load(path / HEAD_FILE) if has_head else None
    if head is not None and head.weights.shape != (manifest.dimension, manifest.entry_count):
        raise IndexInvalid(f"index build {build_id} has an intent head of shape "
                           f"{head.weights.shape}, manifest says "
                           f"{(manifest.dimension, manifest.entry_count)}")
    out_of_scope = _out_of_scope(path, manifest) if has_out_of_scope else None
    return LoadedIndex(manifest, rows, vectors, path, head, out_of_scope)


def _out_of_scope(path: Path, manifest: Manifest) -> npt.NDArray[np.float32]:
    vectors: npt.NDArray[np.float32] = np.load(path / OUT_OF_SCOPE_FILE, allow_pickle=False)
    if vectors.ndim != 2 or vectors.shape[1] != manifest.dimension:
        raise IndexInvalid(f"index build {manifest.build_id} has out-of-scope vectors of shape "
                           f"{vectors.shape}, manifest says dimension {manifest.dimension}")
    return vectors


def staleness(
    index: LoadedIndex, kb: KnowledgeBase, space: str, head_weight: float = 0.0,
    known_hash: str | None = None,
) -> str | None:
    """Why this index must not serve this knowledge with this embedder and intent-head weight,
    or None if it may. `known_hash`: the knowledge's hash when already known (not made again)."""
    if index.manifest.knowledge_hash != (known_hash or kb.content_hash()):
        return "the knowledge changed since the index was built"
    if index.manifest.space != space:
        return f"the index was built with {index.manifest.space}, the engine uses {space}"
    if kb.out_of_scope and index.out_of_scope is None:
        return "the index holds no vectors of the out-of-scope questions (an earlier version's)"
    if index.manifest.head_weight != head_weight:
        return (f"the index was calibrated with head weight {index.manifest.head_weight}, "
                f"the engine uses {head_weight}")
    return None


def row_entries(rows: tuple[Row, ...] | list[Row], entry_ids: list[str]) -> npt.NDArray[np.int64]:
    number = {entry_id: i for i, entry_id in enumerate(entry_ids)}
    return np.array([number[r.entry_id] for r in rows], dtype=np.int64)
