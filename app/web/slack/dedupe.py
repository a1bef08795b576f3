"""Slack retries an event it thinks was missed; each event id is answered once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


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
