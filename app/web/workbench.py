"""The knowledge workbench API (admin only): find and open entries, check a draft as it is typed,
preview its impact on real questions, publish it, and browse or restore the history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from app.engine.drafting import CheckedDraft, check_drafts
from app.engine.engine import Change, Engine
from app.errors import DraftRefused, EntryNotFound
from app.evaluation.impact import impact, labelled_cases, verdict_cases
from app.knowledge.drafts import ENTRY_ID, EntryDraft, apply_drafts
from app.knowledge.playbook import KnowledgeBase
from app.records import Entry
from app.store.history import KnowledgeHistory, restore
from app.store.verdicts import agent_verdicts
from app.web.deps import AdminDep, EngineDep, SettingsDep, StoreDep, require_admin
from app.web.schemas import QUESTION_PATTERN, STRICT_BODY, error_responses

router = APIRouter(prefix="/api/workbench",
                   responses=error_responses(400, 401, 404, 409, 413, 415, 422, 503),
                   dependencies=[Depends(require_admin)])

# Text as people type it: no control characters (tab and newlines aside), not blank.
_TEXT = Field(min_length=1, max_length=2000, pattern=QUESTION_PATTERN)


class EntryIn(BaseModel):
    model_config = STRICT_BODY

    id: str = Field(pattern=ENTRY_ID.pattern, description="Lowercase letters, digits, dashes.")
    question: str = _TEXT
    answer: str = Field(min_length=1, max_length=10_000, pattern=QUESTION_PATTERN)
    macro: str | None = Field(default=None, max_length=500, pattern=QUESTION_PATTERN,
                              description="Copied verbatim; a leading '#' is kept (the file "
                              "quotes it).")
    alternates: list[Annotated[str, _TEXT]] = Field(default_factory=list, max_length=500)
    tags: list[Annotated[str, Field(min_length=1, max_length=100, pattern=QUESTION_PATTERN)]] = Field(
        default_factory=list, max_length=50)
    conditions: dict[str, str | list[str]] = Field(
        default_factory=dict, max_length=20,
        description="Slot name -> value (see knowledge/slots.yaml), e.g. {\"vendor\": \"Best Buy\"}.")
    retired: bool = Field(default=False, description="Kept in the file, never answered.")

    def draft(self) -> EntryDraft:
        return EntryDraft(id=self.id, question=self.question, answer=self.answer,
                          macro=self.macro, alternates=tuple(self.alternates),
                          tags=tuple(self.tags), conditions=self.conditions, retired=self.retired)


class EntryOut(EntryIn):
    source: str | None = Field(description="Where the card came from (file:line).")

    @classmethod
    def of(cls, entry: Entry, retired: bool) -> EntryOut:
        return cls(id=entry.id, question=entry.question, answer=entry.answer, macro=entry.macro,
                   alternates=list(entry.alternates), tags=list(entry.tags),
                   conditions={c.slot.name: c.to_yaml_value() for c in entry.conditions},
                   retired=retired, source=str(entry.source) if entry.source else None)


class EntrySummaryOut(BaseModel):
    id: str
    question: str
    macro: str | None
    tags: list[str]
    alternates: int
    retired: bool


class EntryListOut(BaseModel):
    knowledge_hash: str = Field(description="Send it back with a publish: if the playbook "
                                "changed meanwhile, the publish is refused (409).")
    total: int
    entries: list[EntrySummaryOut]


class DraftIn(BaseModel):
    model_config = STRICT_BODY

    entries: list[EntryIn] = Field(min_length=1, max_length=100)
    base_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                                  description="The knowledge_hash the draft was started from.")


class ProblemOut(BaseModel):
    entry_id: str
    level: str = Field(description="error (blocks preview and publish), warning or info.")
    message: str


class CheckOut(BaseModel):
    ok: bool
    problems: list[ProblemOut]


class PreviewOut(CheckOut):
    impact: dict[str, Any] | None = Field(description="Questions whose answer changes (eval: "
                                          "the labelled set; agents: logged questions with a "
                                          "verdict), newly refused, and the gate figures.")


class LineChangesOut(BaseModel):
    added: list[str]
    removed: list[str]


class VersionOut(BaseModel):
    version: int
    recorded_at: str
    who: str
    action: str = Field(description="publish, review-add, review-out-of-scope, restore, "
                        "import, edit or file-edit.")
    restored_from: int | None
    knowledge_hash: str
    changes: list[dict[str, Any]]
    out_of_scope_changes: LineChangesOut = Field(
        description="The questions this version added to and removed from out_of_scope.txt.")


class VersionTextOut(VersionOut):
    playbook: str
    out_of_scope: str | None = Field(description="The whole out_of_scope.txt (\"\" when there "
                                     "was none); null for a version recorded before that file "
                                     "was kept, which a restore leaves as it is.")


class PublishOut(BaseModel):
    version: VersionOut | None = Field(description="The version recorded (null only if the "
                                       "history database could not be written).")
    entries: int
    vectors: int


def _matches(entry: Entry, needle: str) -> int:
    """0: no match; higher ranks first (id or question over answer, alternates and tags)."""
    if needle in entry.id or needle in entry.question.casefold():
        return 3
    if entry.macro and needle in entry.macro.casefold():
        return 2
    texts = (entry.answer, *entry.alternates, *entry.tags)
    return 1 if any(needle in text.casefold() for text in texts) else 0


@router.get("/entries", response_model=EntryListOut, summary="Find entries by any of their text")
def find_entries(engine: EngineDep,
                 q: Annotated[str, Query(max_length=200)] = "",
                 retired: bool = True,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> EntryListOut:
    knowledge = engine.knowledge
    needle = q.strip().casefold()
    pool = [(e, False) for e in knowledge.entries]
    if retired:
        pool += [(e, True) for e in knowledge.retired]
    ranked = sorted(((rank, n, e, gone) for n, (e, gone) in enumerate(pool)
                     if (rank := _matches(e, needle) if needle else 1)),
                    key=lambda item: (-item[0], item[1]))
    return EntryListOut(knowledge_hash=knowledge.content_hash(), total=len(ranked), entries=[
        EntrySummaryOut(id=e.id, question=e.question, macro=e.macro, tags=list(e.tags),
                        alternates=len(e.alternates), retired=gone)
        for _, _, e, gone in ranked[:limit]])


@router.get("/entries/{entry_id}", response_model=EntryOut, summary="One entry, every field")
def get_entry(entry_id: Annotated[str, PathParam(max_length=80)], engine: EngineDep) -> EntryOut:
    knowledge = engine.knowledge
    if (entry := knowledge.entry(entry_id)) is not None:
        return EntryOut.of(entry, retired=False)
    if (entry := knowledge.retired_entry(entry_id)) is not None:
        return EntryOut.of(entry, retired=True)
    raise EntryNotFound(entry_id)


def _check(engine: Engine, body: DraftIn) -> CheckedDraft:
    return check_drafts(engine, [e.draft() for e in body.entries])


def _problems(checked: CheckedDraft) -> list[ProblemOut]:
    return [ProblemOut(entry_id=p.entry_id, level=p.level, message=p.message)
            for p in checked.problems]


@router.post("/check", response_model=CheckOut, summary="Check a draft as it is typed: "
             "errors block publishing, warnings (e.g. a phrasing closer to another entry) do not")
def check(body: DraftIn, engine: EngineDep) -> CheckOut:
    checked = _check(engine, body)
    return CheckOut(ok=checked.ok, problems=_problems(checked))


@router.post("/preview", response_model=PreviewOut, summary="What the draft would change: "
             "every labelled or agent-verified question whose answer differs, before -> after")
def preview(body: DraftIn, engine: EngineDep, store: StoreDep,
            settings: SettingsDep) -> PreviewOut:
    checked = _check(engine, body)
    if checked.knowledge is None:
        return PreviewOut(ok=False, problems=_problems(checked), impact=None)
    result = impact(engine, checked.knowledge, labelled_cases(engine.knowledge),
                    verdict_cases(agent_verdicts(store)), settings)
    return PreviewOut(ok=True, problems=_problems(checked), impact=result.to_dict())


def _latest(history: KnowledgeHistory) -> VersionOut | None:
    newest = history.versions(limit=1)
    return VersionOut.model_validate(newest[0].to_dict()) if newest else None


@router.post("/publish", response_model=PublishOut, summary="Apply the draft atomically; the "
             "index is rebuilt and swapped, and the change is recorded in the history (409: the "
             "playbook changed since base_hash, or the draft fails its checks)")
def publish(body: DraftIn, engine: EngineDep, store: StoreDep, who: AdminDep) -> PublishOut:
    checked = _check(engine, body)
    if checked.text is None:
        first = next(p for p in checked.problems if p.level == "error")
        raise DraftRefused(first.entry_id, first.message)
    drafts = [e.draft() for e in body.entries]

    def edit(text: str, now: KnowledgeBase) -> str:
        assert now.path is not None  # engine.publish only edits a playbook.yaml
        return apply_drafts(text, now.path, now.slots, drafts)[0]

    report = engine.publish(edit, Change(who, "publish"), base_hash=body.base_hash)
    return PublishOut(version=_latest(KnowledgeHistory(store)), entries=report.entries,
                      vectors=report.vectors)


VersionNumber = Annotated[int, PathParam(ge=1, le=2**53 - 1)]


@router.get("/history", response_model=list[VersionOut], summary="Knowledge versions, newest "
            "first: who, when, how, and what changed in each entry")
def history(store: StoreDep,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[VersionOut]:
    return [VersionOut.model_validate(v.to_dict())
            for v in KnowledgeHistory(store).versions(limit)]


@router.get("/history/{version}", response_model=VersionTextOut,
            summary="One version, with the whole playbook.yaml and out_of_scope.txt it was")
def history_version(version: VersionNumber, store: StoreDep) -> VersionTextOut:
    found = KnowledgeHistory(store).version(version)
    return VersionTextOut.model_validate({**found.to_dict(), "playbook": found.playbook,
                                          "out_of_scope": found.out_of_scope})


@router.post("/history/{version}/restore", response_model=PublishOut,
             summary="Make a version the playbook again (recorded as a new version)")
def restore_version(version: VersionNumber, engine: EngineDep, store: StoreDep,
                    who: AdminDep) -> PublishOut:
    restored = restore(engine, KnowledgeHistory(store), version, who)
    state = engine.health()
    return PublishOut(version=VersionOut.model_validate(restored.to_dict()),
                      entries=state["entries"], vectors=state["vectors"])
