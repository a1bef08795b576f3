"""Two `playbook serve` replicas, each with its own knowledge folder and index (two hosts, as far
as they can tell), sharing one PostgreSQL database: an edit published on one is served by the
other, and so is a question marked out of scope there; a Slack retry landing on the other is
answered once, feedback from both is counted in one place, and a replica killed mid-flight
loses nothing it acknowledged."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import PROJECT_ROOT, free_port, wait_until_ready
from tests.test_slack import BOT_TOKEN, SECRET, Receiver, json_headers, mention, receiver

__all__ = ["receiver"]  # the fixture, used below by name

SERVE = (f"import sys; sys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
         "from app.cli.main import main\n"
         "from tests.fakes import FakeEmbedder\n"
         "main(['serve', '--port', sys.argv[1]], obj=lambda settings: FakeEmbedder())\n")
ADMIN = {"Authorization": "Bearer alice-token-1234"}


@dataclass
class Replica:
    url: str
    folder: Path
    process: subprocess.Popen[bytes]

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kwargs)


def until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the replicas did not converge in time"
        time.sleep(0.1)


@pytest.fixture
def replicas(postgres_url: str, tiny_knowledge: Path, tmp_path: Path,
             receiver: Receiver) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            folder = tmp_path / name
            shutil.copytree(tiny_knowledge, folder / "knowledge")
            port = free_port()
            env = {**os.environ, "PLAYBOOK_KNOWLEDGE_DIR": str(folder / "knowledge"),
                   "PLAYBOOK_INDEX_DIR": str(folder / "index"),
                   "PLAYBOOK_DB_PATH": str(folder / "unused.sqlite3"),
                   "PLAYBOOK_DATABASE_URL": postgres_url, "PLAYBOOK_WATCH_SECONDS": "0.3",
                   "PLAYBOOK_ADMINS": "alice:alice-token-1234",
                   "PLAYBOOK_SLACK_SIGNING_SECRET": SECRET, "PLAYBOOK_SLACK_BOT_TOKEN": BOT_TOKEN,
                   "PLAYBOOK_SLACK_API_URL": f"{receiver.url}api/"}
            with (folder / "serve.log").open("wb") as log:  # the child keeps its own copy
                process = subprocess.Popen([sys.executable, "-c", SERVE, str(port)],
                                           cwd=folder, env=env, stdout=log,
                                           stderr=subprocess.STDOUT)
            started.append(Replica(f"http://127.0.0.1:{port}", folder, process))
        for replica in started:
            wait_until_ready(replica.process, replica.url, seconds=60)
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                replica.process.terminate()
                replica.process.wait(timeout=20)


@pytest.mark.postgres
def test_an_edit_published_on_one_replica_is_served_by_the_other(
        replicas: list[Replica]) -> None:
    a, b = replicas
    card = a.get("/api/workbench/entries/shipping-sla", headers=ADMIN).json()
    card.pop("source")
    card["answer"] = "2-4 business days"
    published = a.post("/api/workbench/publish", headers=ADMIN, json={"entries": [card]})
    assert published.status_code == 200, published.text
    until(lambda: b.get("/api/workbench/entries/shipping-sla", headers=ADMIN).json()["answer"]
          == "2-4 business days")
    assert (b.folder / "knowledge" / "playbook.yaml").read_text() == \
        (a.folder / "knowledge" / "playbook.yaml").read_text()
    assert a.get("/healthz").json()["knowledge_hash"] == b.get("/healthz").json()[
        "knowledge_hash"]
    history = b.get("/api/workbench/history", headers=ADMIN).json()
    assert [(v["version"], v["who"], v["action"]) for v in history] == [
        (2, "alice", "publish"), (1, "(edited on disk)", "file-edit")]


@pytest.mark.postgres
def test_a_question_marked_out_of_scope_on_one_replica_is_refused_by_the_other(
        replicas: list[Replica]) -> None:
    a, b = replicas
    asked = a.post("/api/chat/ask", json={"question": "gift wrap this order"}).json()
    marked = a.post("/api/review/out-of-scope", headers=ADMIN,
                    json={"query_ids": [asked["query_id"]], "force": True})
    assert marked.status_code == 200, marked.text
    until(lambda: b.post("/api/ask", json={"question": "gift wrap this order"}).json()[
        "out_of_scope"] == "gift wrap this order")
    assert (b.folder / "knowledge" / "out_of_scope.txt").read_text() == \
        (a.folder / "knowledge" / "out_of_scope.txt").read_text()
    assert a.get("/healthz").json()["knowledge_hash"] == b.get("/healthz").json()[
        "knowledge_hash"]
    newest = b.get("/api/workbench/history", headers=ADMIN).json()[0]
    assert (newest["who"], newest["action"], newest["out_of_scope_changes"]) == (
        "alice", "review-out-of-scope", {"added": ["gift wrap this order"], "removed": []})


@pytest.mark.postgres
def test_a_slack_retry_on_the_other_replica_is_answered_once(
        replicas: list[Replica], receiver: Receiver) -> None:
    a, b = replicas
    body = mention("<@U0BOT> update address on order", event_id="Ev0REPLICA1")
    first = a.post("/slack/events", content=body, headers=json_headers(body))
    time.sleep(1.1)  # a new signature timestamp: the retry is not a replay of the same request
    retry = b.post("/slack/events", content=body, headers=json_headers(
        body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}))
    assert [first.json(), retry.json()] == [{"ok": True}, {"ok": True}]
    until(lambda: len(receiver.requests) >= 1)
    time.sleep(1.0)  # time enough for a second, wrong answer to arrive
    assert [r.path for r in receiver.requests] == ["/api/chat.postMessage"]


@pytest.mark.postgres
def test_feedback_from_both_replicas_lands_in_one_place_and_a_killed_one_loses_nothing(
        replicas: list[Replica]) -> None:
    a, b = replicas
    ids = []
    for replica, question in ((a, "cancel my order please"), (b, "how long does shipping take")):
        asked = replica.post("/api/chat/ask", json={"question": question}).json()
        saved = replica.post("/api/feedback", json={
            "query_id": asked["query_id"], "rating": "up",
            "feedback_token": asked["feedback_token"]})
        assert saved.status_code == 200, saved.text
        ids.append(asked["query_id"])
    assert ids == [1, 2]  # one sequence for every replica
    b.process.send_signal(signal.SIGKILL)
    b.process.wait(timeout=20)
    figures = a.get("/api/insights", headers=ADMIN).json()
    assert (figures["asked"], figures["up"], figures["down"]) == (2, 2, 0)
