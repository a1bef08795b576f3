"""Can the int8 ONNX encoder (PLAYBOOK_QUANTIZE=1) be the default? fp32 and int8 side by side, in
one run, on every labelled set the project has.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.quantization [--only SET ...] [--threads 2]

Sets (each built and asked once per precision, every index in its own temporary folder, the
int8 and fp32 engines sharing nothing but the ONNX export cache, bench/results/onnx-cache/):
- seed-gate: knowledge/eval/queries.jsonl over ./knowledge, as `make gate` runs it (the engine
  of `playbook eval`); int8 must also pass the gate's own --fail-under limits, read from the
  Makefile;
- trust, holdout: knowledge/eval/trust.jsonl and holdout.jsonl over ./knowledge (category sets);
- banking77-10shot, stackfaq-pairs, stackfaq-threads: bench/benchmarks.py's sets, its makers;
- banking77-oos/no-oos-examples, banking77-oos/with-oos-examples: bench/benchmarks.py's
  held-out-intent sets (19 of 77 intents asked as out of scope), its makers and AUROC.
Only the shipping engine is run (no baselines): the question is what the encoder does to it.

The rule, fixed before the run. int8 may become the default only if, on every set:
- a rate (top-1 = P@1, out-of-scope refused, in-scope refused, wrong at >= 0.9) is not worse than
  fp32's by more than 0.5 percentage points, or by one query of that rate's denominator where a
  set is too small to resolve 0.5 pp (tolerance = max(0.005, 1 / n));
- ECE (10 bins) is not higher by more than 0.01; AUROC (out of scope) not lower by more than 0.005;
- and int8 passes `make gate`'s absolute limits on the seed set.
MRR, MAP and R@3 are printed for information. Latency is not compared here (bench/latency.py
does that, interleaved): these sets run one after the other on a noisy machine.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.embedding.embedder import Embedder
from app.embedding.loader import load_embedder
from app.embedding.onnx import FP32_FILE, read_sidecar, sidecar_path
from app.embedding.onnx_export import export_onnx
from app.engine.engine import Engine
from app.evaluation.baselines import temporary_engine
from app.evaluation.queries import load_queries
from app.evaluation.scoring import SystemResult, check_thresholds, parse_threshold, run_system
from app.evaluation.systems import EngineSystem
from app.knowledge.playbook import load_knowledge
from bench import benchmarks
from bench._common import (
    EVAL_QUERIES,
    RESULTS,
    ROOT,
    SEED_INDEX,
    SEED_KNOWLEDGE,
    print_table,
    write_result,
)

ONNX_CACHE = RESULTS / "onnx-cache"
PRECISIONS = ("fp32", "int8")
RATE_TOLERANCE = 0.005
ECE_TOLERANCE = 0.01
AUROC_TOLERANCE = 0.005

# metric -> (higher is better, denominator: "in" in-scope, "oos" out-of-scope, "all", or None
# for an absolute tolerance); metrics not here are shown for information only.
RULED: dict[str, tuple[bool, str | None]] = {
    "top1": (True, "in"), "abstention": (True, "oos"), "wrong_refusal": (False, "in"),
    "confident_wrong": (False, "all"), "ece": (False, None), "auroc": (True, None),
}
INFO = ("recall_at_3", "mrr", "map")
LABELS = {"top1": "top-1 (P@1)", "abstention": "OOS refused", "wrong_refusal": "in-scope refused",
          "confident_wrong": "wrong at >=0.9", "ece": "ECE", "auroc": "AUROC (OOS)",
          "recall_at_3": "R@3", "mrr": "MRR", "map": "MAP"}


@dataclass
class Run:
    """One engine on one set at one precision."""

    result: SystemResult
    build_seconds: float
    ask_seconds: float
    extra: dict[str, float] = field(default_factory=dict)  # ruled metrics beyond metrics()
    details: dict[str, Any] = field(default_factory=dict)  # kept in the JSON result only

    def values(self) -> dict[str, float | None]:
        return {**self.result.metrics(), **self.extra}


# --- the sets ------------------------------------------------------------------------------------

Maker = Callable[[Embedder, Settings, Path], Run]


def asked(engine: Engine, queries: Path, build_seconds: float) -> Run:
    cases = load_queries(queries, [e.id for e in engine.entries()])
    started = time.perf_counter()
    result = run_system(EngineSystem(engine), cases)
    return Run(result, build_seconds, time.perf_counter() - started)


def seed_set(queries: Path) -> Maker:
    """The project's own knowledge, as `playbook eval QUERIES` scores it (index in workdir)."""

    def make(embedder: Embedder, settings: Settings, workdir: Path) -> Run:
        engine_settings = settings.model_copy(update={"knowledge_dir": SEED_KNOWLEDGE,
                                                      "index_dir": workdir / "index"})
        started = time.perf_counter()
        engine = Engine(engine_settings, embedder)
        engine.load()
        return asked(engine, queries, time.perf_counter() - started)

    return make


