"""The knowledge's content hash, remembered for its files' exact stamps.

Whether the built index still matches the knowledge is decided by the knowledge's content hash,
and hashing 100,000 entries takes about 2 s of a start, where a stat of its few files takes
microseconds. So the hash is remembered in the index folder beside the stamps (path, size,
modification and change time in ns) its files had when they were read. A file written since
changes its stamps, and the hash is made again: the change time cannot be set back by a program,
so even a file restored with its old modification time counts as changed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from app.files import write_atomic

CACHE_FILE = "knowledge-hash.json"

log = logging.getLogger("playbook.engine")

Stamps = list[list[str | int]]


def file_stamps(paths: list[Path]) -> Stamps:
    """The regular files among `paths`, each as [absolute path, size, mtime_ns, ctime_ns]."""
    stamps: Stamps = []
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file():
            stamps.append([str(path.absolute()), info.st_size, info.st_mtime_ns, info.st_ctime_ns])
    return stamps


def remembered_hash(index_dir: Path, stamps: Stamps) -> str | None:
    """The hash remembered for exactly these stamps, if any."""
    try:
        saved = json.loads((index_dir / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("stamps") != stamps:
        return None
    found = saved.get("knowledge_hash")
    return found if isinstance(found, str) else None


def remember_hash(index_dir: Path, stamps: Stamps, knowledge_hash: str) -> None:
    """Remember the hash for these stamps; a folder that cannot be written only costs the next
    start the hashing."""
    try:
        write_atomic(index_dir / CACHE_FILE,
                     json.dumps({"stamps": stamps, "knowledge_hash": knowledge_hash}))
    except OSError as exc:
        log.debug("knowledge hash not remembered: %s", exc)
