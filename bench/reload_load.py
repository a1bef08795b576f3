"""Load with a reload in the middle: 16 clients ask seed questions while the playbook is edited
and POST /api/admin/reload swaps the index. Loopback only, bounded in time.

    .venv/bin/python -m bench.reload_load [--seconds 60] [--clients 16]

It starts `playbook serve` (real model, ONNX encoder) on a free 127.0.0.1 port with a copy of
the seed knowledge and an admin token, and first asks every question once (the old index's
answers). Halfway through the run it adds an alternate (a probe phrasing that the old index does
not match) to one entry's playbook.yaml and posts the reload; after the run it asks every
question again (the new index's answers). Every answer given during the run must equal one of
the two, and no request sent after the reload returned may get an old answer. Latency is
reported overall and for requests that overlapped the swap; results go to
bench/results/reload_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.knowledge.playbook import load_knowledge, save_playbook

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SEED_KNOWLEDGE = ROOT / "knowledge"
ONNX_CACHE = ROOT / "index" / "onnx"
PROBE = "the quokka ledger is blinking orange again"
PROBE_ENTRY = "lost-or-stolen-package"
QUESTIONS = 24
READY_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Sample:
    question: str
    started: float
    ended: float
    status: int  # 0 when the request failed without an HTTP answer
    body: Any

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def seed_questions(count: int) -> list[str]:
    rows = [json.loads(line) for line in
            (SEED_KNOWLEDGE / "eval" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return [PROBE, *list(dict.fromkeys(row["query"] for row in rows))[: count - 1]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(workdir: Path, token: str, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    env = {**os.environ,
           "PLAYBOOK_KNOWLEDGE_DIR": str(workdir / "knowledge"),
           "PLAYBOOK_INDEX_DIR": str(workdir / "index"),
           "PLAYBOOK_DB_PATH": str(workdir / "feedback.sqlite3"),
           "PLAYBOOK_ADMIN_TOKEN": token,
           "PLAYBOOK_WATCH_SECONDS": "0"}  # the swap comes from the reload, not the watcher
    if ONNX_CACHE.is_dir():
        env["PLAYBOOK_ONNX_CACHE_DIR"] = str(ONNX_CACHE)
    log = workdir / "server.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return process, log


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def wait_ready(client: httpx.AsyncClient, process: subprocess.Popen[bytes],
                     log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}; see {log}")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"the server was not ready after {READY_TIMEOUT_SECONDS:.0f} s; see {log}")


async def ask(client: httpx.AsyncClient, question: str) -> Sample:
    started = time.perf_counter()
    try:
        response = await client.post("/api/ask", json={"question": question})
        body = response.json() if response.status_code == 200 else response.text
        return Sample(question, started, time.perf_counter(), response.status_code, body)
    except httpx.HTTPError as exc:
        return Sample(question, started, time.perf_counter(), 0, f"{type(exc).__name__}: {exc}")


async def answers(client: httpx.AsyncClient, questions: list[str]) -> dict[str, Any]:
    replies = [await ask(client, q) for q in questions]
    failed = [r for r in replies if r.status != 200]
    if failed:
        raise SystemExit(f"a reference question failed: {failed[0]}")
    return {r.question: r.body for r in replies}


async def asker(client: httpx.AsyncClient, questions: list[str], first: int, until: float,
                samples: list[Sample]) -> None:
    turn = first
    while time.perf_counter() < until:
        samples.append(await ask(client, questions[turn % len(questions)]))
        turn += 1


@dataclass(frozen=True)
class Swap:
    started: float
    ended: float
    status: int
    body: Any


async def edit_and_reload(client: httpx.AsyncClient, knowledge: Path, token: str,
                          at: float) -> Swap:
    await asyncio.sleep(max(0.0, at - time.perf_counter()))
    kb = load_knowledge(knowledge)
    assert kb.path is not None
    started = time.perf_counter()
    save_playbook(kb.with_alternate(PROBE_ENTRY, PROBE), kb.path)
    response = await client.post("/api/admin/reload", timeout=600,
                                 headers={"Authorization": f"Bearer {token}"})
    return Swap(started, time.perf_counter(), response.status_code, response.json())


def latency_ms(samples: list[Sample]) -> dict[str, float]:
    ordered = sorted(s.seconds * 1000 for s in samples)
    if not ordered:
        return {"n": 0}

    def rank(p: float) -> float:  # nearest-rank percentile
        return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))], 2)

    return {"n": len(ordered), "p50": rank(50), "p95": rank(95), "p99": rank(99),
            "max": round(ordered[-1], 2)}


def run(seconds: float, clients: int, workdir: Path) -> dict[str, Any]:
    shutil.copytree(SEED_KNOWLEDGE, workdir / "knowledge")
    token = secrets.token_urlsafe(24)
    port = free_port()
    process, log = start_server(workdir, token, port)
    questions = seed_questions(QUESTIONS)
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)

    async def session() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     limits=limits) as client:
            await wait_ready(client, process, log)
            old_hash = (await client.get("/healthz")).json()["knowledge_hash"]
            old = await answers(client, questions)
            samples: list[Sample] = []
            begin = time.perf_counter()
            until = begin + seconds
            swap_task = asyncio.create_task(
                edit_and_reload(client, workdir / "knowledge", token, begin + seconds / 2))
            await asyncio.gather(*(asker(client, questions, i * 5, until, samples)
                                   for i in range(clients)))
            swap = await swap_task
            new_hash = (await client.get("/healthz")).json()["knowledge_hash"]
            new = await answers(client, questions)
            return {"old": old, "new": new, "old_hash": old_hash, "new_hash": new_hash,
                    "samples": samples, "swap": swap, "begin": begin, "end": time.perf_counter()}

    try:
        outcome = asyncio.run(session())
    finally:
        stop_server(process)
    return judge(outcome, seconds, clients)


def judge(outcome: dict[str, Any], seconds: float, clients: int) -> dict[str, Any]:
    samples: list[Sample] = outcome["samples"]
    swap: Swap = outcome["swap"]
    old, new = outcome["old"], outcome["new"]
    failed = [s for s in samples if s.status != 200]
    neither = [s for s in samples if s.status == 200 and s.body not in (old[s.question],
                                                                          new[s.question])]
    probes = [s for s in samples if s.question == PROBE and s.status == 200]
    stale = [s for s in probes if s.started > swap.ended and s.body == old[PROBE]]
    during = [s for s in samples if s.ended >= swap.started and s.started <= swap.ended]
    outside = [s for s in samples if s not in during]
    changed = sorted(q for q in old if old[q] != new[q])
    return {
        "seconds": seconds,
        "clients": clients,
        "questions": len(old),
        "requests": len(samples),
        "throughput_per_s": round(len(samples) / seconds, 1),
        "failed": len(failed),
        "failed_examples": [f"{s.status} {s.body}"[:200] for s in failed[:5]],
        "from_neither_index": len(neither),
        "old_answers_after_swap": len(stale),
        "probe": {"question": PROBE, "entry": PROBE_ENTRY,
                  "old": {k: old[PROBE][k] for k in ("matched", "entry_id", "confidence")},
                  "new": {k: new[PROBE][k] for k in ("matched", "entry_id", "confidence")},
                  "answered_old": sum(s.body == old[PROBE] for s in probes),
                  "answered_new": sum(s.body == new[PROBE] for s in probes)},
        "answers_changed_by_the_edit": changed,
        "knowledge_hash": {"old": outcome["old_hash"], "new": outcome["new_hash"],
                           "reload_reported": swap.body.get("knowledge_hash")},
        "reload": {"status": swap.status, "body": swap.body,
                   "at_s": round(swap.started - outcome["begin"], 2),
                   "took_ms": round((swap.ended - swap.started) * 1000, 1)},
        "latency_ms": {"overall": latency_ms(samples), "during_swap": latency_ms(during),
                       "outside_swap": latency_ms(outside)},
    }


def print_report(result: dict[str, Any]) -> None:
    latency = result["latency_ms"]
    print(f"\n{result['clients']} clients x {result['seconds']:.0f} s on loopback, "
          f"reload at {result['reload']['at_s']} s took {result['reload']['took_ms']} ms "
          f"({result['reload']['body'].get('action')}: {result['reload']['body'].get('reason')})")
    print(f"| {'window':<12} | {'requests':>8} | {'p50 ms':>7} | {'p95 ms':>7} | {'p99 ms':>7} "
          f"| {'max ms':>7} |")
    print(f"|{'-' * 14}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for name in ("overall", "during_swap", "outside_swap"):
        row = latency[name]
        print(f"| {name:<12} | {row['n']:>8} | {row.get('p50', '-'):>7} | {row.get('p95', '-'):>7} "
              f"| {row.get('p99', '-'):>7} | {row.get('max', '-'):>7} |")
    probe = result["probe"]
    print(f"\nthroughput {result['throughput_per_s']} requests/s; failed {result['failed']}; "
          f"from neither index {result['from_neither_index']}; old answers after the swap "
          f"{result['old_answers_after_swap']}")
    print(f"probe: old {probe['old']} x{probe['answered_old']}, "
          f"new {probe['new']} x{probe['answered_new']}")
    print(f"knowledge hash {result['knowledge_hash']['old'][:12]} -> "
          f"{result['knowledge_hash']['new'][:12]} (reload said "
          f"{str(result['knowledge_hash']['reload_reported'])[:12]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the clients ask")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--output", type=Path, default=RESULTS / "reload_load.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reload-load-") as folder:
        result = run(args.seconds, args.clients, Path(folder))
    result["machine"] = {"cpus": os.cpu_count(), "load_average": os.getloadavg(),
                         "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    print_report(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    print(f"\nwrote {args.output}")
    ok = (result["failed"] == 0 and result["from_neither_index"] == 0
          and result["old_answers_after_swap"] == 0 and result["reload"]["status"] == 200
          and result["probe"]["answered_new"] > 0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
