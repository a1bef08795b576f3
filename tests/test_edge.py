"""The HTTP edge as `playbook serve` runs it, probed over real sockets: slow and oversized request
heads, a bound on open connections, and X-Forwarded-For trusted only from a configured proxy."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.fakes import PROJECT_ROOT, free_port, wait_until_ready

# `playbook serve` itself (the click command, its uvicorn options), with the fake embedder.
SERVE = (f"import sys; sys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
         "from app.cli.main import main\n"
         "from tests.fakes import FakeEmbedder\n"
         "main(['serve', '--port', sys.argv[1]], obj=lambda settings: FakeEmbedder())\n")


@pytest.fixture
def served(tiny_settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PLAYBOOK_KNOWLEDGE_DIR": str(tiny_settings.knowledge_dir),
           "PLAYBOOK_INDEX_DIR": str(tiny_settings.index_dir),
           "PLAYBOOK_DB_PATH": str(tiny_settings.db_path), "PLAYBOOK_WATCH_SECONDS": "0",
           "PLAYBOOK_HEADER_TIMEOUT_SECONDS": "1", "PLAYBOOK_MAX_HEADER_BYTES": "4096",
           "PLAYBOOK_MAX_CONNECTIONS": "8", "PLAYBOOK_RATE_LIMIT_PER_MINUTE": "3"}
    log = (tmp_path / "serve.log").open("wb")
    with log, subprocess.Popen([sys.executable, "-c", SERVE, str(port)], cwd=tmp_path, env=env,
                               stdout=log, stderr=subprocess.DEVNULL) as child:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(child, url, seconds=60)
        try:
            yield url
        finally:
            child.terminate()
            child.wait(timeout=20)


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def response_to(conn: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_a_client_dripping_its_headers_is_disconnected_while_others_are_served(
        served: str) -> None:
    with connect(served) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(40):  # one header line every 0.25 s, never the blank line
                time.sleep(0.25)
                slow.sendall(b"X-Drip: a\r\n")
                assert httpx.get(f"{served}/healthz").status_code == 200
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            pytest.fail("the server kept a client that never finished its headers")


def test_an_oversized_request_head_gets_431_whole_or_streamed(served: str) -> None:
    with connect(served) as whole:
        whole.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n")
        first_line = response_to(whole).split(b"\r\n")[0]
    assert first_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    with connect(served) as streamed:  # one endless header, 1 KiB at a time
        streamed.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(64):
                streamed.sendall(b"a" * 1024)
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass
        first_line = response_to(streamed).split(b"\r\n")[0]
    assert first_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert httpx.get(f"{served}/healthz").status_code == 200


def test_a_keep_alive_client_is_served_request_after_request(served: str) -> None:
    with httpx.Client() as client:
        statuses = []
        for _ in range(3):
            statuses.append(client.get(f"{served}/healthz").status_code)
            time.sleep(0.4)  # under the 1 s limit each time, over it in total
    assert statuses == [200, 200, 200]


def test_open_connections_are_bounded_and_freed_by_the_header_timeout(served: str) -> None:
    idle = [connect(served) for _ in range(8)]
    try:
        time.sleep(0.2)
        assert httpx.get(f"{served}/healthz").status_code == 503
        assert all(response_to(conn) == b"" for conn in idle)  # each closed after 1 s of silence
        assert httpx.get(f"{served}/healthz").status_code == 200
    finally:
        for conn in idle:
            conn.close()


def test_every_log_line_is_json_with_a_time_and_a_level(served: str, tmp_path: Path) -> None:
    httpx.post(f"{served}/api/ask", json={"question": "cancel my order please"},
               headers={"X-Request-Id": "req-7"})
    time.sleep(0.2)  # the access line is written after the response
    lines = [json.loads(line) for line in
             (tmp_path / "serve.log").read_text(encoding="utf-8").splitlines()]
    assert lines and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
                         and line["level"] in ("info", "warning") for line in lines)
    assert any(line["logger"] == "uvicorn.error" and line["message"].startswith(
        "Uvicorn running on http://127.0.0.1:") for line in lines)
    [asked] = [line for line in lines if line.get("request_id") == "req-7"]
    assert {k: asked[k] for k in ("logger", "level", "message", "route", "status", "entry_id")} == {
        "logger": "playbook.access", "level": "info", "message": "POST /api/ask 200",
        "route": "/api/ask", "status": 200, "entry_id": "cancel-order"}


def test_a_spoofed_forwarded_for_does_not_escape_the_rate_limit(served: str) -> None:
    ask = {"question": "cancel my order please"}
    statuses = [httpx.post(f"{served}/api/ask", json=ask,
                           headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
                for n in range(4)]
    assert statuses == [200, 200, 200, 429]
