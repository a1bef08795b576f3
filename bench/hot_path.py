"""Where a question's time goes outside the encoder, and the hot path's own code measured against
a baseline revision's, side by side in one run.

    .venv/bin/python -m bench.hot_path [--baseline HEAD] [--rounds 7] [--profile]

1. Engine stages, no HTTP: each step of Engine.ask timed alone over the seed eval queries, and
   Engine.ask whole with the real encoder and with a cached one (the engine's own work).
2. Baseline against working tree: the modules in HOT_MODULES are loaded a second time from
   `git show BASELINE:path` and run beside the current ones, in alternating blocks; their
   outputs must be identical (rankings to the last bit, mentions, whole answers).
3. HTTP in process, no network: POST /api/ask through the app's whole ASGI stack with the engine's
   answers precomputed (what the stack costs a request, wall and CPU), and without the access
   log or the thread hop (what each costs).
4. --profile: pyinstrument's flat profile of Engine.ask and of the ASGI path (needs
   `pip install pyinstrument` in .venv; measurement only, not a dependency).

Ratios are within this run; absolute times move ±20-40 % between runs on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import logging
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np

from bench._common import RESULTS, ROOT, SEED_KNOWLEDGE, eval_queries, print_table, write_result
from bench.latency import engine_for

HOT_MODULES = ("app.ranking.ranker", "app.knowledge.mentions")
# Questions that mention slot values (the eval set has few), for the identity check.
MENTIONS = (
    "Best Buy order placed 3 weeks ago still not delivered",
    "cx has 12 tracking numbers for one Home Depot PO",
    "ordered from amzn yesterday, tracking not updated",
    "it takes 2 weeks to ship from wayfair, customer asking",
    "target order within the last 5 days, Target says lost",
    "over a month ago from Lowes, more than 3 tracking numbers",
    "bestbuy package shipped this morning, 24 hrs no movement",
    "Bed Bath & Beyond order 2-3 business days late, two tracking numbers",
    "a couple of days ago b&h photo order, not within 2 days SLA",
)


# --- loading the baseline ----------------------------------------------------------------------


def identity_questions() -> list[str]:
    """Every labelled question the project has (the eval, holdout and trust sets) and MENTIONS."""
    found = [json.loads(line)["query"] for path in sorted((SEED_KNOWLEDGE / "eval").glob("*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(dict.fromkeys([*found, *MENTIONS]))


def baseline_module(name: str, revision: str) -> types.ModuleType:
    """`name` as it was at `revision`, loaded beside the current module."""
    path = name.replace(".", "/") + ".py"
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"baseline_{name.replace('.', '_')}")
    module.__file__ = f"{revision}:{path}"
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


# --- timing ------------------------------------------------------------------------------------


def per_item_us(blocks: dict[str, Callable[[], int]], rounds: int) -> dict[str, list[float]]:
    """Each round runs every block once, in rotating order; a block returns how many items it
    did. Microseconds per item, one figure per round."""
    names = list(blocks)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            blocks[name]()  # warm-up after the others ran
            started = time.perf_counter()
            items = blocks[name]()
            samples[name].append((time.perf_counter() - started) / items * 1e6)
    return samples


def over(items: Sequence[Any], call: Callable[[Any], Any]) -> Callable[[], int]:
    def block() -> int:
        for item in items:
            call(item)
        return len(items)

    return block


# --- 1 and 2: the engine -----------------------------------------------------------------------


class CachedEncoder:
    """The real encoder's vectors, looked up: Engine.ask timed without the encoder's cost."""

    def __init__(self, real: Any, texts: Sequence[str]) -> None:
        self.real = real
        self.encoder = real.encoder
        self.vectors = {text: real.encode([text])[0] for text in texts}

    def encode(self, texts: Sequence[str]) -> Any:
        for text in texts:  # what the engine makes of a long paste beyond its windows, once
            if text not in self.vectors:
                self.vectors[text] = self.real.encode([text])[0]
        return np.stack([self.vectors[t] for t in texts])


@contextmanager
def baseline_engine(engine: Any, old: dict[str, types.ModuleType]) -> Iterator[None]:
    """The engine with the baseline's ranker and mention extraction swapped in."""
    import app.engine.engine as engine_module

    state = engine._state
    current = getattr(engine_module, "extract_mentions")  # noqa: B009
    engine._state = replace(state, ranker=old["app.ranking.ranker"].Ranker(
        state.index, state.knowledge.entries))
    setattr(engine_module, "extract_mentions", old["app.knowledge.mentions"].extract_mentions)  # noqa: B010
    try:
        yield
    finally:
        engine._state = state
        setattr(engine_module, "extract_mentions", current)  # noqa: B010


