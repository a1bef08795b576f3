"""Replicas on a shared database serve the same knowledge: each one's knowledge folder follows the
newest version in the history. A change published through any replica (or picked up from a
hand edit there) is recorded; every other replica sees a newer version within its watch
interval, writes it into its own playbook.yaml and out_of_scope.txt and swaps its index.

Local files that are not any recorded version are a hand edit the watcher has not recorded yet
(or cannot load): they are never overwritten."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from app.engine.engine import Engine
from app.errors import PlaybookError
from app.files import write_atomic
from app.knowledge.editing import knowledge_lock
from app.knowledge.playbook import OUT_OF_SCOPE_FILE, PLAYBOOK_FILE, read_text
from app.store.history import KnowledgeHistory, out_of_scope_text, snapshot_hash

log = logging.getLogger("playbook.replication")


def follow_newest(history: KnowledgeHistory, engine: Engine) -> int | None:
    """Bring this replica's playbook.yaml and out_of_scope.txt to the newest recorded version if
    they are behind; returns the version written, or None when they were current (or a hand
    edit)."""
    path = playbook_path(engine.settings.knowledge_dir)
    if path.suffix not in (".yaml", ".yml"):
        return None
    # Under the lock a publish on this host holds until its version is recorded: the newest
    # version and the files are read in one consistent state (read apart, a publish landing in
    # between made its own files look behind, and they were put back).
    with knowledge_lock(path.parent):
        newest = history.newest()
        if newest is None:
            return None
        local, local_out_of_scope = read_text(path), out_of_scope_text(path)
        if (snapshot_hash(local, local_out_of_scope) == newest.snapshot
                or not history.is_known(local, local_out_of_scope)):
            return None
        if newest.out_of_scope is not None:  # None: recorded before the file was kept
            write_atomic(path.parent / OUT_OF_SCOPE_FILE, newest.out_of_scope)
        write_atomic(path, newest.playbook)
    engine.load()
    log.info("knowledge brought to version %d, published through another replica",
             newest.number)
    return newest.number


class KnowledgeFollower:
    """Checks the shared history every `interval` seconds in a daemon thread."""

    def __init__(self, history: KnowledgeHistory, engine: Engine, interval: float) -> None:
        self.history = history
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="playbook-follow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                follow_newest(self.history, self.engine)
            except (PlaybookError, OSError) as exc:  # the database away for a moment
                log.warning("could not follow the shared knowledge history: %s", exc)
            except Exception:  # the thread must live on
                log.exception("following the shared knowledge history failed")
            if self._stop.wait(self.interval):
                return


def playbook_path(folder: Path) -> Path:
    return folder / PLAYBOOK_FILE if folder.is_dir() else folder
