"""Public benchmarks through `playbook eval --compare`'s code path (a script, not a test).

    .venv/bin/python bench/benchmarks.py [--only NAME ...] [--threads N]

Runs, on ../shared/benchmarks/: BANKING77 with 10 alternates per intent drawn by Casanueva et
al.'s sampler, with the first 10 in file order (the folder's own entries.jsonl), and with every
training utterance; StackFAQ at pair level and thread level. Prints one table and writes the
full playbook-eval/1 documents to bench/results/benchmarks.json. Takes several minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.engine.engine import load_embedder  # noqa: E402
from app.evaluation.baselines import comparison_systems, temporary_engine  # noqa: E402
from app.evaluation.queries import load_queries  # noqa: E402
from app.evaluation.scoring import SystemResult, run_system, to_json  # noqa: E402
from app.evaluation.systems import EngineSystem  # noqa: E402
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


def run_set(name: str, embedder: object, settings: Settings, workdir: Path,
            ) -> tuple[list[SystemResult], KnowledgeBase]:
    make, queries, _ = SETS[name]
    kb = load_knowledge(make(workdir))
    engine = temporary_engine(kb, embedder, settings, workdir / "engine")  # type: ignore[arg-type]
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
    parser.add_argument("--only", nargs="*", choices=sorted(SETS), default=list(SETS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "benchmarks.json")
    args = parser.parse_args()

    settings = Settings(_env_file=None, threads=args.threads)  # type: ignore[call-arg]
    embedder = load_embedder(settings)
    documents = {}
    lines = [f"{'set':<18} {'system':<21} {'top1/P@1':>8} {'MRR':>6} {'R@5':>6} {'MAP':>6} "
             f"{'P@3':>6} {'p50ms':>6}  reference"]
    for name in args.only:
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
    print("\n".join(lines))


if __name__ == "__main__":
    main()
