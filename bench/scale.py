"""Scale: build throughput, index size, query latency, serving RSS and cold start for synthetic
playbooks of 1k, 10k and 100k entries, and the re-index time after editing one entry.

    .venv/bin/python -m bench.scale                      # 1k, 10k, 100k (100k takes ~10 min)
    .venv/bin/python -m bench.scale --sizes 1000 10000   # quicker

Each size gets its own knowledge and index folders under bench/results/scale/<size>/ and a fresh
embedding cache, so build throughput is a cold build. Query latency is measured in process with a
bare encode of the same query interleaved, so the ratio holds on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._common import (
    RESULTS,
    eval_queries,
    free_port,
    fresh_index_dir,
    post_json,
    print_table,
    serve_command,
    serving,
    summary_ms,
    synthetic_entries,
    write_entries,
    write_result,
)


class PhaseTimer:
    """Wraps module functions in place to add up the time spent in each (bench process only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, name, timed)

    def take(self) -> dict[str, float]:
        taken, self.seconds = self.seconds, {}
        return taken


def install_phase_timer() -> PhaseTimer:
    import app.engine.engine
    import app.index.format
    import app.knowledge.playbook
    from app.embedding.cache import EmbeddingCache

    timer = PhaseTimer()
    timer.wrap(app.engine.engine, "load_knowledge", "read knowledge")
    timer.wrap(app.knowledge.playbook.KnowledgeBase, "content_hash", "hash knowledge")
    timer.wrap(EmbeddingCache, "encode", "embed (cache + encoder)")
    timer.wrap(app.index.format, "_calibrate", "calibrate")
    timer.wrap(app.index.format, "_vector_index", "vector index")
    timer.wrap(app.index.format.faiss, "write_index", "write index")
    timer.wrap(app.index.format, "_sha256", "checksums")
    return timer


def directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def query_latency(engine: Any, repeat: int) -> dict[str, dict[str, float]]:
    """ask and a bare encode of the same query, interleaved."""
    queries = [q for q, _ in eval_queries()]
    encode_s: list[float] = []
    ask_s: list[float] = []
    for _ in range(repeat):
        for query in queries:
            started = time.perf_counter()
            engine.embedder.encode([query])
            encode_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            engine.ask(query)
            ask_s.append(time.perf_counter() - started)
    return {"bare_encode": summary_ms(encode_s), "ask": summary_ms(ask_s)}


def serving_figures(knowledge: Path, index: Path, requests: int = 200) -> dict[str, float]:
    """Cold start (to the first answered POST) and peak RSS of `playbook serve` on this index."""
    port = free_port()
    env = {"PLAYBOOK_KNOWLEDGE_DIR": str(knowledge), "PLAYBOOK_INDEX_DIR": str(index),
           "PLAYBOOK_THREADS": "1"}
    queries = [q for q, _ in eval_queries()]
    with serving(serve_command(port), env, port) as server:
        for i in range(requests):
            post_json(server.url + "/api/ask", {"question": queries[i % len(queries)]})
        return {"cold_start_s": server.ready_after, "peak_rss_mb": server.peak_rss_mb()}