def ranking_key(ranked: Sequence[Any]) -> list[tuple[str, float, str]]:
    return [(s.entry.id, s.score, s.matched_text) for s in ranked]


def engine_section(engine: Any, old: dict[str, types.ModuleType], rounds: int,
                   results: dict[str, Any]) -> None:
    from app.engine.question import clean_question
    from app.engine.windows import windows
    from app.knowledge.mentions import extract_mentions
    from app.ranking.answers import to_answer

    state = engine._current()
    questions = [q for q, _ in eval_queries()]
    every = identity_questions()
    every_corrected = [state.speller.correct(clean_question(
        q, engine.settings.max_question_chars, lines=True)) for q in every]
    texts = [clean_question(q, engine.settings.max_question_chars, lines=True)
             for q in questions]
    corrected = [state.speller.correct(t) for t in texts]
    expanded = [state.glossary.expand(t) for t in corrected]
    vectors = [engine.embedder.encode([t])[0] for t in expanded]
    slots = state.knowledge.slots
    mentions = [extract_mentions(t, slots) for t in corrected]
    vague = [state.specificity.cards(t) for t in corrected]
    ranked = [state.ranker.rank(v, 4) for v in vectors]
    calibration = state.index.manifest.calibration
    real_encoder = engine.embedder
    cached = CachedEncoder(real_encoder, [state.glossary.expand(w) for t in every_corrected
                                          for w in windows(t)])
    old_ranker = old["app.ranking.ranker"].Ranker(state.index, state.knowledge.entries)
    old_mentions = old["app.knowledge.mentions"].extract_mentions

    # Identity first: a faster hot path that answers differently is no use.
    tags = sorted({t for e in state.knowledge.entries for t in e.tags})
    for text in every_corrected:
        vector = cached.encode([state.glossary.expand(text)])[0]
        for limit in (1, 4, 6, len(state.knowledge.entries) + 2):
            assert ranking_key(old_ranker.rank(vector, limit)) == ranking_key(
                state.ranker.rank(vector, limit)), "rankings differ"
        for tag in tags[:6]:
            assert ranking_key(old_ranker.rank(vector, 4, [tag])) == ranking_key(
                state.ranker.rank(vector, 4, [tag])), f"rankings with tag {tag} differ"
    for text in every_corrected:
        assert old_mentions(text, slots) == extract_mentions(text, slots), f"mentions: {text}"
    engine.embedder = cached
    try:
        new_answers = [engine.ask(q) for q in every]
        with baseline_engine(engine, old):
            old_answers = [engine.ask(q) for q in every]
    finally:
        engine.embedder = real_encoder
    assert old_answers == new_answers, "answers differ"
    print(f"identical outputs, baseline and now, on {len(every)} questions (knowledge/eval/*.jsonl "
          f"and {len(MENTIONS)} with mentions): rankings at 4 depths and {min(6, len(tags))} tag "
          "filters (ids, scores to the bit, texts), mentions, whole answers")

    n = range(len(texts))
    stages = per_item_us({
        "clean_question": over(questions, lambda q: clean_question(q, 10_000)),
        "speller.correct": over(texts, state.speller.correct),
        "extract_mentions": over(corrected, lambda t: extract_mentions(t, slots)),
        "specificity.cards": over(corrected, state.specificity.cards),
        "windows": over(corrected, windows),
        "glossary.expand": over(corrected, state.glossary.expand),
        "ranker.rank (depth 4)": over(vectors, lambda v: state.ranker.rank(v, 4)),
        "to_answer": over(list(n), lambda i: to_answer(texts[i], ranked[i], calibration, 3,
                                                      mentions[i], vague[i])),
        "encode (real encoder)": over(expanded, lambda t: real_encoder.encode([t])),
    }, rounds)
    timed = {name: min(s) for name, s in stages.items()}
    own = sum(v for k, v in timed.items() if not k.startswith("encode"))
    print_table("1. Engine.ask step by step (us per question, best of rounds; seed eval "
                "queries)", ["step", "us", "share of the steps outside the encoder"],
                [[k, v, f"{v / own:.0%}" if not k.startswith("encode") else "-"]
                 for k, v in timed.items()])

    def with_encoder(encoder: Any, baseline: bool) -> Callable[[], int]:
        def block() -> int:
            engine.embedder = encoder
            try:
                if baseline:
                    with baseline_engine(engine, old):
                        return over(questions, engine.ask)()
                return over(questions, engine.ask)()
            finally:
                engine.embedder = real_encoder

        return block

    compared = per_item_us({
        "rank: baseline": over(vectors, lambda v: old_ranker.rank(v, 4)),
        "rank: now": over(vectors, lambda v: state.ranker.rank(v, 4)),
        "extract_mentions: baseline": over(corrected, lambda t: old_mentions(t, slots)),
        "extract_mentions: now": over(corrected, lambda t: extract_mentions(t, slots)),
        "Engine.ask, cached encoder: baseline": with_encoder(cached, True),
        "Engine.ask, cached encoder: now": with_encoder(cached, False),
        "Engine.ask, real encoder: baseline": with_encoder(real_encoder, True),
        "Engine.ask, real encoder: now": with_encoder(real_encoder, False),
        "encode only (real encoder)": over(expanded, lambda t: real_encoder.encode([t])),
    }, rounds)
    figures = {name: min(s) for name, s in compared.items()}
    medians = {name: statistics.median(s) for name, s in compared.items()}
    rows = []
    for name, value in figures.items():
        label, _, which = name.rpartition(": ")
        base = f"{label}: baseline"
        best, middle = ((value / figures[base], medians[name] / medians[base]) if which == "now"
                        else (1.0, 1.0))
        rows.append([name, value, medians[name], f"{best:.2f}", f"{middle:.2f}"])
    encode = figures["encode only (real encoder)"]
    print_table("2. Baseline against now (us per question; best and median of rounds)",
                ["code", "best us", "median us", "now / baseline (best)",
                 "now / baseline (median)"], rows)
    print(f"Engine.ask over a bare encode (real encoder): baseline "
          f"{figures['Engine.ask, real encoder: baseline'] - encode:.0f} us, now "
          f"{figures['Engine.ask, real encoder: now'] - encode:.0f} us a question "
          f"(encode alone {encode:.0f} us)")
    results["engine_steps_us"] = timed
    results["baseline_vs_now_us"] = {k: {"best": figures[k], "rounds": v}
                                     for k, v in compared.items()}


