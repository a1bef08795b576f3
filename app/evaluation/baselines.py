"""The designs a user would otherwise pick, run beside the shipping engine by `eval --compare`.

- naive: MiniLM over the entries' seed questions only (no alternates, no glossary), bare cosine.
  It always answers with its nearest entry (a bare nearest-neighbour design has no notion of
  "no confident match"), and shows the cosine, clipped to [0, 1], as its confidence.
- bm25: BM25 (bm25s, English stop words) over each entry's question + alternates + answer as
  one document. It answers unless no query word occurs in any entry (every score 0); a query
  made only of stop words finds nothing (an empty ranking, refused). It has no confidence, so
  it gets no calibration figures.
- engine-no-alternates: the shipping engine built from the same knowledge with every alternate
  removed: what the alternates are worth.

Every system shares the one loaded embedder, so the model loads once per process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from app.config import Settings
from app.embedding.embedder import Embedder
from app.engine.engine import Engine
from app.evaluation.queries import slice_alternates
from app.evaluation.systems import EngineSystem, Response, System
from app.files import write_atomic
from app.knowledge.playbook import (
    GLOSSARY_FILE,
    OUT_OF_SCOPE_FILE,
    PLAYBOOK_FILE,
    SLOTS_FILE,
    KnowledgeBase,
    dump_playbook_yaml,
)


class NaiveBaseline:
    name = "naive"
    description = "MiniLM over the seed questions only, bare cosine, always answers"

    def __init__(self, kb: KnowledgeBase, embedder: Embedder) -> None:
        self.embedder = embedder
        self.ids = [e.id for e in kb.entries]
        self.vectors = embedder.encode([e.question for e in kb.entries])

    def run(self, query: str, depth: int) -> Response:
        # Unit vectors: the inner product is the cosine similarity.
        scores = self.vectors @ self.embedder.encode([query])[0]
        order = np.argsort(-scores, kind="stable")[:depth]
        top = float(scores[order[0]])
        return Response(tuple(self.ids[i] for i in order), top,
                        min(1.0, max(0.0, top)), answered=True)


class BM25Baseline:
    name = "bm25"
    description = "BM25 over question + alternates + answer, answers unless no word matches"

    def __init__(self, kb: KnowledgeBase) -> None:
        import bm25s

        self._bm25s = bm25s
        self.ids = [e.id for e in kb.entries]
        corpus = [" ".join((e.question, *e.alternates, e.answer)) for e in kb.entries]
        self.retriever = bm25s.BM25()
        self.retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False),
                             show_progress=False)

    def run(self, query: str, depth: int) -> Response:
        tokens = self._bm25s.tokenize([query], stopwords="en", return_ids=False,
                                      show_progress=False)[0]
        if not tokens:  # only stop words: nothing to search for (bm25s raises on an empty query)
            return Response((), None, None, answered=False)
        scores = np.asarray(self.retriever.get_scores(tokens), dtype=np.float64)
        order = np.argsort(-scores, kind="stable")[:depth]
        top = float(scores[order[0]])
        return Response(tuple(self.ids[i] for i in order), top, None, answered=top > 0.0)


def write_knowledge(kb: KnowledgeBase, folder: Path) -> Path:
    """Write `kb` as a knowledge folder that load_knowledge reads back: a playbook.yaml (with
    glossary) or, for the benchmarks' shape, an entries.jsonl; either with its out-of-scope
    examples beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    if kb.out_of_scope:
        write_atomic(folder / OUT_OF_SCOPE_FILE, "\n".join(kb.out_of_scope) + "\n")
    if kb.path is not None and kb.path.suffix == ".jsonl":
        lines = [json.dumps({"id": e.id, "question": e.question, "answer": e.answer,
                             "alternates": list(e.alternates), "tags": list(e.tags)},
                            ensure_ascii=False) for e in kb.entries]
        write_atomic(folder / "entries.jsonl", "\n".join(lines) + "\n")
        return folder
    write_atomic(folder / PLAYBOOK_FILE, dump_playbook_yaml(kb.entries, kb.needs_review, kb.retired))
    if kb.glossary:
        write_atomic(folder / GLOSSARY_FILE,
                     yaml.safe_dump(kb.glossary, allow_unicode=True, sort_keys=False))
    slots = kb.path.parent / SLOTS_FILE if kb.path is not None else None
    if slots is not None and slots.exists():  # the conditions in playbook.yaml refer to it
        write_atomic(folder / SLOTS_FILE, slots.read_text(encoding="utf-8"))
    return folder


def temporary_engine(kb: KnowledgeBase, embedder: Embedder, settings: Settings,
                     workdir: Path) -> Engine:
    """An Engine over `kb` with its own index under `workdir` (nothing of the project's touched)."""
    knowledge_dir = write_knowledge(kb, workdir / "knowledge")
    engine_settings = settings.model_copy(update={"knowledge_dir": knowledge_dir,
                                                  "index_dir": workdir / "index"})
    engine = Engine(engine_settings, embedder)
    engine.load()
    return engine


def comparison_systems(kb: KnowledgeBase, engine: Any, settings: Settings,
                       workdir: Path) -> list[System]:
    """The baselines for `--compare`, built on the shipping engine's knowledge and embedder."""
    without = temporary_engine(slice_alternates(kb, 0), engine.embedder, settings,
                               workdir / "no-alternates")
    return [
        NaiveBaseline(kb, engine.embedder),
        BM25Baseline(kb),
        EngineSystem(without, name="engine-no-alternates",
                     description="the shipping engine built with every alternate removed"),
    ]
