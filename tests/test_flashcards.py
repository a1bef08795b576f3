from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import KnowledgeError
from app.knowledge.flashcards import Card, merge_export, parse_export
from app.knowledge.playbook import KnowledgeBase, load_knowledge
from app.records import SourceRef, UnpairedLine, Variant

SEED = Path(__file__).resolve().parent.parent / "knowledge" / "seed" / "playbook.txt"
SEED_NAME = "knowledge/seed/playbook.txt"


@pytest.fixture(autouse=True)
def _run_from_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources are recorded relative to the working folder, as a person typed them."""
    monkeypatch.chdir(SEED.parent.parent.parent)


def _seed() -> tuple[KnowledgeBase, object]:
    return merge_export(KnowledgeBase(entries=()), parse_export(SEED))


def test_seed_pairs_every_question_with_the_line_after_it() -> None:
    export = parse_export(SEED)
    lines = SEED.read_text(encoding="utf-8").splitlines()
    assert len(export.cards) == 24
    for card in export.cards:
        assert lines[card.question_source.line - 1] == card.question
        assert lines[card.question_source.line] == card.answer
    assert [c.question_source.line for c in export.cards] == [
        1, 3, 5, 7, 9, 11, 13, 15, 17, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 48
    ]


def test_seed_orphan_line_is_kept_for_review_not_paired() -> None:
    export = parse_export(SEED)
    assert export.orphans == (
        UnpairedLine(
            "Jewelry, Fragrances & Designer clothing/accessories/hand bags",
            SourceRef(SEED_NAME, 19),
            "no partner line: the next line is a question, so this line's question or answer "
            "was lost in the export",
        ),
    )
    assert export.cards[9] == Card(
        "For vendor such as Best Buy, if one SKU is OOS, what will happen?",
        "cancel the entire order",
        SourceRef(SEED_NAME, 20),
    )


def test_seed_duplicate_is_merged_into_processing_with_the_typo_recorded() -> None:
    kb, report = _seed()
    assert len(kb.entries) == 23
    [entry] = [e for e in kb.entries if e.question.startswith("This status occurs")]
    assert entry.answer == "Processing"
    assert entry.source == SourceRef(SEED_NAME, 17)
    assert entry.variants == (
        Variant(
            "This status occurs when the order is being prepared to be sent to the vendor.",
            "Proessing",
            SourceRef(SEED_NAME, 36),
            "duplicate card; answer 'Proessing' differs from 'Processing' by a typo, kept the first",
        ),
    )
    assert [str(f) for f in report.findings] == [  # type: ignore[attr-defined]
        "knowledge/seed/playbook.txt:19: warning: orphan line kept for review: 'Jewelry, "
        "Fragrances & Designer clothing/accessories/hand bags' (no partner line: the next line "
        "is a question, so this line's question or answer was lost in the export)",
        "knowledge/seed/playbook.txt:36: warning: merged into entry "
        "'status-occurs-order-being-prepared-sent': duplicate card; answer 'Proessing' differs "
        "from 'Processing' by a typo, kept the first",
    ]


def test_curated_playbook_keeps_the_seed_text_verbatim() -> None:
    imported, _ = _seed()
    curated = load_knowledge(SEED.parent.parent)
    assert [(e.question, e.answer, e.macro, e.source, e.variants) for e in curated.entries] == [
        (e.question, e.answer, e.macro, e.source, e.variants) for e in imported.entries
    ]
    assert curated.needs_review == imported.needs_review


def test_reimporting_the_seed_changes_nothing() -> None:
    kb, _ = _seed()
    again, report = merge_export(kb, parse_export(SEED))
    assert again == kb
    assert report.added == ()  # type: ignore[attr-defined]
    assert len(report.unchanged) == 24  # type: ignore[attr-defined]


def test_tab_separated_export_with_conflict_and_bad_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    export = tmp_path / "cards.tsv"
    export.write_text(
        "Can we cancel after shipping?\tNo, send #SD - Too Late to Cancel\n"
        "What is the SLA?\t3-5 business days\n"
        "can we cancel after shipping\tYes, always\n"
        "no answer here\t\n",
        encoding="utf-8",
    )
    kb, report = merge_export(KnowledgeBase(entries=()), parse_export(export))
    assert [(e.id, e.macro) for e in kb.entries] == [
        ("cancel-shipping", "#SD - Too Late to Cancel"),
        ("sla", None),
    ]
    assert kb.needs_review == (
        UnpairedLine("no answer here", SourceRef("cards.tsv", 4),
                   "expected exactly 'question<TAB>answer'"),
        UnpairedLine("can we cancel after shipping\nYes, always", SourceRef("cards.tsv", 3),
                   "conflict: same question as entry 'cancel-shipping' (cards.tsv:1) but a "
                   "different answer 'Yes, always'"),
    )
    assert [f.level for f in report.findings] == ["warning", "error"]


def test_last_line_without_partner_is_an_orphan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    export = tmp_path / "odd.txt"
    export.write_text("Question one?\nAnswer one\nDangling question?\n", encoding="utf-8")
    parsed = parse_export(export)
    assert parsed.cards == (Card("Question one?", "Answer one", SourceRef("odd.txt", 1)),)
    assert parsed.orphans == (
        UnpairedLine("Dangling question?", SourceRef("odd.txt", 3),
                   "last line of the file has no partner line"),
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty.txt: the file is empty: no cards to import"),
        (b"\n  \n", "empty.txt: the file is empty: no cards to import"),
        (b"Question?\nAnswer\nCaf\xe9?\n",
         "empty.txt:3: not UTF-8 text (byte 0xe9); save it as UTF-8"),
    ],
)
def test_broken_exports_name_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    export = tmp_path / "empty.txt"
    export.write_bytes(content)
    with pytest.raises(KnowledgeError) as raised:
        parse_export(export)
    assert str(raised.value) == message
