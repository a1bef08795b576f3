"""Slack retries an event it thinks was missed; each event id is answered once."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa

from app.errors import FeedbackNotSaved
from app.store.feedback import FeedbackStore

log = logging.getLogger("playbook.slack")


class Deduper(Protocol):
    def first_time(self, event_id: str) -> bool: ...


class EventDeduper:
    """Event ids already taken, so Slack's retries (X-Slack-Retry-Num) are answered once.

    Bounded and in memory, so per process: with several workers a retry that lands on another
    worker is answered again, and a restart forgets everything."""

    def __init__(self, max_size: int = 10_000, ttl_seconds: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        now = self.clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - self.ttl_seconds:
                self._seen.popitem(last=False)
            if event_id in self._seen:
                return False
            self._seen[event_id] = now
            if len(self._seen) > self.max_size:
                self._seen.popitem(last=False)
            return True


class SharedDeduper:
    """The same, kept in the store's database, so every worker and replica sharing it answers
    an event once. If the database cannot be written, this process's own memory decides (an
    event answered twice beats one not answered)."""

    def __init__(self, store: FeedbackStore, kind: str, ttl_seconds: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.kind = kind
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.fallback = EventDeduper(ttl_seconds=ttl_seconds)
        self._next_sweep = 0.0

    def first_time(self, event_id: str) -> bool:
        now = self.clock()
        try:
            with self.store.connection(write=True) as connection:
                if now >= self._next_sweep:
                    connection.execute(sa.text("DELETE FROM slack_events WHERE seen_at < :cutoff"),
                                       {"cutoff": now - max(self.ttl_seconds, 3600.0)})
                    self._next_sweep = now + 60.0
                taken = connection.execute(sa.text(
                    "INSERT INTO slack_events (event_id, seen_at) VALUES (:key, :now)"
                    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"),
                    {"key": f"{self.kind}:{event_id}", "now": now}).first()
            return taken is not None
        except FeedbackNotSaved as exc:
            log.warning("Slack %s de-duplication fell back to this process's memory: %s",
                        self.kind, exc)
            return self.fallback.first_time(event_id)
