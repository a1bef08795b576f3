"""Pausing the garbage collector while a process starts."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Start-up makes ~200,000 objects that live as long as the process (modules, classes,
    schemas, the English word list) and under 1,000 that are garbage: the collector's passes
    over them while they are made cost ~15 % of the start-up and free next to nothing. So it is
    paused meanwhile, and what start-up made is then frozen (later collections skip it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()