def public_set(name: str) -> Maker:
    """One of bench/benchmarks.py's sets, through its own entries maker."""

    def make(embedder: Embedder, settings: Settings, workdir: Path) -> Run:
        entries, queries, _ = benchmarks.SETS[name]
        kb = load_knowledge(entries(workdir))
        started = time.perf_counter()
        engine = temporary_engine(kb, embedder, settings, workdir / "engine")
        return asked(engine, queries, time.perf_counter() - started)

    return make


def oos_set(examples: bool) -> Maker:
    """bench/benchmarks.py's banking77-oos variant, with its AUROC and unseen-intent recall."""

    def make(embedder: Embedder, settings: Settings, workdir: Path) -> Run:
        held_out = benchmarks.held_out_intents()
        entries, queries = benchmarks.write_oos_set(workdir / "set", held_out, examples)
        kb = load_knowledge(entries)
        started = time.perf_counter()
        engine = temporary_engine(kb, embedder, settings, workdir / "engine")
        run = asked(engine, queries, time.perf_counter() - started)
        intent_of = {number: str(row["intent"])
                     for number, row in enumerate(benchmarks.read_jsonl(queries), start=1)}
        unseen = set(held_out[benchmarks.OOS_EXAMPLE_INTENTS:])
        figures = benchmarks.oos_figures(run.result, unseen, intent_of)
        run.extra["auroc"] = float(figures["auroc"])  # type: ignore[arg-type]
        run.details["oos_figures"] = figures
        return run

    return make


EVAL_DIR = SEED_KNOWLEDGE / "eval"
SETS: dict[str, Maker] = {
    "seed-gate": seed_set(EVAL_QUERIES),
    "trust": seed_set(EVAL_DIR / "trust.jsonl"),
    "holdout": seed_set(EVAL_DIR / "holdout.jsonl"),
    "banking77-10shot": public_set("banking77-10shot"),
    "banking77-oos/no-oos-examples": oos_set(examples=False),
    "banking77-oos/with-oos-examples": oos_set(examples=True),
    "stackfaq-pairs": public_set("stackfaq-pairs"),
    "stackfaq-threads": public_set("stackfaq-threads"),
}


# --- the rule ------------------------------------------------------------------------------------


