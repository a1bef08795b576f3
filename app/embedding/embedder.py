"""Embedders turn texts into L2-normalised float32 vectors, so inner product is cosine similarity.

The torch path (sentence-transformers) builds indexes and is the fallback; a faster ONNX Runtime
path for queries lives in `app.embedding.onnx`. Both are local only: nothing reaches a model hub.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from app.errors import ModelError
from app.files import write_atomic

Vectors = npt.NDArray[np.float32]

log = logging.getLogger(__name__)


class Embedder(Protocol):
    @property
    def identity(self) -> str:
        """Which model produced the vectors (vectors from different identities never mix)."""

    @property
    def encoder(self) -> str:
        """Which runtime encoded them, e.g. "torch" or "onnx-fp32" (recorded in the manifest)."""

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Shape (len(texts), dimension), each row of unit length."""


Stamp = tuple[str, int, int, int]
_identities: dict[tuple[Path, tuple[Stamp, ...]], str] = {}  # this process's, by file stamps


def model_identity(model_path: Path, remembered: Path | None = None) -> str:
    """Folder name plus a digest of the model's config and weights: two different models,
    even in same-named folders, never share an identity. Hashing ~90 MB of weights takes
    ~0.12 s, so it is done once per process while the files are unchanged and, given a
    `remembered` JSON file, once until they change: a restart reads the identity back from it
    when every file's path, size, mtime and ctime are as they were when it was hashed."""
    if not (model_path / "config.json").exists():
        raise ModelError(f"no local model at {model_path} (expected a sentence-transformers "
                         "folder with config.json); set PLAYBOOK_MODEL_PATH")
    files = [model_path / name for name in ("config.json", "modules.json", "tokenizer.json")]
    files += sorted(model_path.glob("*.safetensors")) + sorted(model_path.glob("*.bin"))
    key = (model_path, tuple(_stamp(f) for f in files if f.exists()))
    recalled = _recall(remembered, *key) if remembered is not None else None
    if key not in _identities:
        _identities[key] = recalled or _digest(*key)
    if remembered is not None and recalled != _identities[key]:
        _remember(remembered, *key, _identities[key])
    return _identities[key]


def _stamp(file: Path) -> Stamp:
    """Path, size, mtime and ctime (which the system sets on every write or replacement, so a
    copy that kept the old mtime still counts as a change)."""
    status = file.stat()
    return str(file), status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _digest(model_path: Path, stamps: tuple[Stamp, ...]) -> str:
    digest = hashlib.sha256()
    for name, *_ in stamps:
        with open(name, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return f"{model_path.parent.name}/{model_path.name}@{digest.hexdigest()[:16]}"


def _remembered(remembered: Path) -> dict[str, Any]:
    """{model folder: {"stamps": [[path, size, mtime_ns, ctime_ns], ...], "identity": ...}}"""
    try:
        known = json.loads(remembered.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _recall(remembered: Path, model_path: Path, stamps: tuple[Stamp, ...]) -> str | None:
    entry = _remembered(remembered).get(str(model_path))
    if not isinstance(entry, dict) or entry.get("stamps") != [list(s) for s in stamps]:
        return None
    identity = entry.get("identity")
    return identity if isinstance(identity, str) else None


def _remember(remembered: Path, model_path: Path, stamps: tuple[Stamp, ...],
              identity: str) -> None:
    known = _remembered(remembered)
    known[str(model_path)] = {"stamps": stamps, "identity": identity}
    try:
        write_atomic(remembered, json.dumps(known, indent=2, sort_keys=True) + "\n")
    except OSError as exc:  # a read-only cache: the weights are hashed again next time
        log.info("cannot remember the model's identity in %s: %s", remembered, exc)


def normalize(vectors: npt.NDArray[Any]) -> Vectors:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def offline_environment() -> None:
    """Make any Hugging Face code that might run stay off the network (the process entry points,
    `playbook` and the served app, call this once; loading passes local_files_only as well)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # onnxruntime's usage events (see onnx.py)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any local sentence-transformers folder) on torch, on the CPU."""

    encoder = "torch"

    def __init__(self, model_path: Path, threads: int = 1, batch_size: int = 64) -> None:
        self.identity = model_identity(model_path)
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(threads)
            self._model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the model at {model_path}: {exc}") from exc
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ModelError(f"the model at {model_path} does not declare an embedding size")
        self.dimension = int(dimension)
        self._batch_size = batch_size

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return normalize(vectors)