# --- 3: the HTTP stack, in process -------------------------------------------------------------


def asgi_caller(app: Any) -> Callable[[bytes], Any]:
    """POST /api/ask straight into the ASGI app (no socket, no HTTP parsing)."""

    async def call(body: bytes) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/api/ask",
                 "raw_path": b"/api/ask", "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1:8000"),
                             (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        assert status == [200], status

    return call


@contextmanager
def stubbed_answers(engine: Any, questions: Sequence[str]) -> Iterator[None]:
    answers = {q: engine.ask(q) for q in questions}
    engine.ask = lambda question, top_k=None, tags=(): answers[question]
    try:
        yield
    finally:
        del engine.ask


def http_section(engine: Any, rounds: int, results: dict[str, Any]) -> None:
    import app.web.api as api
    import app.web.app as web_app
    from app.config import Settings
    from app.web.logs import configure_logging

    configure_logging()
    for handler in logging.getLogger().handlers:  # the JSON lines, written but not shown
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(io.StringIO())
    settings = Settings(knowledge_dir=engine.settings.knowledge_dir,
                        index_dir=engine.settings.index_dir, db_path=RESULTS / "feedback.sqlite3")
    now_app = web_app.create_app(settings, engine)
    bodies = [json.dumps({"question": q}).encode() for q, _ in eval_queries()]
    block_size = 44  # short blocks, many rounds: the machine's load moves within a run
    access = logging.getLogger("playbook.access")
    hop = getattr(api, "run_in_threadpool")  # noqa: B009

    async def no_hop(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    def variant(app: Any, log: bool = True, thread_hop: bool = True) -> Callable[[], Any]:
        call = asgi_caller(app)

        async def block() -> tuple[float, float]:
            access.disabled = not log
            setattr(api, "run_in_threadpool", hop if thread_hop else no_hop)  # noqa: B010
            try:
                for body in bodies[:5]:
                    await call(body)
                start = next(offset) % len(bodies)
                block = (bodies * 2)[start : start + block_size]
                wall, cpu = time.perf_counter(), time.process_time()
                for body in block:
                    await call(body)
                return ((time.perf_counter() - wall) / len(block) * 1e6,
                        (time.process_time() - cpu) / len(block) * 1e6)
            finally:
                access.disabled = False
                setattr(api, "run_in_threadpool", hop)  # noqa: B010

        return block

    offset = itertools.count(0, block_size)
    variants = {
        "whole stack": variant(now_app),
        "without the access log line": variant(now_app, log=False),
        "engine called on the event loop (no thread hop)": variant(now_app,
                                                                        thread_hop=False),
    }

    async def measure() -> dict[str, list[tuple[float, float]]]:
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        names = list(variants)
        for round_number in range(rounds * 4):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(await variants[name]())
        return samples

    with stubbed_answers(engine, [q for q, _ in eval_queries()]):
        samples = asyncio.run(measure())
    wall = {k: min(w for w, _ in v) for k, v in samples.items()}
    cpu = {k: min(c for _, c in v) for k, v in samples.items()}
    base_wall, base_cpu = wall["whole stack"], cpu["whole stack"]
    print_table("3. POST /api/ask through the ASGI app in process, engine answers precomputed "
                "(us per request, best of rounds; CPU counts every thread)",
                ["stack", "wall us", "CPU us", "wall / whole", "CPU / whole"],
                [[k, wall[k], cpu[k], f"{wall[k] / base_wall:.2f}", f"{cpu[k] / base_cpu:.2f}"]
                 for k in variants])
    results["asgi_us"] = {k: {"wall": wall[k], "cpu": cpu[k], "rounds": samples[k]}
                          for k in variants}


# --- 4: profiles -------------------------------------------------------------------------------


def profile_section(engine: Any) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("\n--profile needs pyinstrument: .venv/bin/pip install pyinstrument")
        return
    questions = [q for q, _ in eval_queries()]
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(3):
        for question in questions:
            engine.ask(question)
    profiler.stop()
    print("\n4a. Engine.ask, real encoder: flat profile (self time)")
    print("\n".join(profiler.output_text(flat=True).splitlines()[:30]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quantize", action="store_true", help="the int8 encoder")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    old = {name: baseline_module(name, args.baseline) for name in HOT_MODULES}
    engine = engine_for(2, quantize=args.quantize)
    results: dict[str, Any] = {"baseline": args.baseline, "rounds": args.rounds,
                               "quantize": args.quantize}
    engine_section(engine, old, args.rounds, results)
    if not args.skip_http:
        http_section(engine, args.rounds, results)
    if args.profile:
        profile_section(engine)
    write_result("hot_path", results)


if __name__ == "__main__":
    main()