def gate_limits() -> list[tuple[str, float]]:
    """The --fail-under limits of the Makefile's `gate` target, as `make gate` applies them."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = makefile.split("\ngate:", 1)[1].split("\n\n", 1)[0]
    return [parse_threshold(m) for m in re.findall(r"--fail-under\s+(\S+)", target)]


def tolerance(metric: str, counts: dict[str, int]) -> float:
    denominator = RULED[metric][1]
    if denominator is None:
        return ECE_TOLERANCE if metric == "ece" else AUROC_TOLERANCE
    return max(RATE_TOLERANCE, 1 / counts[denominator]) if counts[denominator] else 0.0


def judged(metric: str, fp32: float | None, int8: float | None,
           counts: dict[str, int]) -> tuple[float | None, float | None, bool | None]:
    """(int8 - fp32, allowed worsening, passed); passed is None for an information-only row."""
    if fp32 is None or int8 is None:
        return None, None, None
    diff = int8 - fp32
    if metric not in RULED:
        return diff, None, None
    allowed = tolerance(metric, counts)
    worse = -diff if RULED[metric][0] else diff
    return diff, allowed, worse <= allowed + 1e-9


def counts_of(result: SystemResult) -> dict[str, int]:
    return {"in": len(result.in_scope), "oos": len(result.out_of_scope),
            "all": len(result.outcomes)}


def flips(fp32: SystemResult, int8: SystemResult) -> dict[str, Any]:
    """Paired differences, query by query: top-1 lost / gained, and answered-vs-refused flips."""
    pairs = list(zip(fp32.outcomes, int8.outcomes, strict=True))
    lost = [a.case.query for a, b in pairs if a.case.in_scope and a.top_correct
            and not b.top_correct]
    gained = [a.case.query for a, b in pairs if a.case.in_scope and b.top_correct
              and not a.top_correct]
    decided = sum(a.response.answered != b.response.answered for a, b in pairs)
    changed_top = sum(a.top != b.top for a, b in pairs)
    return {"top1_lost": lost, "top1_gained": gained, "decision_flips": decided,
            "top_entry_changed": changed_top}


def query_cosines(embedders: dict[str, Embedder], texts: Sequence[str]) -> dict[str, float]:
    """How close the int8 query vectors are to the fp32 ones (both unit length)."""
    cosine = (embedders["fp32"].encode(texts) * embedders["int8"].encode(texts)).sum(axis=1)
    return {"mean": float(cosine.mean()), "p01": float(np.percentile(cosine, 1)),
            "min": float(cosine.min())}


# --- running -------------------------------------------------------------------------------------


def shared_onnx_cache() -> Path:
    """bench/results/onnx-cache, holding links to ./index/onnx's fp32 export (no re-export, no
    torch) and, after the first run, the int8 model quantised from it: nothing outside
    bench/results is written."""
    for folder in sorted((SEED_INDEX / "onnx").glob("*/")):
        source = folder / FP32_FILE
        if not (source.is_file() and sidecar_path(source).is_file()):
            continue
        target = ONNX_CACHE / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for path in (source, sidecar_path(source)):
            link = target / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
    return ONNX_CACHE


def cell(metric: str, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    if metric in ("ece", "auroc", "mrr", "map"):
        return f"{value:+.3f}" if signed else f"{value:.3f}"
    return f"{value * 100:+.2f} pp" if signed else f"{value:.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=list(SETS), default=list(SETS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    started_run = time.perf_counter()
    print(__doc__.split("\n\n", 3)[3].strip(), flush=True)  # the rule, before any number

    base = Settings(_env_file=None, threads=args.threads, encoder="onnx",  # type: ignore[call-arg]
                    onnx_cache_dir=shared_onnx_cache())
    settings = {p: base.model_copy(update={"quantize": p == "int8"}) for p in PRECISIONS}
    embedders = {p: load_embedder(settings[p]) for p in PRECISIONS}
    int8_export = export_onnx(base.resolved_model_path(), ONNX_CACHE, quantize=True)
    sidecar = read_sidecar(int8_export) or {}
    print(f"\nint8 export: {int8_export.relative_to(ROOT)} (min cosine vs fp32 on its probes: "
          f"{sidecar.get('min_cosine_vs_fp32')}); encoders: "
          f"{', '.join(e.encoder for e in embedders.values())}", flush=True)

    gate = gate_limits()
    rows: list[list[str]] = []
    flip_rows: list[list[str]] = []
    documents: dict[str, Any] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-quantization-") as tmp:
        for name in args.only:
            runs: dict[str, Run] = {}
            for precision in PRECISIONS:
                workdir = Path(tmp) / name.replace("/", "-") / precision
                workdir.mkdir(parents=True)
                runs[precision] = SETS[name](embedders[precision], settings[precision], workdir)
                print(f"  {name} {precision}: built in {runs[precision].build_seconds:.0f}s, "
                      f"asked in {runs[precision].ask_seconds:.0f}s", flush=True)
            fp32, int8 = runs["fp32"], runs["int8"]
            counts = counts_of(fp32.result)
            values = {p: r.values() for p, r in runs.items()}
            size = f"{counts['in']}/{counts['oos']}"
            verdicts = []
            for metric in (*RULED, *INFO):
                if values["fp32"].get(metric) is None:
                    continue
                diff, allowed, passed = judged(metric, values["fp32"][metric],
                                               values["int8"][metric], counts)
                verdicts.append({"metric": metric, "fp32": values["fp32"][metric],
                                 "int8": values["int8"][metric], "diff": diff,
                                 "allowed": allowed, "passed": passed})
                if passed is False:
                    failures.append(f"{name}: {LABELS[metric]}")
                rows.append([name, size, LABELS[metric], cell(metric, values["fp32"][metric]),
                             cell(metric, values["int8"][metric]), cell(metric, diff, True),
                             "-" if allowed is None else cell(metric, allowed),
                             {True: "ok", False: "FAIL", None: "info"}[passed]])
            gates = {}
            if name == "seed-gate":
                for precision, run in runs.items():
                    checked = check_thresholds(run.result, gate)
                    gates[precision] = [t.describe() for t in checked]
                    if precision == "int8" and not all(t.passed for t in checked):
                        failures.append("seed-gate: make gate limits")
                    rows.append([name, size, "make gate limits", "", "", "", "",
                                 f"{precision}: " + ("ok" if all(t.passed for t in checked)
                                                     else "FAIL")])
            paired = flips(fp32.result, int8.result)
            cosines = query_cosines(embedders, [o.case.query for o in fp32.result.outcomes])
            flip_rows.append([name, str(counts["all"]), str(len(paired["top1_lost"])),
                              str(len(paired["top1_gained"])), str(paired["decision_flips"]),
                              str(paired["top_entry_changed"]), f"{cosines['mean']:.4f}",
                              f"{cosines['min']:.4f}"])
            documents[name] = {
                "counts": counts, "verdicts": verdicts, "gate": gates, "paired": paired,
                "query_cosine_int8_vs_fp32": cosines,
                "metrics": {p: values[p] for p in PRECISIONS},
                "categories": {p: {c: part.metrics() for c, part in r.result.categories().items()}
                               for p, r in runs.items()},
                "details": {p: r.details for p, r in runs.items()},
                "seconds": {p: {"build": r.build_seconds, "ask": r.ask_seconds}
                            for p, r in runs.items()},
            }
    wall = time.perf_counter() - started_run
    print_table("fp32 vs int8, same run (n = in-scope/out-of-scope queries; allowed = largest "
                "worsening the rule accepts)",
                ["set", "n", "metric", "fp32", "int8", "int8 - fp32", "allowed", "rule"], rows)
    print_table("Paired, query by query (cosine: int8 vs fp32 vectors of the set's queries)",
                ["set", "queries", "top-1 lost", "top-1 gained", "answer/refuse flips",
                 "top entry changed", "mean cosine", "min cosine"], flip_rows)
    verdict = "yes" if not failures else "no (fails: " + "; ".join(failures) + ")"
    print(f"\nint8 as the default: {verdict}")
    print(f"wall time: {wall:.0f} s")
    write_result("quantization", {
        "rule": {"rate_tolerance": RATE_TOLERANCE, "ece_tolerance": ECE_TOLERANCE,
                 "auroc_tolerance": AUROC_TOLERANCE, "one_query_floor": True,
                 "gate": [f"{m}={v:g}" for m, v in gate]},
        "settings": {p: s.model_dump(mode="json", include={"threads", "encoder", "quantize",
                                                          "head_weight", "top_k"})
                     for p, s in settings.items()},
        "int8_export": read_sidecar(int8_export),
        "sets": documents, "failures": failures, "int8_default": not failures,
        "wall_seconds": wall,
    })


if __name__ == "__main__":
    main()
