"""The JSON shapes of the API (and of `playbook ask --json`), built from the core records."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.responses import Response

from app.records import Answer, Entry, Match, RuledOut

MAX_TOP_K = 20
# Request bodies take JSON types as they are ("3" is not a number) and refuse unknown fields,
# so a typo such as "topk" is reported instead of silently ignored.
STRICT_BODY = ConfigDict(strict=True, extra="forbid")
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # app.engine.engine refuses these (Cc but tab/CR/LF)
# What app.engine.engine.clean_question accepts, stated for the schema only: the engine checks it and
# says in words what is wrong, which a pattern mismatch would not. app.web.app adds maxLength.
QUESTION_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
# Marks a question in the OpenAPI schema, where app.web.app sets this deployment's maxLength (other
# text, such as a workbench answer, shares the pattern but not the limit).
QUESTION_MARK = "x-playbook-question"
QUESTION_SCHEMA: dict[str, Any] = {"minLength": 1, "pattern": QUESTION_PATTERN,
                                   QUESTION_MARK: True}


def _integral_float_to_int(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# JSON counts 8.0 as the integer 8 (so does the schema); strict mode alone would refuse it.
WholeNumber = Annotated[int, BeforeValidator(_integral_float_to_int)]


class AskRequest(BaseModel):
    model_config = STRICT_BODY

    question: str = Field(description="The agent's question in plain words.",
                          json_schema_extra=QUESTION_SCHEMA)
    top_k: WholeNumber = Field(default=3, ge=0, le=MAX_TOP_K, description="How many alternatives.")
    tags: list[str] | None = Field(default=None, description="Only entries with one of these.")


class AlternativeOut(BaseModel):
    entry_id: str
    source_question: str
    answer: str
    macro: str | None
    confidence: float
    applies_when: list[str] = Field(description="The card's conditions in words, e.g. "
                                    "\"vendor is Best Buy\"; empty when it always applies.")

    @classmethod
    def from_match(cls, match: Match) -> AlternativeOut:
        return cls(entry_id=match.entry.id, source_question=match.entry.question,
                   answer=match.entry.answer, macro=match.entry.macro,
                   confidence=round(match.confidence, 4),
                   applies_when=[c.describe() for c in match.entry.conditions])


class RuledOutOut(BaseModel):
    entry_id: str
    source_question: str
    macro: str | None
    reason: str = Field(description="Why the card does not apply, e.g. \"applies to Best Buy "
                        "orders; your question mentions Home Depot\".")

    @classmethod
    def from_ruled_out(cls, ruled: RuledOut) -> RuledOutOut:
        entry = ruled.match.entry
        return cls(entry_id=entry.id, source_question=entry.question, macro=entry.macro,
                   reason=ruled.reason)


class AnswerOut(BaseModel):
    question: str
    matched: bool
    answer: str | None
    macro: str | None
    source_question: str | None
    entry_id: str | None
    tags: list[str]
    confidence: float
    ambiguous: bool
    applies_when: list[str] = Field(description="The answering card's conditions in words.")
    alternatives: list[AlternativeOut]
    ruled_out: list[RuledOutOut] = Field(description="Close cards whose condition the question "
                                         "contradicts: never the answer, shown with the reason.")
    out_of_scope: str | None = Field(
        default=None, description="Not answered because the question is nearer this line of "
        "the knowledge's out_of_scope.txt (questions the playbook does not answer) than to any "
        "card.")

    @classmethod
    def from_answer(cls, answer: Answer) -> AnswerOut:
        best = answer.best.entry if answer.best is not None else None
        return cls(
            question=answer.question,
            matched=answer.matched,
            answer=best.answer if best else None,
            macro=best.macro if best else None,
            source_question=best.question if best else None,
            entry_id=best.id if best else None,
            tags=list(best.tags) if best else [],
            confidence=round(answer.confidence, 4),
            ambiguous=answer.ambiguous,
            applies_when=[c.describe() for c in best.conditions] if best else [],
            alternatives=[AlternativeOut.from_match(m) for m in answer.alternatives],
            ruled_out=[RuledOutOut.from_ruled_out(r) for r in answer.ruled_out],
            out_of_scope=answer.out_of_scope,
        )


class SearchHit(BaseModel):
    rank: int
    entry_id: str
    source_question: str
    matched_text: str
    answer: str
    macro: str | None
    score: float = Field(description="What entries are ranked by: the best cosine of the query to "
                         "the entry's texts, plus head_weight x log p(entry | query) when the "
                         "index has an intent head (then it can be negative).")
    confidence: float
    applies_when: list[str] = Field(description="The card's conditions in words.")


class SearchOut(BaseModel):
    query: str
    results: list[SearchHit]

    @classmethod
    def from_matches(cls, query: str, matches: list[Match]) -> SearchOut:
        return cls(query=query, results=[
            SearchHit(rank=i, entry_id=m.entry.id, source_question=m.entry.question,
                      matched_text=m.matched_text, answer=m.entry.answer, macro=m.entry.macro,
                      score=round(m.score, 4), confidence=round(m.confidence, 4),
                      applies_when=[c.describe() for c in m.entry.conditions])
            for i, m in enumerate(matches, start=1)
        ])


class SourceOut(BaseModel):
    file: str
    line: int


class EntryOut(BaseModel):
    id: str
    question: str
    answer: str
    macro: str | None
    alternates: list[str]
    tags: list[str]
    source: SourceOut | None
    applies_when: list[str] = Field(description="The card's conditions, in words (empty: it "
                                    "applies whenever its question matches).")

    @classmethod
    def from_entry(cls, entry: Entry) -> EntryOut:
        source = SourceOut(file=entry.source.file, line=entry.source.line) if entry.source else None
        return cls(id=entry.id, question=entry.question, answer=entry.answer, macro=entry.macro,
                   alternates=list(entry.alternates), tags=list(entry.tags), source=source,
                   applies_when=[c.describe() for c in entry.conditions])


class HealthOut(BaseModel):
    status: str
    entries: int
    vectors: int
    model: str
    encoder: str
    knowledge_hash: str
    index_built_at: str
    index_type: str
    last_reload_error: str | None


class ErrorOut(BaseModel):
    detail: str


ERROR_DESCRIPTIONS = {
    400: "The URL is not valid UTF-8",
    401: "A valid admin token is required",
    404: "No such entry or logged question",
    409: "The phrasing would make two entries compete; the detail says which",
    413: "The body is larger than PLAYBOOK_MAX_BODY_BYTES",
    415: "The body is not JSON",
    422: "The request is invalid; the detail says how",
    429: "Too many requests from this client (PLAYBOOK_RATE_LIMIT_PER_MINUTE)",
    503: "Not ready, disabled, or feedback not saved",
}


def json_response(model: BaseModel) -> Response:
    """`model` as the JSON body, for a route that declares it as its `response_model` (the
    schema). Made, the model is validated; returned as a model, FastAPI would dump, validate and
    serialise it again (about 90 µs of a 700 µs `POST /api/ask` in process, 5 of 5 paired runs)."""
    return Response(model.model_dump_json(), media_type="application/json")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for these error statuses; every one carries {"detail": message}."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut, "description": ERROR_DESCRIPTIONS[code]} for code in codes}
    if 413 in responses:
        # Starlette answers a declared Content-Length over the limit in plain text.
        responses[413]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return responses
