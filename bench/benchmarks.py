"""Public benchmarks through `playbook eval --compare`'s code path (a script, not a test).

    .venv/bin/python bench/benchmarks.py [--only NAME ...] [--threads N]

Runs, on ../shared/benchmarks/: BANKING77 with 10 alternates per intent drawn by Casanueva et
al.'s sampler, with the first 10 in file order (the folder's own entries.jsonl), and with every
training utterance; StackFAQ at pair level and thread level; and BANKING77 with a quarter of its
intents held out as out of scope (`banking77-oos`, below). Prints the tables and adds the
playbook-eval/1 documents to bench/results/benchmarks.json (the sets not run keep their last
results). Takes several minutes.

banking77-oos follows Zhang et al. 2021 ("Are Pretrained Transformers Robust in Intent
Classification? A Missing Ingredient in Evaluation of Out-of-Scope Intent Detection"): 19 of the
77 intents, drawn by numpy.random.default_rng(0).permutation over the sorted names, are held out;
the other 58 keep Casanueva's 10 alternates; every BANKING77 test query is asked, a held-out
intent's as out of scope. Variant "no-oos-examples" has no out-of-scope examples in the
knowledge; "with-oos-examples" has an out_of_scope.txt of the first 5 training utterances (file
order) of the first 10 held-out intents, and reports recall on the other 9 ("unseen") apart.
Figures at the engine's own decision, and at the confidence threshold that refuses 5 % of the
in-scope queries.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.engine.engine import load_embedder  # noqa: E402
from app.evaluation.baselines import comparison_systems, temporary_engine  # noqa: E402
from app.evaluation.queries import load_queries  # noqa: E402
from app.evaluation.scoring import SystemResult, run_system, to_json  # noqa: E402
from app.evaluation.systems import EngineSystem  # noqa: E402
from app.index.format import load_index  # noqa: E402
from app.knowledge.playbook import KnowledgeBase, load_knowledge  # noqa: E402

BENCHMARKS = ROOT.parent / "shared" / "benchmarks"
RESULTS = ROOT / "bench" / "results"


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def casanueva_alternates(train: Path, shots: int = 10) -> dict[str, list[str]]:
    """Their sampler (polyai-models subsample_from_train.py): seed 0 once, then per label in
    numpy.unique order, numpy.random.choice over that label's rows in file order."""
    rows = read_jsonl(train)
    texts = np.array([str(r["text"]) for r in rows], dtype=object)
    labels = np.array([str(r["label"]) for r in rows])
    np.random.seed(0)
    drawn = {}
    for label in np.unique(labels):
        indices = np.where(labels == label)[0]
        chosen = np.random.choice(indices, size=shots, replace=False)
        drawn[str(label)] = [str(t) for t in texts[chosen]]
    return drawn


def all_training_alternates(train: Path) -> dict[str, list[str]]:
    drawn: dict[str, list[str]] = {}
    for row in read_jsonl(train):
        drawn.setdefault(str(row["label"]), []).append(str(row["text"]))
    return drawn


def banking_with(alternates: Callable[[Path], dict[str, list[str]]]) -> Callable[[Path], Path]:
    """A maker of an entries.jsonl whose alternates come from `alternates(train.jsonl)`."""

    def make(workdir: Path) -> Path:
        drawn = alternates(BENCHMARKS / "banking77" / "train.jsonl")
        out = workdir / "entries.jsonl"
        with out.open("w", encoding="utf-8") as handle:
            for entry in read_jsonl(BENCHMARKS / "banking77" / "entries.jsonl"):
                entry["alternates"] = drawn[str(entry["id"])]
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return out

    return make


def as_is(folder: str) -> Callable[[Path], Path]:
    return lambda _: BENCHMARKS / folder / "entries.jsonl"


# name -> (entries maker, queries file, published or reference figure to beat)
SETS: dict[str, tuple[Callable[[Path], Path], Path, str]] = {
    "banking77-10shot": (banking_with(casanueva_alternates),
                         BENCHMARKS / "banking77" / "queries.jsonl",
                         "USE+ConveRT 85.19; MiniLM 1-NN 83.5"),
    "banking77-first10": (as_is("banking77"), BENCHMARKS / "banking77" / "queries.jsonl",
                          "MiniLM max over q+alternates 81.8"),
    "banking77-all": (banking_with(all_training_alternates),
                      BENCHMARKS / "banking77" / "queries.jsonl",
                      "USE+ConveRT 93.36; BERT-large 93.66; MiniLM 1-NN 92.1"),
    "stackfaq-pairs": (as_is("stackfaq"), BENCHMARKS / "stackfaq" / "queries.jsonl",
                       "MiniLM question 0.945 P@1; BM25 q+a P@3 0.61, MAP 0.64 (non-standard)"),
    "stackfaq-threads": (as_is("stackfaq_threads"),
                         BENCHMARKS / "stackfaq_threads" / "queries.jsonl", "-"),
}


