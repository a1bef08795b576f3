"""Files written whole or not at all, their checksums, and JSON Lines read fast."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import orjson

NEW_FILE_MODE = 0o644


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file, fsync and a rename, so readers never see half a file. A
    file that exists keeps its permissions; a new one gets 0644 (mkstemp's would be 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def json_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text: split at newlines only. str.splitlines() also splits at
    U+2028, U+0085 and other characters JSON leaves unescaped inside strings (a pasted answer
    may hold one), which would cut a record in two."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def json_line(line: str) -> Any:
    """One JSON value, parsed by orjson (100,000 entries: 0.59 -> 0.22 s). What orjson refuses
    is read again by the standard parser: its error messages stay word for word, and what it
    accepts and orjson does not (1e400, a lone surrogate) still reads."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)
