"""The knowledge workbench: whole-entry edits of the file, retired cards, the draft checks, the
impact preview, publishing with the history, restore, and the CLI's parity (fake embedder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli.main import main
from app.config import Settings
from app.engine.engine import Engine
from app.knowledge.drafts import EntryDraft, apply_drafts
from app.knowledge.playbook import load_knowledge
from app.web.app import create_app
from tests.fakes import TINY_OUT_OF_SCOPE, TINY_PLAYBOOK, FakeEmbedder

ALICE, BOB = "alice-token-1234", "bobs-token-5678"


@pytest.fixture
def settings(tiny_settings: Settings) -> Settings:
    return tiny_settings.model_copy(update={"admins": f"alice:{ALICE},bob:{BOB}",
                                            "watch_seconds": 0})


@pytest.fixture
def engine(settings: Settings, fake_embedder: FakeEmbedder) -> Engine:
    engine = Engine(settings, fake_embedder)
    engine.load()
    return engine


@pytest.fixture
def client(settings: Settings, engine: Engine) -> TestClient:
    return TestClient(create_app(settings, engine))


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def entry_json(client: TestClient, entry_id: str) -> dict[str, Any]:
    response = client.get(f"/api/workbench/entries/{entry_id}", headers=as_(ALICE))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body.pop("source")
    return body


# ---------------------------------------------------------------- the file


def test_an_edit_rewrites_only_its_entry_and_keeps_a_hash_macro(tiny_knowledge: Path) -> None:
    path = tiny_knowledge / "playbook.yaml"
    text = path.read_text()
    kb = load_knowledge(tiny_knowledge)
    edited = EntryDraft.of(kb.entries[2])
    new_text, after = apply_drafts(text, path, kb.slots, [
        EntryDraft(**{**edited.__dict__, "macro": "#SD - Shipping Times"}),
        EntryDraft("price-match", "Can we match a lower price?", "No: send the macro",
                   "#SD - No Price Match", ("cx wants a price match",), ("pricing",)),
        EntryDraft.of(kb.entries[0], retired=True),
    ])
    assert new_text == TINY_PLAYBOOK.replace(
        "- id: change-address\n", "- id: change-address\n  retired: true\n"
    ).replace(
        "  question: Customer wants to change the shipping address\n  answer: '#SD - Too Late - "
        "Can''t Change Shipping Address (RP)'\n  macro: '#SD - Too Late - Can''t Change Shipping "
        "Address (RP)'\n  alternates:\n  - cx wants a different delivery address\n  - update "
        "address on order\n  tags: [address]\n  source: {file: tiny.txt, line: 1}\n",
        "  question: Customer wants to change the shipping address\n  answer: '#SD - Too Late - "
        "Can''t Change Shipping Address (RP)'\n  macro: '#SD - Too Late - Can''t Change Shipping "
        "Address (RP)'\n  alternates:\n  - cx wants a different delivery address\n  - update "
        "address on order\n  tags:\n  - address\n  source:\n    file: tiny.txt\n    line: 1\n",
    ).replace(
        "  macro: null\n  alternates:\n  - how long does shipping take\n  - delivery time for most "
        "orders\n  tags: [shipping]\n  source: {file: tiny.txt, line: 5}\n",
        "  macro: '#SD - Shipping Times'\n  alternates:\n  - how long does shipping take\n  - "
        "delivery time for most orders\n  tags:\n  - shipping\n  source:\n    file: tiny.txt\n"
        "    line: 5\n- id: price-match\n  question: Can we match a lower price?\n  answer: 'No: "
        "send the macro'\n  macro: '#SD - No Price Match'\n  alternates:\n  - cx wants a price "
        "match\n  tags:\n  - pricing\n")
    assert [e.id for e in after.entries] == ["cancel-order", "shipping-sla", "price-match"]
    assert [e.id for e in after.retired] == ["change-address"]
    assert after.entry("shipping-sla").macro == "#SD - Shipping Times"  # type: ignore[union-attr]


def test_a_retired_card_stays_in_the_file_and_is_never_answered(
        client: TestClient, engine: Engine) -> None:
    assert engine.ask("Customer wants to cancel an order").best.entry.id == "cancel-order"  # type: ignore[union-attr]
    card = entry_json(client, "cancel-order")
    published = client.post("/api/workbench/publish", headers=as_(ALICE),
                            json={"entries": [{**card, "retired": True}]})
    assert published.status_code == 200, published.text
    assert (published.json()["entries"], [e.id for e in engine.knowledge.retired]) == (
        2, ["cancel-order"])
    answer = engine.ask("Customer wants to cancel an order", top_k=5)
    shown = {m.entry.id for m in (*([answer.best] if answer.best else []), *answer.alternatives)}
    assert "cancel-order" not in shown
    assert entry_json(client, "cancel-order")["retired"] is True
    listed = client.get("/api/workbench/entries?q=cancel&retired=false", headers=as_(ALICE))
    assert listed.json()["total"] == 0


# ---------------------------------------------------------------- checks


def test_check_reports_a_phrasing_another_entry_owns_and_a_bad_condition(
        client: TestClient) -> None:
    card = entry_json(client, "shipping-sla")
    card["alternates"].append("Cancel my order please")
    checked = client.post("/api/workbench/check", headers=as_(BOB), json={"entries": [card]})
    assert checked.json() == {"ok": False, "problems": [
        {"entry_id": "shipping-sla", "level": "error",
         "message": "'Cancel my order please' is already a phrasing of 'cancel-order'"}]}
    card["alternates"].pop()
    card["conditions"] = {"planet": "Mars"}
    checked = client.post("/api/workbench/check", headers=as_(BOB), json={"entries": [card]})
    assert checked.json()["ok"] is False
    assert checked.json()["problems"] == [{
        "entry_id": "shipping-sla", "level": "error",
        "message": "unknown condition 'planet'; declared slots: none (declare them in slots.yaml)"}]


def test_a_checked_draft_keeps_the_folders_glossary_and_out_of_scope(engine: Engine) -> None:
    from app.engine.drafting import check_drafts

    draft = EntryDraft.of(engine.entry("shipping-sla"))
    checked = check_drafts(engine, [EntryDraft(**{**draft.__dict__, "answer": "2-4 days"})])
    assert checked.knowledge is not None
    assert (checked.knowledge.glossary, checked.knowledge.out_of_scope) == (
        {"cx": "customer", "OOS": "out of stock"},
        ("what is the weather tomorrow", "tell me a joke", "reset my laptop password"))


def test_a_draft_that_fails_its_checks_is_not_published(client: TestClient,
                                                        settings: Settings) -> None:
    card = entry_json(client, "shipping-sla")
    refused = client.post("/api/workbench/publish", headers=as_(ALICE), json={
        "entries": [{**card, "alternates": ["cancel my order please"]}]})
    assert (refused.status_code, refused.json()) == (409, {
        "detail": "draft entry shipping-sla: 'cancel my order please' is already a phrasing of "
                  "'cancel-order'"})
    assert (settings.knowledge_dir / "playbook.yaml").read_text() == TINY_PLAYBOOK


def test_text_with_unicode_line_separators_survives_the_index_and_controls_are_refused(
        client: TestClient, settings: Settings, fake_embedder: FakeEmbedder) -> None:
    card = entry_json(client, "shipping-sla")
    pasted = "What is our SLA\u2028for shipping most orders"  # copied from a web page
    published = client.post("/api/workbench/publish", headers=as_(ALICE),
                            json={"entries": [{**card, "question": pasted}]})
    assert published.status_code == 200, published.text
    reopened = Engine(settings, fake_embedder)  # reads the index rows written for it
    reopened.load()
    assert reopened.entry("shipping-sla").question == pasted
    refused = client.post("/api/workbench/check", headers=as_(ALICE),
                          json={"entries": [{**card, "answer": "bell\x07"}]})
    assert refused.status_code == 422


def test_workbench_routes_need_an_admin(client: TestClient) -> None:
    for response in (client.get("/api/workbench/entries"),
                     client.get("/api/workbench/history", headers=as_("not-a-token"))):
        assert response.status_code == 401


# ---------------------------------------------------------------- publish, history, restore


def test_publish_records_who_and_what_and_restore_is_a_new_version(
        client: TestClient, settings: Settings) -> None:
    listing = client.get("/api/workbench/entries?q=sla", headers=as_(ALICE)).json()
    assert [e["id"] for e in listing["entries"]] == ["shipping-sla"]
    card = entry_json(client, "shipping-sla")
    card["answer"] = "2-4 business days"
    card["alternates"].append("ship time for orders")
    published = client.post("/api/workbench/publish", headers=as_(ALICE), json={
        "entries": [card], "base_hash": listing["knowledge_hash"]})
    assert published.status_code == 200, published.text
    version = published.json()["version"]
    assert (version["version"], version["who"], version["action"]) == (2, "alice", "publish")
    assert version["changes"] == [{
        "entry_id": "shipping-sla", "kind": "edited",
        "question": "What is our SLA for shipping most orders", "fields": [
            {"field": "answer", "before": "3-5 business days", "after": "2-4 business days",
             "added": [], "removed": []},
            {"field": "alternates", "before": None, "after": None,
             "added": ["ship time for orders"], "removed": []}]}]

    stale = client.post("/api/workbench/publish", headers=as_(BOB), json={
        "entries": [card], "base_hash": listing["knowledge_hash"]})
    assert stale.status_code == 409
    assert stale.json()["detail"].startswith("the playbook changed since this draft was started")

    history = client.get("/api/workbench/history", headers=as_(BOB)).json()
    assert [(v["version"], v["who"], v["action"]) for v in history] == [
        (2, "alice", "publish"), (1, "(edited on disk)", "file-edit")]
    restored = client.post("/api/workbench/history/1/restore", headers=as_(BOB))
    assert restored.status_code == 200, restored.text
    assert (restored.json()["version"]["version"], restored.json()["version"]["who"],
            restored.json()["version"]["restored_from"]) == (3, "bob", 1)
    playbook = settings.knowledge_dir / "playbook.yaml"
    assert playbook.read_text() == TINY_PLAYBOOK
    assert client.get("/api/workbench/history/1", headers=as_(BOB)).json()["playbook"] == \
        TINY_PLAYBOOK
    assert client.get("/api/workbench/history/9", headers=as_(BOB)).status_code == 404


def test_a_hand_edit_and_a_review_add_are_recorded_too(
        client: TestClient, engine: Engine, settings: Settings) -> None:
    playbook = settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text().replace("  - how long does shipping take\n",
                                                     "  - how long does shipping take\n"
                                                     "  - shipping time\n"))
    engine.load()
    asked = client.post("/api/chat/ask", json={"question": "what is the weather tomorrow"}).json()
    added = client.post(f"/api/review/{asked['query_id']}/add", headers=as_(BOB),
                        json={"entry_id": "shipping-sla", "force": True})
    assert added.status_code == 200, added.text
    history = client.get("/api/workbench/history", headers=as_(ALICE)).json()
    assert [(v["who"], v["action"], [c["entry_id"] for c in v["changes"]]) for v in history] == [
        ("bob", "review-add", ["shipping-sla"]),
        ("(edited on disk)", "file-edit", ["shipping-sla"]),
        ("(edited on disk)", "file-edit", ["change-address", "cancel-order", "shipping-sla"])]
    assert history[1]["changes"][0]["fields"][0]["added"] == ["shipping time"]
    # Put back by hand as it was first (e.g. a git checkout): that too is a change, recorded.
    playbook.write_text(TINY_PLAYBOOK)
    engine.load()
    newest = client.get("/api/workbench/history", headers=as_(ALICE)).json()[0]
    assert (newest["version"], newest["action"], [c["entry_id"] for c in newest["changes"]]) == (
        4, "file-edit", ["shipping-sla"])


def test_a_question_marked_out_of_scope_is_a_version_and_a_restore_takes_it_back(
        client: TestClient, settings: Settings) -> None:
    asked = client.post("/api/chat/ask", json={"question": "gift wrap this order"}).json()
    marked = client.post("/api/review/out-of-scope", headers=as_(BOB),
                         json={"query_ids": [asked["query_id"]], "force": True})
    assert marked.status_code == 200, marked.text
    history = client.get("/api/workbench/history", headers=as_(ALICE)).json()
    assert [(v["version"], v["who"], v["action"], v["changes"], v["out_of_scope_changes"])
            for v in history] == [
        (2, "bob", "review-out-of-scope", [],
         {"added": ["gift wrap this order"], "removed": []}),
        (1, "(edited on disk)", "file-edit", history[1]["changes"],
         {"added": ["what is the weather tomorrow", "tell me a joke", "reset my laptop password"],
          "removed": []})]
    marked_file = TINY_OUT_OF_SCOPE + "gift wrap this order\n"
    assert client.get("/api/workbench/history/2", headers=as_(ALICE)).json()[
        "out_of_scope"] == marked_file

    restored = client.post("/api/workbench/history/1/restore", headers=as_(ALICE))
    assert restored.status_code == 200, restored.text
    assert (restored.json()["version"]["version"], restored.json()["version"]["changes"],
            restored.json()["version"]["out_of_scope_changes"]) == (
        3, [], {"added": [], "removed": ["gift wrap this order"]})
    out_of_scope = settings.knowledge_dir / "out_of_scope.txt"
    assert out_of_scope.read_text(encoding="utf-8") == TINY_OUT_OF_SCOPE
    assert (settings.knowledge_dir / "playbook.yaml").read_text() == TINY_PLAYBOOK
    assert client.post("/api/ask", json={"question": "gift wrap this order"}).json()[
        "out_of_scope"] is None


def test_a_history_from_before_out_of_scope_was_kept_still_restores_leaving_that_file_alone(
        settings: Settings, engine: Engine) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from app.store import database
    from app.store.history import text_hash

    with database.create_engine(database.sqlite_url(settings.db_path)).connect() as connection:
        config = Config()
        config.set_main_option("script_location", str(database.MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(sa.text(
            "INSERT INTO knowledge_versions (recorded_at, who, action, knowledge_hash, "
            "text_hash, changes, playbook) VALUES ('2026-11-30T09:00:00.000000Z', 'dana', "
            "'publish', 'h', :hash, '[]', :playbook)"),
            {"hash": text_hash(TINY_PLAYBOOK), "playbook": TINY_PLAYBOOK})
        connection.commit()
    client = TestClient(create_app(settings, engine))  # migrates, then records what it serves

    out_of_scope = settings.knowledge_dir / "out_of_scope.txt"
    out_of_scope.write_text(TINY_OUT_OF_SCOPE + "gift wrap this order\n", encoding="utf-8")
    engine.load()
    history = client.get("/api/workbench/history", headers=as_(ALICE)).json()
    assert [(v["version"], v["who"], v["changes"], v["out_of_scope_changes"]["added"])
            for v in history] == [
        (3, "(edited on disk)", [], ["gift wrap this order"]),
        (2, "(edited on disk)", [], ["what is the weather tomorrow", "tell me a joke",
                                     "reset my laptop password"]),
        (1, "dana", [], [])]
    assert client.get("/api/workbench/history/1", headers=as_(ALICE)).json()[
        "out_of_scope"] is None

    restored = client.post("/api/workbench/history/1/restore", headers=as_(ALICE))
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"]["version"] == 3  # the same files: nothing new recorded
    assert out_of_scope.read_text(encoding="utf-8") == TINY_OUT_OF_SCOPE + "gift wrap this order\n"


# ---------------------------------------------------------------- preview


def test_preview_lists_the_questions_whose_answer_would_change(
        client: TestClient, settings: Settings) -> None:
    eval_dir = settings.knowledge_dir / "eval"
    eval_dir.mkdir()
    (eval_dir / "queries.jsonl").write_text(
        '{"query": "stop the order before it ships", "expected": "cancel-order"}\n'
        '{"query": "how long does shipping take", "expected": "shipping-sla"}\n')
    asked = client.post("/api/chat/ask", json={"question": "cancel my order please"}).json()
    client.post("/api/feedback", json={"query_id": asked["query_id"], "rating": "up",
                                       "feedback_token": asked["feedback_token"]})
    card = entry_json(client, "cancel-order")
    preview = client.post("/api/workbench/preview", headers=as_(ALICE),
                          json={"entries": [{**card, "retired": True}]})
    assert preview.status_code == 200, preview.text
    impact = preview.json()["impact"]
    assert impact["stale_labels"] == [{"line": 1, "query": "stop the order before it ships",
                                       "entry_id": "cancel-order", "retired": True}]
    # The retired card's labelled question is what the change moves: it is listed as broken.
    assert impact["eval"]["counts"] == {"fixed": 0, "broken": 1, "changed": 0, "unchanged": 1,
                                        "not_compared": 0}
    assert [q["query"] for q in impact["eval"]["queries"]] == ["stop the order before it ships"]
    [change] = impact["agents"]["queries"]
    assert (change["query"], change["change"], change["before"]["returned"],
            change["before"]["right"], change["after"]["right"]) == (
        "cancel my order please", "broken", "cancel-order", True, False)
    assert impact["gate"]["top1"] == {"before": 1.0, "after": 1.0}
    # Nothing was published: the playbook and the index are as they were.
    assert entry_json(client, "cancel-order")["retired"] is False


# ---------------------------------------------------------------- the CLI


def run(settings: Settings, embedder: FakeEmbedder, *args: str) -> Any:
    return CliRunner().invoke(main, ["--knowledge-dir", str(settings.knowledge_dir),
                                     "--index-dir", str(settings.index_dir), *args],
                              obj=lambda _settings: embedder,
                              env={"PLAYBOOK_DB_PATH": str(settings.db_path)})


def test_the_cli_adds_edits_retires_lists_and_reverts(
        settings: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.cli.workbench.who", lambda: "carol (cli)")
    added = run(settings, fake_embedder, "entry", "add", "price-match",
                "--question", "Can we match a lower price?", "--answer", "No price match",
                "--macro", "#SD - No Price Match", "--alternate", "cx wants a price match")
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("version 2  ")
    assert "carol (cli)  edit: added price-match; index built: 4 entries" in added.stdout
    edited = run(settings, fake_embedder, "entry", "edit", "price-match", "--add-alternate",
                 "price match request")
    assert "edit: edited price-match: alternates;" in edited.stdout
    retired = run(settings, fake_embedder, "entry", "retire", "price-match")
    assert "edit: retired price-match;" in retired.stdout
    history = run(settings, fake_embedder, "history", "--json")
    assert [(v["version"], v["action"], v["who"]) for v in json.loads(history.stdout)] == [
        (4, "edit", "carol (cli)"), (3, "edit", "carol (cli)"), (2, "edit", "carol (cli)"),
        (1, "file-edit", "(edited on disk)")]
    reverted = run(settings, fake_embedder, "revert", "1")
    assert reverted.exit_code == 0, reverted.output
    assert "restore of version 1: removed price-match" in reverted.stdout
    assert (settings.knowledge_dir / "playbook.yaml").read_text() == TINY_PLAYBOOK
    missing = run(settings, fake_embedder, "entry", "edit", "nope", "--answer", "x")
    assert (missing.exit_code, missing.stderr) == (4, "error: no entry with id 'nope'\n")
    refused = run(settings, fake_embedder, "entry", "add", "planet-card", "--question", "Mars?",
                  "--answer", "No", "--condition", "planet=Mars")
    assert (refused.exit_code, refused.stderr) == (3, (  # the problem is said once
        "error: draft entry planet-card: unknown condition 'planet'; declared slots: none "
        "(declare them in slots.yaml)\n"))


def test_cli_preview_of_a_draft_folder(settings: Settings, fake_embedder: FakeEmbedder,
                                       tmp_path: Path) -> None:
    draft = tmp_path / "draft"
    draft.mkdir()
    (draft / "playbook.yaml").write_text(TINY_PLAYBOOK.replace(
        "  - stop the order before it ships\n", ""))
    eval_dir = settings.knowledge_dir / "eval"
    eval_dir.mkdir()
    (eval_dir / "queries.jsonl").write_text(
        '{"query": "cancel my order please", "expected": "cancel-order"}\n')
    result = run(settings, fake_embedder, "preview", str(draft), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["eval"]["counts"]["unchanged"], document["stale_labels"],
            document["newly_refused"]) == (1, [], 0)
