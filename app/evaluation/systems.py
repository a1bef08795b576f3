"""The systems an evaluation compares: anything with `name`, `description` and
`run(query, depth) -> Response`: the local Engine, a running server (through /api/search and
/api/ask), or a baseline (app.evaluation.baselines)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from app.engine.engine import Engine
from app.errors import PlaybookError


@dataclass(frozen=True)
class Response:
    """What a system returned for one query.

    `ranking` holds entry ids best first; `answered` is False when the system said "no confident
    match"; `confidence` is None for systems that have no calibrated confidence."""

    ranking: tuple[str, ...]
    top_score: float | None
    confidence: float | None
    answered: bool
    flagged: bool = False  # ambiguous, or a near entry ruled out by the question's conditions


class System(Protocol):
    name: str
    description: str

    def run(self, query: str, depth: int) -> Response: ...


class EngineSystem:
    """The shipping engine in this process: one `ask` per query, as an agent would."""

    description = "shipping engine: max cosine over question+alternates, calibrated confidence"

    def __init__(self, engine: Engine, name: str = "engine", description: str | None = None) -> None:
        self.engine = engine
        self.name = name
        if description is not None:
            self.description = description

    def entry_ids(self) -> list[str]:
        return [e.id for e in self.engine.entries()]

    def questions(self) -> dict[str, str]:
        """Each entry's question, by id (the report names entries by their question)."""
        return {e.id: e.question for e in self.engine.entries()}

    def run(self, query: str, depth: int) -> Response:
        answer = self.engine.ask(query, top_k=depth)
        matches = ([answer.best] if answer.best is not None else []) + list(answer.alternatives)
        return Response(
            ranking=tuple(m.entry.id for m in matches),
            top_score=matches[0].score if matches else None,
            confidence=answer.confidence,
            answered=answer.matched,
            flagged=answer.ambiguous or bool(answer.ruled_out),
        )


class RemoteSystem:
    """A running server: ranking and scores from GET /api/search, the decision and confidence
    from POST /api/ask (its latency is the one recorded)."""

    description = "a running server, through /api/search and /api/ask"

    def __init__(self, url: str, client: Any = None, name: str = "server") -> None:
        import httpx

        self.name = name
        self.url = url.rstrip("/")
        self.client = client or httpx.Client(base_url=self.url, timeout=30.0)

    def entry_ids(self) -> list[str]:
        return list(self.questions())

    def questions(self) -> dict[str, str]:
        return {e["id"]: e["question"] for e in self._json(self.client.get("/api/entries"))}

    def health(self) -> dict[str, Any]:
        """GET /healthz: the server's model, encoder and knowledge hash."""
        found: dict[str, Any] = self._json(self.client.get("/healthz"))
        return found

    def run(self, query: str, depth: int) -> Response:
        found = self._json(self.client.get("/api/search", params={"q": query, "k": depth}))
        answer = self._json(self.client.post("/api/ask", json={"question": query, "top_k": 1}))
        results = found["results"]
        return Response(
            ranking=tuple(r["entry_id"] for r in results),
            top_score=results[0]["score"] if results else None,
            confidence=answer["confidence"],
            answered=answer["matched"],
            flagged=bool(answer.get("ambiguous") or answer.get("ruled_out")),
        )

    def _json(self, response: Any) -> Any:
        if response.status_code != 200:
            detail = response.text[:300]
            raise PlaybookError(f"{self.url} answered {response.status_code}: {detail}")
        return response.json()
