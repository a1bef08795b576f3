"""`playbook serve --workers 2` with the real model: every worker answers, and /metrics sums the
request figures over the workers (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from tests.fakes import free_port, wait_until_ready

pytestmark = pytest.mark.model


def test_two_workers_answer_and_metrics_count_both(
        tiny_settings: Settings, onnx_cache: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PLAYBOOK_KNOWLEDGE_DIR": str(tiny_settings.knowledge_dir),
           "PLAYBOOK_INDEX_DIR": str(tiny_settings.index_dir),
           "PLAYBOOK_DB_PATH": str(tiny_settings.db_path),
           "PLAYBOOK_ONNX_CACHE_DIR": str(onnx_cache), "HF_HUB_OFFLINE": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    playbook = [sys.executable, "-m", "app"]
    subprocess.run([*playbook, "build"], cwd=tmp_path, env=env, check=True, capture_output=True,
                   timeout=600)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with subprocess.Popen([*playbook, "serve", "--port", str(port), "--workers", "2"],
                          cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as server:
        try:
            wait_until_ready(server, url)
            answers = [httpx.post(f"{url}/api/ask", headers={"Connection": "close"},
                                  json={"question": "cancel my order please"}).json()["entry_id"]
                       for _ in range(8)]
            text = httpx.get(f"{url}/metrics").text
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert answers == ["cancel-order"] * 8
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("playbook_requests_total", (("method", "POST"), ("route", "/api/ask"),
                                                ("status", "200")))] == 8
    assert samples[("playbook_answers_total", (("outcome", "answered"),))] == 8
