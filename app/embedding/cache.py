"""A persistent cache of text embeddings, keyed by embedding space and text.

A rebuild after editing one entry encodes only that entry's new texts. The cache is only ever a
shortcut: a cached vector of the wrong size or not of unit length is encoded again, and a file
that is not a database is set aside (renamed, logged) and started afresh.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from app.embedding.embedder import Vectors

log = logging.getLogger("playbook.index")
UNIT_TOLERANCE = 1e-3


def _key(space: str, text: str) -> str:
    return hashlib.sha256(f"{space}\0{text}".encode()).hexdigest()


class EmbeddingCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path

    def _connect(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.DatabaseError as exc:
            aside = self._path.with_name(f"{self._path.name}.corrupt-{int(time.time())}")
            log.warning("the embedding cache %s is unusable (%s); set aside as %s and rebuilt",
                        self._path, exc, aside.name)
            self._path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self._path}{suffix}").unlink(missing_ok=True)
            return self._open()

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, timeout=30)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
            )
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def encode(
        self,
        space: str,
        dimension: int,
        texts: Sequence[str],
        encode: Callable[[Sequence[str]], Vectors],
    ) -> tuple[Vectors, int]:
        """Vectors for `texts`, encoding only those not cached. Returns (vectors, newly encoded)."""
        keys = [_key(space, t) for t in texts]
        found: dict[str, bytes] = {}
        connection = self._connect()
        try:
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(connection.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk
                ).fetchall())
            found = {k: v for k, v in found.items() if _usable(v, dimension)}
            missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True)
                                         if k not in found))
            if missing:
                fresh = encode(missing)
                rows = [(_key(space, t), v.astype(np.float32).tobytes())
                        for t, v in zip(missing, fresh, strict=True)]
                with connection:
                    connection.executemany(
                        "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows
                    )
                found.update(rows)
        finally:
            connection.close()
        out = np.zeros((len(texts), dimension), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = np.frombuffer(found[key], dtype=np.float32)
        return out, len(missing)


def _usable(blob: bytes, dimension: int) -> bool:
    """A cached vector of the right size and of unit length (every vector stored is normalised)."""
    if not isinstance(blob, bytes) or len(blob) != dimension * 4:
        return False
    norm = float(np.linalg.norm(np.frombuffer(blob, dtype=np.float32)))
    return abs(norm - 1.0) < UNIT_TOLERANCE
