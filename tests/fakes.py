"""Test doubles and data shared by the tests: a deterministic fake embedder, a tiny playbook,
and a helper that serves an ASGI app on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from app.embedding.embedder import Vectors, normalize

PROJECT_ROOT = Path(__file__).resolve().parent.parent
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


def wait_until_ready(process: subprocess.Popen[Any], url: str, seconds: float = 300) -> None:
    """Wait for a server process to answer GET /readyz with 200; fail with its output if it
    exits first."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"the server exited ({process.returncode}): {output!r}")
        assert time.monotonic() < deadline, f"no answer from {url}/readyz in {seconds} s"
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


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
