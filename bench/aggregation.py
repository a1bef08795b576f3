"""How to turn an entry's several indexed texts into one score: an experiment, not a test.

    .venv/bin/python bench/aggregation.py

On BANKING77 with Casanueva's 10-shot alternates, compares ways of scoring an entry from the
cosines of its question and alternates (max, centroid, top-k mean, soft-max pooling, mixes,
kNN voting, logistic regression on the embeddings). Choices are made on a dev set (training
utterances not drawn into the 10-shot index) and reported on the test set; the seed playbook's
eval set is scored too, so a proposal that would break the quality gate shows up.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.engine.engine import load_embedder  # noqa: E402
from app.knowledge.glossary import Glossary  # noqa: E402
from app.knowledge.playbook import load_knowledge  # noqa: E402
from app.ranking.head import fit_head  # noqa: E402
from bench.benchmarks import BENCHMARKS, read_jsonl  # noqa: E402

Matrix = npt.NDArray[np.float64]
# (query x text cosines, text -> entry number, entry count) -> (query x entry scores)
Scorer = Callable[[Matrix, npt.NDArray[np.int64], int], Matrix]


def per_entry(similarity: Matrix, owner: npt.NDArray[np.int64], entries: int,
              pool: Callable[[Matrix], Matrix]) -> Matrix:
    out = np.full((similarity.shape[0], entries), -np.inf)
    for e in range(entries):
        out[:, e] = pool(similarity[:, owner == e])
    return out


def max_pool(s: Matrix, o: npt.NDArray[np.int64], n: int) -> Matrix:
    return per_entry(s, o, n, lambda m: m.max(axis=1))


def topk_mean(k: int) -> Scorer:
    return lambda s, o, n: per_entry(s, o, n, lambda m: -np.sort(-m, axis=1)[:, :k].mean(axis=1))


def softmax_pool(temperature: float) -> Scorer:
    """temperature * log mean exp(cos / temperature): max as t -> 0, mean as t -> inf."""
    def pool(m: Matrix) -> Matrix:
        top = m.max(axis=1, keepdims=True)
        return (top[:, 0] + temperature * np.log(np.exp((m - top) / temperature).mean(axis=1)))
    return lambda s, o, n: per_entry(s, o, n, pool)


def mix(alpha: float, k: int) -> Scorer:
    return lambda s, o, n: alpha * max_pool(s, o, n) + (1 - alpha) * topk_mean(k)(s, o, n)


def centroid_scores(queries: Matrix, texts: Matrix, owner: npt.NDArray[np.int64],
                    n: int) -> Matrix:
    centroids = np.stack([texts[owner == e].mean(axis=0) for e in range(n)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    return queries @ centroids.T


def knn_vote(k: int) -> Scorer:
    def score(s: Matrix, o: npt.NDArray[np.int64], n: int) -> Matrix:
        out = np.zeros((s.shape[0], n))
        nearest = np.argsort(-s, axis=1)[:, :k]
        for rank in range(k):
            cols = nearest[:, rank]
            np.add.at(out, (np.arange(s.shape[0]), o[cols]), s[np.arange(s.shape[0]), cols])
        return out
    return score


def logistic(queries: Matrix, texts: Matrix, owner: npt.NDArray[np.int64], n: int) -> Matrix:
    """The shipped intent head (app/head.py) alone: log p(entry | query)."""
    head = fit_head(texts.astype(np.float32), owner, n)
    return head.log_probs(queries.astype(np.float32))


def top1(scores: Matrix, gold: npt.NDArray[np.int64]) -> float:
    return float((scores.argmax(axis=1) == gold).mean())


def main() -> None:
    settings = Settings(_env_file=None, threads=2)  # type: ignore[call-arg]
    embedder = load_embedder(settings)
    cache = Path("/tmp/aggregation-cache.npz")

    from bench.benchmarks import casanueva_alternates

    entries = read_jsonl(BENCHMARKS / "banking77" / "entries.jsonl")
    ids = [str(e["id"]) for e in entries]
    number = {entry_id: i for i, entry_id in enumerate(ids)}
    drawn = casanueva_alternates(BENCHMARKS / "banking77" / "train.jsonl")
    drawn_texts = {t for texts in drawn.values() for t in texts}
    train = read_jsonl(BENCHMARKS / "banking77" / "train.jsonl")
    dev = [r for r in train if r["text"] not in drawn_texts]
    test = read_jsonl(BENCHMARKS / "banking77" / "queries.jsonl")

    question_texts = [str(e["question"]) for e in entries]
    alternate_texts = [t for entry_id in ids for t in drawn[entry_id]]
    alternate_owner = np.array([number[i] for i in ids for _ in drawn[i]])
    if cache.exists():
        saved = np.load(cache)
        q_vec, a_vec, dev_vec, test_vec = (saved[k] for k in ("q", "a", "dev", "test"))
    else:
        q_vec = embedder.encode(question_texts)
        a_vec = embedder.encode(alternate_texts)
        dev_vec = embedder.encode([str(r["text"]) for r in dev])
        test_vec = embedder.encode([str(r["query"]) for r in test])
        np.savez(cache, q=q_vec, a=a_vec, dev=dev_vec, test=test_vec)
    dev_gold = np.array([number[str(r["label"])] for r in dev])
    test_gold = np.array([number[str(r["relevant"][0])] for r in test])  # type: ignore[index]

    # The seed playbook and its eval set, as the engine indexes them (glossary expanded).
    kb = load_knowledge(ROOT / "knowledge")
    glossary = Glossary(kb.glossary)
    seed_texts, seed_owner_list = [], []
    for i, entry in enumerate(kb.entries):
        for text in (entry.question, *entry.alternates):
            seed_texts.append(glossary.expand(text))
            seed_owner_list.append(i)
    seed_owner = np.array(seed_owner_list)
    seed_number = {e.id: i for i, e in enumerate(kb.entries)}
    seed_cases = [json.loads(x) for x in
                  (ROOT / "knowledge" / "eval" / "queries.jsonl").read_text().splitlines()
                  if x.strip() and json.loads(x).get("expected")]
    seed_vec_texts = embedder.encode(seed_texts)
    seed_vec_queries = embedder.encode([glossary.expand(c["query"]) for c in seed_cases])
    seed_gold = np.array([seed_number[c["expected"]] for c in seed_cases])

    with_question = np.vstack([q_vec, a_vec])
    owner_with_question = np.concatenate([np.arange(len(ids)), alternate_owner])
    layouts = {"question+alternates": (with_question, owner_with_question),
               "alternates only": (a_vec, alternate_owner)}
    scorers: dict[str, Scorer] = {"max (shipping)": max_pool}
    for k in (2, 3, 5):
        scorers[f"top-{k} mean"] = topk_mean(k)
    for t in (0.02, 0.05, 0.1):
        scorers[f"soft-max pool t={t}"] = softmax_pool(t)
    for alpha in (0.3, 0.5, 0.7):
        for k in (3, 5):
            scorers[f"{alpha}*max + {1 - alpha:.1f}*top-{k} mean"] = mix(alpha, k)
    for k in (3, 5, 10):
        scorers[f"kNN vote k={k}"] = knn_vote(k)

    print(f"{'layout':<20} {'scoring':<28} {'dev top1':>8} {'test top1':>9} {'seed top1':>9}")
    for layout, (vectors, owner) in layouts.items():
        dev_sim = dev_vec @ vectors.T
        test_sim = test_vec @ vectors.T
        for name, scorer in scorers.items():
            seed = top1(scorer(seed_vec_queries @ seed_vec_texts.T, seed_owner, len(kb.entries)),
                        seed_gold)
            print(f"{layout:<20} {name:<28} {top1(scorer(dev_sim, owner, len(ids)), dev_gold):>8.4f}"
                  f" {top1(scorer(test_sim, owner, len(ids)), test_gold):>9.4f} {seed:>9.4f}",
                  flush=True)
        for name, fn in (("centroid", centroid_scores), ("logistic regression", logistic)):
            seed = top1(fn(seed_vec_queries, seed_vec_texts, seed_owner, len(kb.entries)),
                        seed_gold)
            print(f"{layout:<20} {name:<28} "
                  f"{top1(fn(dev_vec, vectors, owner, len(ids)), dev_gold):>8.4f} "
                  f"{top1(fn(test_vec, vectors, owner, len(ids)), test_gold):>9.4f} "
                  f"{seed:>9.4f}", flush=True)


if __name__ == "__main__":
    main()
