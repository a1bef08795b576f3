"""Could another signal lift StackFAQ P@1 past 0.95 without choosing its weight on the test set?

    .venv/bin/python -m bench.stackfaq_signals [--fine-tune]

StackFAQ has no alternates, so the engine ranks by cos(query, question) alone. Two signals the
entries do carry are scored on top of it, each with a weight w:
- the answer: + w · cos(query, answer);
- lexical overlap: + w · BM25(query, question + answer) / the query's best BM25 score.
The queries are split into two folds by thread (even / odd thread number): w is chosen on one
fold and scored on the other, both ways round, so the "cross-fitted" P@1 is what the signal
would earn on queries its weight never saw. `--fine-tune` also tries contrastive fine-tuning of
MiniLM on the pair set's own (question, answer) pairs (in-batch negatives, 1 epoch, lr 2e-5),
the only pairs StackFAQ offers a `playbook tune` (it has no alternates); it needs torch.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench._common import PUBLIC_BENCHMARKS, print_table, write_result

SETS = {"stackfaq-threads": "stackfaq_threads", "stackfaq-pairs": "stackfaq"}
WEIGHTS = (0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
Matrix = npt.NDArray[np.float32]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def bm25_scores(entries: list[dict[str, Any]], queries: list[str]) -> Matrix:
    import bm25s

    retriever = bm25s.BM25()
    documents = [f"{e['question']} {e['answer']}" for e in entries]
    retriever.index(bm25s.tokenize(documents, stopwords="en", show_progress=False),
                    show_progress=False)
    tokens = bm25s.tokenize(queries, stopwords="en", show_progress=False)
    rows, values = retriever.retrieve(tokens, k=len(entries), show_progress=False)
    scores = np.zeros((len(queries), len(entries)), dtype=np.float32)
    for number in range(len(queries)):
        scores[number, rows[number]] = values[number]
    return scores / np.maximum(scores.max(axis=1, keepdims=True), 1e-9)


def hits(base: Matrix, signal: Matrix, weight: float, entries: list[dict[str, Any]],
         queries: list[dict[str, Any]]) -> npt.NDArray[np.bool_]:
    best = (base + weight * signal).argmax(axis=1)
    return np.array([entries[best[i]]["id"] in q["relevant"] for i, q in enumerate(queries)])


def cross_fitted(base: Matrix, signal: Matrix, entries: list[dict[str, Any]],
                 queries: list[dict[str, Any]]) -> dict[str, Any]:
    fold = np.array([int(q["relevant"][0][1:4]) % 2 for q in queries])
    by_weight = {w: hits(base, signal, w, entries, queries) for w in WEIGHTS}
    chosen = {}
    correct = 0
    for tuning in (0, 1):
        weight = max(WEIGHTS, key=lambda w: (by_weight[w][fold == tuning].mean(), -w))
        chosen[f"chosen_on_fold_{tuning}"] = weight
        correct += int(by_weight[weight][fold != tuning].sum())
    return {"p_at_1_by_weight": {str(w): float(h.mean()) for w, h in by_weight.items()},
            **chosen, "cross_fitted_p_at_1": correct / len(queries)}


def fine_tuned_encoder(model_path: Path, pairs: list[tuple[str, str]]) -> Callable[..., Matrix]:
    import random

    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    random.seed(0)
    model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    model.max_seq_length = 128
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    model.train()
    random.shuffle(pairs)
    for start in range(0, len(pairs), 32):
        seen: set[str] = set()
        # One pair per question in a batch: a repeated question would be its own negative.
        batch = [p for p in pairs[start : start + 32] if not (p[0] in seen or seen.add(p[0]))]
        if len(batch) < 2:
            continue
        sides = [torch.nn.functional.normalize(
            model(model.preprocess([p[side] for p in batch]))["sentence_embedding"], dim=-1)
            for side in (0, 1)]
        loss = torch.nn.functional.cross_entropy(sides[0] @ sides[1].T * 20,
                                                 torch.arange(len(batch)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return lambda texts: model.encode(texts, normalize_embeddings=True, batch_size=64)


def main() -> None:
    from app.config import Settings
    from app.embedding.loader import load_embedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fine-tune", action="store_true")
    args = parser.parse_args()
    settings = Settings(encoder="onnx")
    embedder = load_embedder(settings)
    results: dict[str, Any] = {}
    rows = []
    for name, folder in SETS.items():
        entries = read_jsonl(PUBLIC_BENCHMARKS / folder / "entries.jsonl")
        queries = read_jsonl(PUBLIC_BENCHMARKS / folder / "queries.jsonl")
        texts = [q["query"] for q in queries]
        query_vectors = embedder.encode(texts)
        base = query_vectors @ embedder.encode([e["question"] for e in entries]).T
        signals = {
            "answer cosine": query_vectors @ embedder.encode([e["answer"] for e in entries]).T,
            "BM25 over question + answer": bm25_scores(entries, texts),
        }
        results[name] = {label: cross_fitted(base, signal, entries, queries)
                         for label, signal in signals.items()}
        naive = float(hits(base, base, 0.0, entries, queries).mean())
        rows.append([name, "question cosine alone (shipping)", "-", f"{naive:.4f}"])
        for label, figures in results[name].items():
            best = max(figures["p_at_1_by_weight"].values())
            rows.append([name, f"+ w · {label}", f"{best:.4f}",
                         f"{figures['cross_fitted_p_at_1']:.4f} (w = "
                         f"{figures['chosen_on_fold_0']} / {figures['chosen_on_fold_1']})"])
    if args.fine_tune:
        pairs = [(e["question"], e["answer"])
                 for e in read_jsonl(PUBLIC_BENCHMARKS / "stackfaq" / "entries.jsonl")]
        encode = fine_tuned_encoder(settings.resolved_model_path(), pairs)
        for name, folder in SETS.items():
            entries = read_jsonl(PUBLIC_BENCHMARKS / folder / "entries.jsonl")
            queries = read_jsonl(PUBLIC_BENCHMARKS / folder / "queries.jsonl")
            base = encode([q["query"] for q in queries]) @ encode(
                [e["question"] for e in entries]).T
            p_at_1 = float(hits(base, base, 0.0, entries, queries).mean())
            results[name]["fine-tuned on (question, answer)"] = p_at_1
            rows.append([name, "MiniLM fine-tuned on the pairs, question cosine", "-",
                         f"{p_at_1:.4f} (no weight to choose)"])
    print_table("StackFAQ P@1: extra signals, weight chosen on the other fold of threads",
                ["set", "ranking", "best w on all queries (optimistic)", "cross-fitted"], rows)
    write_result("stackfaq_signals", results)


if __name__ == "__main__":
    main()
