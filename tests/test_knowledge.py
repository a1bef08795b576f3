from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import KnowledgeError
from app.knowledge.playbook import load_knowledge, save_playbook
from app.records import Entry, SourceRef

GOOD = """\
entries:
- id: first
  question: First question?
  answer: First answer
- id: second
  question: Second question?
  answer: 'send #SD - Too Late to Cancel'
  macro: '#SD - Too Late to Cancel'
  alternates: [second phrasing]
  tags: [cancellation]
  source: {file: export.txt, line: 3}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _write(text: str | bytes) -> Path:
    folder = Path("kb")
    folder.mkdir(exist_ok=True)
    target = folder / "playbook.yaml"
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")
    return folder


def test_loads_entries_with_their_lines() -> None:
    kb = load_knowledge(_write(GOOD))
    assert kb.entries == (
        Entry("first", "First question?", "First answer"),
        Entry("second", "Second question?", "send #SD - Too Late to Cancel",
              "#SD - Too Late to Cancel", ("second phrasing",), ("cancellation",),
              SourceRef("export.txt", 3)),
    )
    assert kb.entry_lines == {"first": 2, "second": 5}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "kb/playbook.yaml: the file is empty; expected 'entries:' with a list"),
        (b"entries:\n- id: x\n  question: caf\xe9\n", "kb/playbook.yaml:3: not UTF-8 text "
         "(byte 0xe9); save it as UTF-8"),
        ("entries:\n- id: x\n  question: [unclosed\n", "kb/playbook.yaml:4: unreadable YAML: "
         "expected ',' or ']', but got '<stream end>'"),
        ("- just a list\n", "kb/playbook.yaml:1: expected a mapping with an 'entries:' list"),
        ("entries:\n- id: x\n  question: Q?\n", "kb/playbook.yaml:2: missing or empty field "
         "'answer'"),
        ("entries:\n- id: x\n  question: '  '\n  answer: A\n",
         "kb/playbook.yaml:2: missing or empty field 'question'"),
        ("entries:\n- {id: x, question: Q, answer: A}\n- {id: x, question: R, answer: B}\n",
         "kb/playbook.yaml:3: duplicate id 'x' (first used on line 2)"),
        ("entries:\n- id: x\n  question: Q\n  answer: A\n  macro: #SD - No Price Match\n",
         "kb/playbook.yaml:5: 'macro' starts with '#', which YAML reads as a comment, leaving it "
         "empty; quote it: '#SD - No Price Match'"),
        ("entries:\n- id: x\n  question: Q\n  answer: A\n  alternates:\n  - #quick one\n",
         "kb/playbook.yaml:6: this list item starts with '#', which YAML reads as a comment, "
         "leaving it empty; quote it: '#quick one'"),
        ("entries:\n- {id: x, question: Q, answer: A, alternate: [oops]}\n",
         "kb/playbook.yaml:2: unknown field(s) ['alternate']; allowed: ['alternates', 'answer', "
         "'conditions', 'id', 'macro', 'question', 'retired', 'source', 'tags', 'variants']"),
        ("entries:\n- {id: x, question: Q, answer: A, alternates: [ok, 3]}\n",
         "kb/playbook.yaml:2: 'alternates' must be a list of non-empty strings"),
    ],
)
def test_broken_playbook_names_file_line_and_problem(content: str | bytes, message: str) -> None:
    folder = _write(content)
    with pytest.raises(KnowledgeError) as raised:
        load_knowledge(folder)
    assert str(raised.value) == message


def test_save_round_trips_and_replaces_atomically() -> None:
    folder = _write(GOOD)
    kb = load_knowledge(folder).with_alternate("first", "another way to ask")
    save_playbook(kb, folder / "playbook.yaml")
    again = load_knowledge(folder)
    assert again.entries == kb.entries
    assert again.entry("first") == Entry("first", "First question?", "First answer",
                                         alternates=("another way to ask",))
    assert sorted(p.name for p in folder.iterdir()) == ["playbook.yaml"]


def test_content_hash_changes_with_any_indexed_text() -> None:
    kb = load_knowledge(_write(GOOD))
    assert kb.content_hash() == load_knowledge(Path("kb")).content_hash()
    assert kb.with_alternate("second", "new phrasing").content_hash() != kb.content_hash()


def test_benchmark_entries_jsonl_loads(tmp_path: Path) -> None:
    entries = tmp_path / "entries.jsonl"
    entries.write_text(
        '{"id": "card_arrival", "question": "Card arrival", "answer": "", '
        '"alternates": ["where is my card"]}\n',
        encoding="utf-8",
    )
    kb = load_knowledge(entries)
    assert [(e.id, e.question, e.alternates) for e in kb.entries] == [
        ("card_arrival", "Card arrival", ("where is my card",))
    ]


def test_a_line_only_the_standard_json_parser_accepts_still_loads(tmp_path: Path) -> None:
    # Lines are parsed by orjson first; NaN and a lone surrogate are JSON that Python reads and
    # orjson refuses.
    entries = tmp_path / "entries.jsonl"
    entries.write_text('{"id": "a", "question": "A \\ud800", "score": NaN}\n', encoding="utf-8")
    assert [(e.id, e.question) for e in load_knowledge(entries).entries] == [("a", "A \ud800")]


def test_benchmark_entries_jsonl_bad_row(tmp_path: Path) -> None:
    entries = tmp_path / "entries.jsonl"
    entries.write_text('{"id": "a", "question": "A"}\n{"id": "a"\n', encoding="utf-8")
    with pytest.raises(KnowledgeError) as raised:
        load_knowledge(entries)
    assert str(raised.value).endswith("entries.jsonl:2: not valid JSON: Expecting ',' delimiter")
