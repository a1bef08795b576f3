"""Shared fixtures: a deterministic fake embedder, a tiny playbook, and the real seed engine."""

from __future__ import annotations

import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

from app.config import PROJECT_ROOT, Settings
from app.embedder import Vectors, normalize
from app.engine import Engine

SEED_KNOWLEDGE = PROJECT_ROOT / "knowledge"
SHARED = PROJECT_ROOT.parent / "shared"


class FakeEmbedder:
    """Bag of words hashed into 64 buckets: texts sharing words are similar, others are not.
    Deterministic and instant, so tests can assert exact rankings."""

    identity = "fake-bag-of-words@1"
    encoder = "fake"
    dimension = 64

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in "".join(c if c.isalnum() else " " for c in text.casefold()).split():
                out[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
            if not out[row].any():
                out[row, 0] = 1.0
        return normalize(out)


TINY_PLAYBOOK = """\
entries:
- id: change-address
  question: Customer wants to change the shipping address
  answer: '#SD - Too Late - Can''t Change Shipping Address (RP)'
  macro: '#SD - Too Late - Can''t Change Shipping Address (RP)'
  alternates:
  - cx wants a different delivery address
  - update address on order
  tags: [address]
  source: {file: tiny.txt, line: 1}
- id: cancel-order
  question: Customer wants to cancel an order
  answer: 'send #SD - Too Late to Cancel'
  macro: '#SD - Too Late to Cancel'
  alternates:
  - cancel my order please
  - stop the order before it ships
  tags: [cancellation]
  source: {file: tiny.txt, line: 3}
- id: shipping-sla
  question: What is our SLA for shipping most orders
  answer: 3-5 business days
  macro: null
  alternates:
  - how long does shipping take
  - delivery time for most orders
  tags: [shipping]
  source: {file: tiny.txt, line: 5}
needs_review:
- text: A stray line
  source: {file: tiny.txt, line: 7}
  reason: no partner line
"""

TINY_OUT_OF_SCOPE = """\
# questions the tiny playbook does not answer
what is the weather tomorrow
tell me a joke
reset my laptop password
"""


@pytest.fixture
def tiny_knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "playbook.yaml").write_text(TINY_PLAYBOOK, encoding="utf-8")
    (folder / "glossary.yaml").write_text("cx: customer\nOOS: out of stock\n", encoding="utf-8")
    (folder / "out_of_scope.txt").write_text(TINY_OUT_OF_SCOPE, encoding="utf-8")
    return folder


@pytest.fixture
def tiny_settings(tmp_path: Path, tiny_knowledge: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        knowledge_dir=tiny_knowledge,
        index_dir=tmp_path / "index",
        db_path=tmp_path / "feedback.sqlite3",
    )


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def tiny_engine(tiny_settings: Settings, fake_embedder: FakeEmbedder) -> Engine:
    engine = Engine(tiny_settings, fake_embedder)
    engine.load()
    return engine


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export of the real model per test session, shared by every test that needs it."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def seed_engine(tmp_path_factory: pytest.TempPathFactory, onnx_cache: Path) -> Iterator[Engine]:
    """The real model on the real seed playbook (built once per test session)."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        knowledge_dir=SEED_KNOWLEDGE,
        index_dir=index_dir,
        db_path=index_dir / "feedback.sqlite3",
        onnx_cache_dir=onnx_cache,
        encoder=os.environ.get("PLAYBOOK_TEST_ENCODER", "auto"),  # type: ignore[arg-type]
    )
    yield Engine.open(settings)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
