from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli.main import main
from app.config import Settings
from tests.fakes import FakeEmbedder

SEED_EXPORT = Path(__file__).resolve().parent.parent / "knowledge" / "seed" / "playbook.txt"


@pytest.fixture
def run(tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PLAYBOOK_KNOWLEDGE_DIR", str(tiny_settings.knowledge_dir))
    monkeypatch.setenv("PLAYBOOK_INDEX_DIR", str(tiny_settings.index_dir))
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(main, list(args), obj=lambda settings: FakeEmbedder(),
                             catch_exceptions=False)

    return invoke


def test_ask_prints_a_readable_answer(run) -> None:  # type: ignore[no-untyped-def]
    result = run("ask", "cx wants to update the delivery address", "--top-k", "1")
    assert result.exit_code == 0
    assert result.output == (
        "Macro:      #SD - Too Late - Can't Change Shipping Address (RP)\n"
        "Matched:    Customer wants to change the shipping address  [change-address]\n"
        "Confidence: 99% (high)\n"
        "Also close:\n"
        "  - Customer wants to cancel an order  [cancel-order] 0%\n"
    )


def test_ask_without_a_confident_match_says_so(run) -> None:  # type: ignore[no-untyped-def]
    result = run("ask", "tell me a joke about cats", "--top-k", "2")
    assert result.output == (
        "Not in the playbook: nearest to “tell me a joke” (out_of_scope.txt).\n"
        "No confident match (best guess 14%). Closest entries:\n"
        "  - Customer wants to change the shipping address  [change-address] 14%\n"
        "  - Customer wants to cancel an order  [cancel-order] 0%\n"
    )


def test_ask_json_has_the_api_shape(run) -> None:  # type: ignore[no-untyped-def]
    result = run("ask", "cancel my order please", "--json", "--top-k", "0")
    assert json.loads(result.output) == {
        "question": "cancel my order please",
        "matched": True,
        "answer": "send #SD - Too Late to Cancel",
        "macro": "#SD - Too Late to Cancel",
        "source_question": "Customer wants to cancel an order",
        "entry_id": "cancel-order",
        "tags": ["cancellation"],
        "confidence": 1.0,
        "ambiguous": False,
        "applies_when": [],
        "alternatives": [],
        "ruled_out": [], "out_of_scope": None,
    }


def test_empty_question_exits_2(run) -> None:  # type: ignore[no-untyped-def]
    result = run("ask", "   ")
    assert (result.exit_code, result.output) == (2, "error: the question is empty\n")


def test_build_then_up_to_date(run) -> None:  # type: ignore[no-untyped-def]
    first = run("build")
    assert first.exit_code == 0
    assert re.fullmatch(r"index built 3 entries, 9 vectors in \d+\.\ds \(no index built yet in .+\)\n",
                        first.output)
    second = run("build")
    assert re.fullmatch(r"index up to date: 3 entries, 9 vectors in \d+\.\ds\n", second.output)


def test_import_seed_reports_orphan_and_duplicate(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    knowledge = tmp_path / "fresh"
    knowledge.mkdir()
    export = knowledge / "playbook.txt"
    shutil.copy(SEED_EXPORT, export)
    monkeypatch.chdir(knowledge)
    result = run("--knowledge-dir", ".", "import", "playbook.txt")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "playbook.txt:19: warning: orphan line kept for review: 'Jewelry, Fragrances & Designer "
        "clothing/accessories/hand bags' (no partner line: the next line is a question, so this "
        "line's question or answer was lost in the export)",
        "playbook.txt:36: warning: merged into entry 'status-occurs-order-being-prepared-sent': "
        "duplicate card; answer 'Proessing' differs from 'Processing' by a typo, kept the first",
        "23 added, 0 unchanged, 1 waiting in needs_review -> playbook.yaml",
    ]
    again = run("--knowledge-dir", ".", "import", "playbook.txt")
    assert again.output.splitlines()[-1] == (
        "0 added, 24 unchanged, 1 waiting in needs_review -> playbook.yaml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "error: bad.txt: the file is empty: no cards to import\n"),
        (b"Q?\n\xff\xfeA\n", "error: bad.txt:2: not UTF-8 text (byte 0xff); save it as UTF-8\n"),
    ],
)
def test_broken_import_leaves_knowledge_untouched(
    run, tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
    content: bytes, message: str,
) -> None:
    monkeypatch.chdir(tiny_settings.knowledge_dir)
    Path("bad.txt").write_bytes(content)
    before = Path("playbook.yaml").read_bytes()
    result = run("import", "bad.txt")
    assert (result.exit_code, result.output) == (3, message)
    assert Path("playbook.yaml").read_bytes() == before