def edit_one_entry(folder: Path) -> None:
    path = folder / "entries.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    middle = len(lines) // 2
    entry = json.loads(lines[middle])
    entry["question"] += " (edited at " + time.strftime("%H:%M:%S") + ")"
    lines[middle] = json.dumps(entry, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_size(size: int, threads: int | None, timer: PhaseTimer, reuse_cache: Path | None) -> dict[str, Any]:
    from app.config import Settings
    from app.embedding.loader import load_embedder
    from app.engine.engine import Engine

    folder = RESULTS / "scale" / str(size)
    knowledge = folder / "knowledge"
    write_entries(synthetic_entries(size), knowledge)
    index = fresh_index_dir(folder / "index")
    if reuse_cache is not None:
        shutil.copyfile(reuse_cache, index / "embedding-cache.sqlite3")
    settings = Settings(knowledge_dir=knowledge, index_dir=index, threads=threads)
    engine = Engine(settings, load_embedder(settings))
    timer.take()
    started = time.perf_counter()
    report = engine.load()
    build_s = time.perf_counter() - started
    phases = timer.take()
    manifest = engine._current().index.manifest
    build_dir = engine._current().index.path
    result: dict[str, Any] = {
        "entries": size,
        "vectors": manifest.vector_count,
        "index_type": manifest.index_type,
        "build_s": build_s,
        "build_texts_per_s": manifest.vector_count / build_s,
        "encode_texts_per_s": manifest.vector_count / phases.get("embed (cache + encoder)", 1e-9),
        "build_phases_s": phases,
        "index_mb": directory_mb(build_dir),
        "cache_mb": (index / "embedding-cache.sqlite3").stat().st_size / 1e6,
        "action": report.action,
        "warm_cache_from": str(reuse_cache) if reuse_cache else None,
    }
    print(f"{size}: built {manifest.vector_count} vectors ({manifest.index_type}) in "
          f"{build_s:.1f} s; phases {phases}", flush=True)
    result["latency_ms"] = query_latency(engine, repeat=3)
    if size == 10_000:
        result["reindex"] = reindex(engine, knowledge, timer)
    del engine
    result.update(serving_figures(knowledge, index))
    return result


def reindex(engine: Any, knowledge: Path, timer: PhaseTimer) -> dict[str, Any]:
    """Edit one entry, reload (which rebuilds through the embedding cache); then reload as is."""
    runs = []
    for _ in range(3):
        edit_one_entry(knowledge)
        timer.take()
        started = time.perf_counter()
        report = engine.load()
        runs.append({"seconds": time.perf_counter() - started, "action": report.action,
                     "phases_s": timer.take()})
    started = time.perf_counter()
    unchanged = engine.load()
    return {"after_one_edit": runs, "median_s": sorted(r["seconds"] for r in runs)[1],
            "unchanged_reload_s": time.perf_counter() - started,
            "unchanged_action": unchanged.action}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--threads", type=int, default=None,
                        help="encoder threads for a lone build or query (default: as served)")
    parser.add_argument("--reuse-cache", type=Path, default=None,
                        help="start from this embedding-cache.sqlite3 (texts/s is then not a "
                             "cold-build figure)")
    args = parser.parse_args()
    timer = install_phase_timer()
    results: dict[str, Any] = {}
    for size in args.sizes:
        results[str(size)] = run_size(size, args.threads, timer, args.reuse_cache)
        write_result(f"scale-{size}", {"size": results[str(size)]})
    rows = []
    for size, r in results.items():
        rows.append([size, r["vectors"], r["index_type"], r["build_s"], r["build_texts_per_s"],
                     r["index_mb"], r["latency_ms"]["bare_encode"]["p50"],
                     r["latency_ms"]["ask"]["p50"], r["latency_ms"]["ask"]["p95"],
                     r["latency_ms"]["ask"]["p99"], r["peak_rss_mb"], r["cold_start_s"]])
    print_table("Scale (in-process ask latency in ms; build on a cold embedding cache)",
                ["entries", "vectors", "index", "build s", "texts/s", "index MB", "encode p50",
                 "ask p50", "ask p95", "ask p99", "serve peak RSS MB", "cold start s"], rows)
    for size, r in results.items():
        if "reindex" in r:
            re = r["reindex"]
            print_table(f"Re-index after editing one entry of {size}",
                        ["run", "seconds", "action", "phases (s)"],
                        [[i + 1, run["seconds"], run["action"],
                          ", ".join(f"{k} {v:.3f}" for k, v in run["phases_s"].items())]
                         for i, run in enumerate(re["after_one_edit"])]
                        + [["unchanged", re["unchanged_reload_s"], re["unchanged_action"], ""]])
    name = "scale" if len(args.sizes) == 3 else "scale-" + "-".join(map(str, args.sizes))
    write_result(name, {"sizes": results})


if __name__ == "__main__":
    main()
