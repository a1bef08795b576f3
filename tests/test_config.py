"""Settings that are derived rather than read: the inference thread count."""

from __future__ import annotations

import pytest

from app import config
from app.config import Settings


@pytest.mark.parametrize(("cores", "workers", "expected"), [(2, 1, 2), (2, 2, 1), (2, 4, 1),
                                                            (8, 2, 4), (1, 1, 1)])
def test_threads_default_to_each_workers_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int, expected: int
) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: cores)
    assert Settings(workers=workers).resolved_threads() == expected


def test_threads_set_explicitly_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: 2)
    assert Settings(threads=3, workers=2).resolved_threads() == 3


def test_workers_and_threads_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYBOOK_WORKERS", "2")
    monkeypatch.setenv("PLAYBOOK_THREADS", "1")
    settings = Settings()
    assert (settings.workers, settings.threads) == (2, 1)