def test_import_into_broken_playbook_is_refused(
    run, tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.chdir(tiny_settings.knowledge_dir)
    Path("playbook.yaml").write_text("entries:\n- id: x\n  question: [oops\n", encoding="utf-8")
    Path("cards.txt").write_text("Q?\nA\n", encoding="utf-8")
    result = run("import", "cards.txt")
    assert result.exit_code == 3
    assert result.output == (
        "error: playbook.yaml:4: unreadable YAML: expected ',' or ']', but got '<stream end>'\n")
    assert Path("playbook.yaml").read_text() == "entries:\n- id: x\n  question: [oops\n"


def test_lint_warns_on_orphans_and_fails_on_shared_phrasings(
    run, tiny_settings: Settings  # type: ignore[no-untyped-def]
) -> None:
    clean = run("lint")
    assert clean.exit_code == 0
    lines = clean.output.splitlines()
    assert lines[0] == ("tiny.txt:7 warning: needs review, not indexed: 'A stray line' (no partner "
                        "line) (fix: write the missing question or answer and move it into "
                        "entries, or delete it)")
    assert lines[1].endswith(
        "playbook.yaml:2 [change-address] warning: alternate 'update address on order' sits closer "
        "to entry 'cancel-order' (0.25) than to its own (0.19) (fix: reword it with the words that "
        "set this entry apart, or move it)")
    assert lines[-1] == "3 entries: 0 errors, 3 warnings"
    playbook = tiny_settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text().replace("  - update address on order\n",
                                                     "  - cancel my order please\n"))
    broken = run("lint")
    assert broken.exit_code == 1
    assert broken.output.splitlines()[0].endswith(
        "playbook.yaml:11 [cancel-order] error: 'cancel my order please' is also a phrasing of entry "
        "'change-address' (fix: keep the phrasing on one entry only, or merge the two entries)")


def test_version(run) -> None:  # type: ignore[no-untyped-def]
    result = run("--version")
    assert (result.exit_code, result.output) == (0, "playbook, version 0.1.0\n")


def test_ask_from_a_folder_without_knowledge_says_so_before_loading_the_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLAYBOOK_KNOWLEDGE_DIR", raising=False)
    loaded: list[object] = []
    result = CliRunner().invoke(main, ["ask", "cancel my order"],
                                obj=lambda settings: loaded.append(settings))
    assert (result.exit_code, result.output, loaded) == (
        3, "error: knowledge: no such file or folder (run from the folder that holds knowledge/, "
           "or pass --knowledge-dir or set PLAYBOOK_KNOWLEDGE_DIR)\n", [])


def test_init_creates_a_folder_that_serves_and_refuses_to_overwrite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    fake = {"obj": lambda settings: FakeEmbedder(), "catch_exceptions": False}
    created = runner.invoke(main, ["init", "team-playbook"], **fake)
    assert (created.exit_code, created.output) == (
        0, "created team-playbook: next, `playbook --knowledge-dir team-playbook serve`\n")
    assert sorted(p.name for p in (tmp_path / "team-playbook").iterdir()) == [
        "glossary.yaml", "out_of_scope.txt", "playbook.yaml"]
    answer = runner.invoke(main, ["--knowledge-dir", "team-playbook", "ask", "--json",
                                  "cx wants to update the delivery address"], **fake)
    assert json.loads(answer.output)["entry_id"] == "example-change-address"
    again = runner.invoke(main, ["init", "team-playbook"], **fake)
    assert (again.exit_code, again.output.splitlines()[-1]) == (
        2, "Error: team-playbook/playbook.yaml already exists")


@pytest.mark.parametrize(("folder", "message"), [
    ("", "Error: Invalid value for FOLDER: name the folder to create"),
    ("a-file", "Error: Invalid value for 'FOLDER': Directory 'a-file' is a file."),
    ("a-file/sub", "Error: cannot create a-file/sub: Not a directory"),
])
def test_init_refuses_a_folder_it_cannot_make(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", folder], obj=lambda settings: FakeEmbedder())
    assert (result.exit_code > 0, result.output.splitlines()[-1]) == (True, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_init_from_the_seed_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "seeded", "--from-export", str(SEED_EXPORT)],
                                obj=lambda settings: FakeEmbedder(), catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.splitlines()[-2:] == [
        "23 added, 0 unchanged, 1 waiting in needs_review -> seeded/playbook.yaml",
        "created seeded: next, `playbook --knowledge-dir seeded serve`"]


def test_backup_copies_the_live_query_log_and_the_knowledge(
        run, tiny_settings: Settings, tmp_path: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.store.feedback import FeedbackStore
    from tests.test_feedback import matched

    db = tmp_path / "var" / "feedback.sqlite3"
    monkeypatch.setenv("PLAYBOOK_DB_PATH", str(db))
    live = FeedbackStore(db)  # the server's store, open, its last writes still in the WAL
    for _ in range(3):
        live.log_query(matched(), "web")
    assert (tmp_path / "var" / "feedback.sqlite3-wal").stat().st_size > 0

    result = run("backup", str(tmp_path / "backups"))

    assert result.exit_code == 0
    [folder] = list((tmp_path / "backups").iterdir())
    assert re.fullmatch(r"\d{8}T\d{6}Z", folder.name)
    assert result.output == (f"{folder / 'feedback.sqlite3'}: 3 logged questions\n"
                             f"{folder / 'knowledge'}: the knowledge folder\n")
    assert FeedbackStore(folder / "feedback.sqlite3").query(3).question == "cancel my order please"
    assert sorted(p.name for p in (folder / "knowledge").iterdir()) == sorted(
        p.name for p in tiny_settings.knowledge_dir.iterdir())


def test_ask_for_a_question_several_cards_fit_asks_for_a_detail(run) -> None:  # type: ignore[no-untyped-def]
    # Three cards hold "order": too vague to pick one (app.ranking.specificity).
    result = run("ask", "order?", "--top-k", "1")
    assert result.output == (
        "Several entries could fit and the question does not say which: add a detail (the vendor, "
        "how long ago, the order's status) and ask again.\n"
        "No confident match (best guess 12%). Closest entries:\n"
        "  - Customer wants to cancel an order  [cancel-order] 12%\n"
    )