OOS_SET = "banking77-oos"
HELD_OUT_INTENTS = 19  # a quarter of 77, rounded down
OOS_EXAMPLE_INTENTS = 10  # held-out intents whose training utterances become examples
OOS_EXAMPLES_EACH = 5
IN_SCOPE_REFUSAL = 0.05  # the second operating point: refuse this share of in-scope queries


def held_out_intents() -> list[str]:
    labels = sorted({str(r["label"]) for r in read_jsonl(BENCHMARKS / "banking77" / "train.jsonl")})
    drawn = np.random.default_rng(0).permutation(np.array(labels))
    return [str(label) for label in drawn[:HELD_OUT_INTENTS]]


def write_oos_set(workdir: Path, held_out: list[str], examples: bool) -> tuple[Path, Path]:
    """entries.jsonl of the kept intents (Casanueva's 10 alternates each), with an
    out_of_scope.txt beside it when `examples`, and the queries file (held out -> expected null)."""
    workdir.mkdir(parents=True, exist_ok=True)
    drawn = casanueva_alternates(BENCHMARKS / "banking77" / "train.jsonl")
    with (workdir / "entries.jsonl").open("w", encoding="utf-8") as handle:
        for entry in read_jsonl(BENCHMARKS / "banking77" / "entries.jsonl"):
            if entry["id"] not in held_out:
                entry["alternates"] = drawn[str(entry["id"])]
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    if examples:
        by_label = all_training_alternates(BENCHMARKS / "banking77" / "train.jsonl")
        lines = [t for label in held_out[:OOS_EXAMPLE_INTENTS]
                 for t in by_label[label][:OOS_EXAMPLES_EACH]]
        (workdir / "out_of_scope.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    queries = workdir / "queries.jsonl"
    with queries.open("w", encoding="utf-8") as handle:
        for row in read_jsonl(BENCHMARKS / "banking77" / "queries.jsonl"):
            relevant = [r for r in row["relevant"] if r not in held_out]  # type: ignore[attr-defined]
            handle.write(json.dumps({"query": row["query"], "expected": relevant or None,
                                     "intent": row["relevant"][0]},  # type: ignore[index]
                                    ensure_ascii=False) + "\n")
    return workdir / "entries.jsonl", queries


def auroc(positive: list[float], negative: list[float]) -> float:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney U)."""
    scores = np.asarray(positive + negative, dtype=np.float64)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based, ties share their mean
    ranks = average_rank[inverse]
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2.0
    return float(u / (len(positive) * len(negative)))


def oos_figures(result: SystemResult, unseen: set[str], intent_of: dict[int, str],
                ) -> dict[str, object]:
    """In-scope top-1, refusals and out-of-scope recall/precision at the engine's decision and
    at the confidence that refuses IN_SCOPE_REFUSAL of the in-scope queries; AUROC."""
    inside, outside = result.in_scope, result.out_of_scope
    confidence = {id(o): float(o.response.confidence or 0.0) for o in result.outcomes}
    limit = float(np.quantile([confidence[id(o)] for o in inside], IN_SCOPE_REFUSAL))
    at_engine = {id(o): not o.response.answered for o in result.outcomes}
    at_limit = {id(o): confidence[id(o)] < limit for o in result.outcomes}
    unseen_oos = [o for o in outside if intent_of[o.case.line] in unseen]
    points: dict[str, object] = {}
    for point, refused in (("engine decision", at_engine),
                           (f"refuse {IN_SCOPE_REFUSAL:.0%} in scope", at_limit)):
        wrong = sum(refused[id(o)] for o in inside)
        right = sum(refused[id(o)] for o in outside)
        points[point] = {
            "in_scope_refused": wrong / len(inside),
            "oos_recall": right / len(outside),
            "oos_recall_unseen": sum(refused[id(o)] for o in unseen_oos) / len(unseen_oos),
            "oos_precision": right / (right + wrong) if right + wrong else None,
        }
    return {
        "in_scope": len(inside), "out_of_scope": len(outside),
        "top1": result.metrics()["top1"],
        "auroc": auroc([confidence[id(o)] for o in inside], [confidence[id(o)] for o in outside]),
        "threshold_5pct": limit, "points": points,
    }


def run_oos(embedder: object, settings: Settings, workdir: Path) -> dict[str, object]:
    held_out = held_out_intents()
    print(f"{OOS_SET}: held-out intents: {', '.join(held_out)}")
    print(f"{OOS_SET}: out-of-scope examples from: {', '.join(held_out[:OOS_EXAMPLE_INTENTS])}")
    document: dict[str, object] = {"held_out": held_out,
                                   "example_intents": held_out[:OOS_EXAMPLE_INTENTS]}
    for variant, examples in (("no-oos-examples", False), ("with-oos-examples", True)):
        entries, queries = write_oos_set(workdir / variant, held_out, examples)
        kb = load_knowledge(entries)
        started = time.perf_counter()
        engine = temporary_engine(kb, embedder, settings,  # type: ignore[arg-type]
                                  workdir / variant / "engine")
        head = load_index(workdir / variant / "engine" / "index").manifest.head
        print(f"  {OOS_SET} {variant}: built in {time.perf_counter() - started:.0f}s "
              f"({len(kb.out_of_scope)} out-of-scope examples; head: {head})", flush=True)
        cases = load_queries(queries, [e.id for e in kb.entries])
        intent_of = {number: str(row["intent"])
                     for number, row in enumerate(read_jsonl(queries), start=1)}
        result = run_system(EngineSystem(engine), cases)
        unseen = set(held_out[OOS_EXAMPLE_INTENTS:])  # the same 9 in both variants
        document[variant] = {"figures": oos_figures(result, unseen, intent_of),
                             "eval": to_json([result], str(queries), f"{OOS_SET} {variant}")}
    return document


def oos_table(document: dict[str, Any]) -> list[str]:
    lines = [f"{'variant':<18} {'operating point':<20} {'top1':>6} {'in-refused':>10} "
             f"{'OOS recall':>10} {'unseen':>7} {'OOS prec':>8} {'AUROC':>6}"]
    for variant in ("no-oos-examples", "with-oos-examples"):
        figures = document[variant]["figures"]
        for point, m in figures["points"].items():
            precision = "-" if m["oos_precision"] is None else f"{m['oos_precision']:.1%}"
            lines.append(f"{variant:<18} {point:<20} {figures['top1']:>6.1%} "
                         f"{m['in_scope_refused']:>10.1%} {m['oos_recall']:>10.1%} "
                         f"{m['oos_recall_unseen']:>7.1%} {precision:>8} {figures['auroc']:>6.3f}")
    lines.append(f"({figures['in_scope']} in-scope and {figures['out_of_scope']} out-of-scope "
                 "queries; 'unseen': the 9 held-out intents never given as examples)")
    return lines


def run_set(name: str, embedder: object, settings: Settings, workdir: Path,
            ) -> tuple[list[SystemResult], KnowledgeBase]:
    make, queries, _ = SETS[name]
    kb = load_knowledge(make(workdir))
    started = time.perf_counter()
    engine = temporary_engine(kb, embedder, settings, workdir / "engine")  # type: ignore[arg-type]
    print(f"  {name}: built in {time.perf_counter() - started:.0f}s "
          f"(head: {load_index(workdir / 'engine' / 'index').manifest.head})", flush=True)
    cases = load_queries(queries, [e.id for e in kb.entries])
    systems = [EngineSystem(engine), *comparison_systems(kb, engine, settings, workdir)]
    results = []
    for system in systems:
        started = time.perf_counter()
        results.append(run_system(system, cases))
        print(f"  {name}: {system.name} done in {time.perf_counter() - started:.0f}s",
              flush=True)
    return results, kb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=[*sorted(SETS), OOS_SET],
                        default=[*SETS, OOS_SET])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "benchmarks.json")
    args = parser.parse_args()

    settings = Settings(_env_file=None, threads=args.threads)  # type: ignore[call-arg]
    embedder = load_embedder(settings)
    documents = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    extra: list[str] = []
    lines = [f"{'set':<18} {'system':<21} {'top1/P@1':>8} {'MRR':>6} {'R@5':>6} {'MAP':>6} "
             f"{'P@3':>6} {'p50ms':>6}  reference"]
    for name in args.only:
        if name == OOS_SET:
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                documents[name] = run_oos(embedder, settings, Path(tmp))
            extra = ["", *oos_table(documents[name])]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(documents, indent=1, ensure_ascii=False),
                                encoding="utf-8")
            continue
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            started = time.perf_counter()
            results, _ = run_set(name, embedder, settings, Path(tmp))
            print(f"{name}: {time.perf_counter() - started:.0f}s", flush=True)
        document = to_json(results, str(SETS[name][1]), name)
        document["reference"] = SETS[name][2]
        documents[name] = document
        for system in document["systems"]:
            m = system["metrics"]
            lines.append(f"{name:<18} {system['name']:<21} {m['top1']:>8.4f} {m['mrr']:>6.3f} "
                         f"{m['recall_at_5']:>6.3f} {m['map']:>6.3f} {m['p_at_3']:>6.3f} "
                         f"{m['latency_p50_ms']:>6.1f}  {SETS[name][2]}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(documents, indent=1, ensure_ascii=False), encoding="utf-8")
    print("\n".join(lines + extra))


if __name__ == "__main__":
    main()
