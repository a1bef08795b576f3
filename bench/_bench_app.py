"""Reference servers for bench/http_load.py, with the shipping API's /api/ask shape:

- BENCH_MODE=encode: the ONNX encoder alone (the floor: HTTP + one encode, no search);
- BENCH_MODE=naive: sentence-transformers on torch + FAISS flat over the questions only.

Run as `uvicorn --factory bench._bench_app:make_app`. The endpoints are `def`, as in app/web/api.py.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


class Ask(BaseModel):
    question: str


def make_app() -> FastAPI:
    from app.config import Settings
    from app.embedding.loader import load_embedder
    from app.knowledge.playbook import load_knowledge

    settings = Settings()
    app = FastAPI()
    if os.environ.get("BENCH_MODE") == "naive":
        from bench.latency import NaiveTorch

        kb = load_knowledge(settings.knowledge_dir)
        naive = NaiveTorch(settings.resolved_model_path(), kb.entries,
                           settings.resolved_threads())

        @app.post("/api/ask")
        def ask_naive(body: Ask) -> dict[str, Any]:
            return {"entry": naive.ask(body.question)}

        return app
    embedder = load_embedder(settings)

    @app.post("/api/ask")
    def ask_encode(body: Ask) -> dict[str, Any]:
        return {"dimension": int(embedder.encode([body.question]).shape[1])}

    return app
