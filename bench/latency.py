"""In-process query latency: bare encode vs the shipping engine vs the naive design, with 1 and 2
inference threads, fp32 and int8 (PLAYBOOK_QUANTIZE=1), in rotating blocks of the same queries.

    .venv/bin/python -m bench.latency [--repeat 3]

The naive design is sentence-transformers on torch + a FAISS flat index over the entries'
questions only (no alternates, glossary or calibration). Top-1 on knowledge/eval/queries.jsonl
(queries that have an expected entry) is printed beside each engine, so a faster setting that
ranks worse shows it. Indexes are built in bench/results/ so ./index is never touched.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import (
    RESULTS,
    SEED_KNOWLEDGE,
    eval_queries,
    fresh_index_dir,
    print_table,
    summary_ms,
    write_result,
)


class NaiveTorch:
    """sentence-transformers on torch + FAISS flat over the questions only."""

    def __init__(self, model_path: Path, entries: Any, threads: int) -> None:
        import faiss
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self.ids = [e.id for e in entries]
        vectors = self.model.encode([e.question for e in entries], normalize_embeddings=True)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(np.asarray(vectors, dtype=np.float32))

    def ask(self, question: str) -> str:
        vector = self.model.encode([question], normalize_embeddings=True)
        _, rows = self.index.search(np.asarray(vector, dtype=np.float32), 4)
        return self.ids[int(rows[0][0])]


def engine_for(threads: int, quantize: bool) -> Any:
    from app.config import Settings
    from app.engine.engine import Engine

    index = RESULTS / f"index-seed-{'int8' if quantize else 'fp32'}"
    if not (index / "CURRENT").exists():
        fresh_index_dir(index)
    settings = Settings(knowledge_dir=SEED_KNOWLEDGE, index_dir=index, threads=threads,
                        quantize=quantize, encoder="onnx")
    return Engine.open(settings)


def top1(ask: Callable[[str], str]) -> float:
    labelled = [(q, e) for q, e in eval_queries() if e]
    return sum(ask(q) == e for q, e in labelled) / len(labelled)


def engine_top1(engine: Any) -> Callable[[str], str]:
    def ask(question: str) -> str:
        return str(engine.search(question, k=1)[0].entry.id)

    return ask


def measure(candidates: dict[str, Callable[[str], Any]], repeat: int) -> dict[str, list[float]]:
    """Each round, every candidate answers all queries in one block, in rotating order. Blocks,
    not query-by-query interleaving: torch's and onnxruntime's idle worker threads spin for a
    while after each call, and interleaved calls would run on a core the other path keeps busy."""
    queries = [q for q, _ in eval_queries()]
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(repeat):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            for query in queries[:10]:  # warm-up after the other paths ran
                candidates[name](query)
            for query in queries:
                started = time.perf_counter()
                candidates[name](query)
                samples[name].append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes over the 176 eval queries")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-naive", action="store_true", help="skip the torch baseline")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    accuracy: dict[str, float] = {}
    rows = []
    for threads in args.threads:
        fp32 = engine_for(threads, quantize=False)
        int8 = engine_for(threads, quantize=True)
        candidates: dict[str, Callable[[str], Any]] = {
            "bare encode fp32": lambda q, e=fp32: e.embedder.encode([q]),
            "engine ask fp32": lambda q, e=fp32: e.ask(q),
            "bare encode int8": lambda q, e=int8: e.embedder.encode([q]),
            "engine ask int8": lambda q, e=int8: e.ask(q),
        }
        accuracy["engine fp32"] = top1(engine_top1(fp32))
        accuracy["engine int8"] = top1(engine_top1(int8))
        if not args.no_naive:
            naive = NaiveTorch(fp32.settings.resolved_model_path(), fp32.entries(), threads)
            candidates["naive torch + flat(questions)"] = naive.ask
            accuracy["naive torch + flat(questions)"] = top1(naive.ask)
        samples = measure(candidates, args.repeat)
        figures = {name: summary_ms(s) for name, s in samples.items()}
        results[f"threads={threads}"] = figures
        encode_p50 = figures["bare encode fp32"]["p50"]
        naive_p50 = figures.get("naive torch + flat(questions)", {}).get("p50")
        for name, f in figures.items():
            rows.append([threads, name, f["p50"], f["p95"], f["p99"], f["p50"] / encode_p50,
                         (naive_p50 / f["p50"]) if naive_p50 else "-"])
    print_table("In-process latency (ms), same run, queries interleaved",
                ["threads", "path", "p50", "p95", "p99", "p50 / bare fp32 encode",
                 "naive p50 / p50"], rows)
    print_table("Top-1 on knowledge/eval/queries.jsonl (138 labelled queries)",
                ["system", "top-1"], [[k, f"{v:.3f}"] for k, v in accuracy.items()])
    write_result("latency", {"latency_ms": results, "top1": accuracy, "repeat": args.repeat})


if __name__ == "__main__":
    main()
