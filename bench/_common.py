"""Helpers shared by the performance scripts: timing, tables, JSON results, servers, playbooks.

Every script compares its candidates in the same run (interleaved where it matters), because
absolute times on a shared 2-core machine move by tens of percent between runs.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SEED_KNOWLEDGE = ROOT / "knowledge"
SEED_INDEX = ROOT / "index"
EVAL_QUERIES = SEED_KNOWLEDGE / "eval" / "queries.jsonl"
PUBLIC_BENCHMARKS = ROOT.parent / "shared" / "benchmarks"
PYTHON = sys.executable
sys.path.insert(0, str(ROOT))

from app.versions import library_versions  # noqa: E402

# --- numbers and tables ------------------------------------------------------------------------


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds (nearest-rank percentiles)."""
    ordered = sorted(seconds)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] * 1000

    return {"n": len(ordered), "p50": rank(50), "p95": rank(95), "p99": rank(99),
            "mean": statistics.fmean(ordered) * 1000}


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in text:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")
    sys.stdout.flush()


def machine() -> dict[str, Any]:
    versions = library_versions(("onnxruntime", "faiss-cpu", "torch", "sentence-transformers",
                                 "uvicorn"))
    return {"cpus": os.cpu_count(), "load_average": os.getloadavg(),
            "python": versions.pop("python"), "versions": versions,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S")}


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def timed(action: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


# --- queries and playbooks ---------------------------------------------------------------------


def eval_queries() -> list[tuple[str, str]]:
    """(query, expected entry id) from the project's labelled set."""
    rows = [json.loads(line) for line in EVAL_QUERIES.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return [(row["query"], row["expected"]) for row in rows]


def public_texts() -> list[str]:
    """Short real texts from the public benchmarks: BANKING77 utterances and StackFAQ queries."""
    texts: list[str] = []
    for name, key in (("banking77/train.jsonl", "text"), ("banking77/queries.jsonl", "query"),
                      ("stackfaq/queries.jsonl", "query"), ("stackfaq/entries.jsonl", "question")):
        for line in (PUBLIC_BENCHMARKS / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(" ".join(str(json.loads(line)[key]).split()))
    return list(dict.fromkeys(t for t in texts if t))


def synthetic_entries(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """`count` entries with unique questions that read like real support texts: the public
    texts as they are first, then splices of one text's first half with another's second half
    (same length distribution, still real vocabulary). Every tenth entry has one alternate,
    so calibration has held-out phrasings to fit on, as a real playbook would."""
    pool = public_texts()
    rng = random.Random(seed)
    seen: set[str] = set()
    texts: list[str] = []
    for text in pool:
        if len(texts) == count:
            break
        seen.add(text)
        texts.append(text)
    needed = count + count // 10
    while len(texts) < needed:
        left, right = rng.choice(pool).split(), rng.choice(pool).split()
        text = " ".join(left[: max(1, len(left) // 2)] + right[len(right) // 2 :])
        if text not in seen:
            seen.add(text)
            texts.append(text)
    extra = iter(texts[count:])
    entries = []
    for number in range(count):
        entry: dict[str, Any] = {"id": f"e{number:06d}", "question": texts[number],
                                 "answer": f"Synthetic answer {number}.", "alternates": []}
        if number % 10 == 0:
            entry["alternates"] = [next(extra)]
        entries.append(entry)
    return entries


def write_entries(entries: Sequence[dict[str, Any]], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "entries.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for entry in entries:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return path


def fresh_index_dir(path: Path) -> Path:
    """An empty index folder that reuses the seed index's ONNX export (no re-export, no torch)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    onnx = SEED_INDEX / "onnx"
    if not onnx.is_dir():
        raise SystemExit("no ONNX export in ./index/onnx yet: run `playbook build` once first")
    (path / "onnx").symlink_to(onnx.resolve())
    return path


# --- processes ---------------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of one process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post_json(url: str, body: dict[str, Any], timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    started: float
    ready_after: float

    def peak_rss_mb(self) -> float:
        """The largest serving process (the master when there is one worker, else a worker)."""
        pids = [self.process.pid, *child_pids(self.process.pid)]
        return max(peak_rss_mb(p) for p in pids if Path(f"/proc/{p}").exists())


@contextmanager
def serving(
    command: Sequence[str], env: dict[str, str], port: int, ask_path: str = "/api/ask",
    question: str = "customer wants to cancel the order", timeout: float = 600.0,
) -> Iterator[Server]:
    """Start a server, wait for its first answered POST, stop it (by its own pid) afterwards."""
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115  (kept open for the server's lifetime)
        prefix="bench-server-", suffix=".log", delete=False)
    started = time.perf_counter()
    process = subprocess.Popen(list(command), env={**os.environ, **env}, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}; see {log.name}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"server not ready after {timeout} s; see {log.name}")
            try:
                status, _ = post_json(url + ask_path, {"question": question}, timeout=2)
                if status == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.02)
        yield Server(process, url, started, time.perf_counter() - started)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
        log.close()


def serve_command(port: int, workers: int = 1) -> list[str]:
    return [PYTHON, "-m", "app", "serve", "--port", str(port), "--workers", str(workers)]
