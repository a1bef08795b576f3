"""Failures that heal and say so, an edge that holds: each test failed before its fix."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.engine import Engine
from app.errors import IndexInvalid, KnowledgeError
from app.knowledge.playbook import parse_playbook_yaml
from app.store.feedback import FeedbackStore
from app.web.app import create_app
from app.web.middleware.security_headers import CONTENT_SECURITY_POLICY
from tests.fakes import FakeEmbedder
from tests.test_feedback import T0, Clock, matched
from tests.test_slack import json_headers


def test_head_answers_on_healthz_and_readyz(tiny_settings: Settings, tiny_engine: Engine) -> None:
    client = TestClient(create_app(tiny_settings, tiny_engine))
    assert [client.head(path).status_code for path in ("/healthz", "/readyz")] == [200, 200]
    assert client.get("/readyz").json()["status"] == "ok"


def test_a_failed_reload_makes_readyz_503_and_healthz_degraded(
        tiny_settings: Settings, tiny_engine: Engine) -> None:
    client = TestClient(create_app(tiny_settings, tiny_engine))
    playbook = tiny_settings.knowledge_dir / "playbook.yaml"
    playbook.write_text("entries: [oops\n", encoding="utf-8")
    tiny_engine._background_reload()  # what the watcher runs after noticing the edit
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["status"], ready.json()["last_reload_error"]) == (
        503, "degraded",
        f"{playbook}:2: unreadable YAML: expected ',' or ']', but got '<stream end>'")
    assert (client.get("/healthz").status_code, client.get("/healthz").json()["status"]) == (
        200, "degraded")
    # Still answering from the last good index.
    assert client.post("/api/ask", json={"question": "cancel my order please"}).json()[
        "entry_id"] == "cancel-order"


def test_an_empty_entries_list_names_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError) as caught:
        parse_playbook_yaml("# the playbook\nentries: []\n", tmp_path / "playbook.yaml")
    assert (caught.value.line, caught.value.problem) == (
        2, "'entries' is empty: a playbook needs at least one entry")


def test_a_build_that_fails_outside_the_app_is_an_index_error(
        tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("app.index.format.faiss.write_index", disk_full)
    engine = Engine(tiny_settings, FakeEmbedder())
    with pytest.raises(IndexInvalid) as caught:
        engine.load()
    assert str(caught.value) == (
        f"the index could not be built in {tiny_settings.index_dir}: "
        "OSError: [Errno 28] No space left on device")
    assert caught.value.exit_code == 5


def test_a_reload_that_fails_on_a_full_disk_backs_off_then_heals(
        tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = tiny_settings.model_copy(update={"watch_seconds": 0.5})
    engine = Engine(settings, FakeEmbedder())
    engine.load()
    playbook = settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text().replace(
        "  - cancel my order please\n", "  - cancel my order please\n  - abort it\n"))

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("app.index.format.faiss.write_index", disk_full)
    clock = [1000.0]
    monkeypatch.setattr("app.engine.engine.time.monotonic", lambda: clock[0])
    engine._background_reload()  # the watcher noticed the edit; the build hits the full disk
    assert engine.health()["status"] == "degraded"
    assert engine.last_reload_error == (f"the index could not be built in {settings.index_dir}: "
                                        "OSError: [Errno 28] No space left on device")
    clock[0] += 1.5  # past the watch interval, before the 2 x 1 s back-off: no retry storm
    assert engine.refresh_if_changed() is False
    monkeypatch.undo()  # the disk has room again
    monkeypatch.setattr("app.engine.engine.time.monotonic", lambda: clock[0])
    clock[0] += 1.0
    assert engine.refresh_if_changed() is True
    deadline = time.perf_counter() + 10  # time.monotonic is the test's clock here
    while engine.last_reload_error is not None or engine.busy:
        assert time.perf_counter() < deadline, "did not heal"
        time.sleep(0.02)
    assert engine.health()["status"] == "ok"
    assert "abort it" in engine.entry("cancel-order").alternates


def test_a_deleted_feedback_database_is_recreated(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    assert store.log_query(matched(), "web") == 1
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(Exception, match="no such table"):
        store.log_query(matched(), "web")
    assert store.log_query(matched(), "web") == 1  # the next question heals it


def test_purged_question_text_is_gone_from_the_files(tmp_path: Path) -> None:
    clock = Clock()
    store = FeedbackStore(tmp_path / "feedback.sqlite3", retention_days=30, clock=clock)
    secret = "card 4111 1111 1111 1111 exp 09/29"
    store.log_query(matched(question=secret), "web")
    clock.now = T0 + timedelta(days=31)
    assert store.purge_expired() == 1
    stored = b"".join(Path(f"{store.path}{s}").read_bytes()
                      for s in ("", "-wal") if Path(f"{store.path}{s}").exists())
    assert b"4111 1111" not in stored


def test_slack_authorizations_of_the_wrong_type_are_ignored(
        tiny_settings: Settings, tiny_engine: Engine) -> None:
    settings = tiny_settings.model_copy(update={"slack_signing_secret": "test-signing-secret-1234"})
    client = TestClient(create_app(settings, tiny_engine))
    body = json.dumps({"type": "event_callback", "authorizations": 5, "event_id": "Ev1",
                       "event": {"type": "app_mention", "user": "U1", "text": "hi",
                                 "ts": "1.0", "channel": "C1"}}).encode()
    response = client.post("/slack/events", content=body, headers=json_headers(body))
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_a_slash_command_that_is_not_utf8_is_refused_not_garbled(
        tiny_settings: Settings, tiny_engine: Engine) -> None:
    from tests.test_slack import form_headers

    settings = tiny_settings.model_copy(update={"slack_signing_secret": "test-signing-secret-1234"})
    client = TestClient(create_app(settings, tiny_engine))
    body = b"command=%2Fplaybook&text=%ff%fe&user_id=U1&channel_id=C1&response_url="
    response = client.post("/slack/command", content=body, headers=form_headers(body))
    assert (response.status_code, response.json()) == (400, {"detail": "the form is not UTF-8 text"})
    assert client.app.state.feedback_store.queries() == []  # type: ignore[attr-defined]


def test_a_429_carries_the_security_headers(tiny_settings: Settings,
                                            fake_embedder: FakeEmbedder) -> None:
    settings = tiny_settings.model_copy(update={"rate_limit_per_minute": 1, "watch_seconds": 0})
    engine = Engine(settings, fake_embedder)
    engine.load()
    client = TestClient(create_app(settings, engine))
    client.post("/api/ask", json={"question": "cancel my order please"})
    limited = client.post("/api/ask", json={"question": "cancel my order please"})
    assert limited.status_code == 429
    assert limited.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def _manifest(engine: Engine) -> Path:
    return engine._current().index.path / "manifest.json"


@pytest.mark.parametrize("edit", [
    lambda d: d["calibration"].update(intercept=-0.8),  # a confident answer to anything
    lambda d: d["calibration"].update(threshold="0.5"),  # was a 500 on every question
])
def test_a_hand_edited_manifest_is_rebuilt_not_trusted(
        tiny_settings: Settings, fake_embedder: FakeEmbedder, edit: object) -> None:
    engine = Engine(tiny_settings, fake_embedder)
    engine.load()
    manifest = _manifest(engine)
    data = json.loads(manifest.read_text(encoding="utf-8"))
    edit(data)  # type: ignore[operator]
    manifest.write_text(json.dumps(data), encoding="utf-8")
    report = Engine(tiny_settings, fake_embedder).load()
    assert report.action == "built"
    assert report.reason.endswith("content does not match its checksum (edited by hand?)")


def test_a_manifest_with_a_wrong_type_is_refused_even_with_a_matching_checksum(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    from app.index.format import Manifest, content_checksum

    engine = Engine(tiny_settings, fake_embedder)
    engine.load()
    data = json.loads(_manifest(engine).read_text(encoding="utf-8"))
    del data["checksum"]
    data["calibration"]["threshold"] = "0.5"
    with pytest.raises(ValueError, match=r"calibration\.threshold: Input should be a valid number"):
        Manifest.from_json(json.dumps({**data, "checksum": content_checksum(data)}))
    data["calibration"]["threshold"] = 0.0  # would match everything
    with pytest.raises(ValueError, match="its calibration holds numbers it cannot use"):
        Manifest.from_json(json.dumps({**data, "checksum": content_checksum(data)}))


def test_binary_bytes_in_current_are_rebuilt(tiny_settings: Settings,
                                             fake_embedder: FakeEmbedder) -> None:
    Engine(tiny_settings, fake_embedder).load()
    (tiny_settings.index_dir / "CURRENT").write_bytes(b"\xff\xfe\x00garbage")
    report = Engine(tiny_settings, fake_embedder).load()
    assert report.action == "built"
    assert report.reason.startswith(f"{tiny_settings.index_dir / 'CURRENT'} is unreadable")


def test_a_corrupt_embedding_cache_is_set_aside_and_rebuilt(
        tiny_settings: Settings, fake_embedder: FakeEmbedder) -> None:
    Engine(tiny_settings, fake_embedder).load()
    cache = tiny_settings.index_dir / "embedding-cache.sqlite3"
    for suffix in ("-wal", "-shm"):
        Path(f"{cache}{suffix}").unlink(missing_ok=True)
    cache.write_bytes(b"this is not a database" * 100)
    engine = Engine(tiny_settings, fake_embedder)
    assert engine.load(force_rebuild=True).action == "built"
    assert [p.name.startswith("embedding-cache.sqlite3.corrupt-")
            for p in tiny_settings.index_dir.iterdir() if ".corrupt-" in p.name] == [True]
    assert engine.ask("cancel my order please").best is not None


def test_a_truncated_or_poisoned_cached_vector_is_encoded_again(tmp_path: Path) -> None:
    import sqlite3

    import numpy as np

    from app.embedding.cache import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    embedder = FakeEmbedder()
    first, fresh = cache.encode("space", 64, ["a b", "c d"], embedder.encode)
    assert fresh == 2
    with sqlite3.connect(tmp_path / "cache.sqlite3") as db:
        rows = db.execute("SELECT key FROM vectors ORDER BY rowid").fetchall()
        db.execute("UPDATE vectors SET vector = ? WHERE key = ?", (b"\0" * 12, rows[0][0]))
        db.execute("UPDATE vectors SET vector = ? WHERE key = ?",
                   (np.full(64, 0.5, dtype=np.float32).tobytes(), rows[1][0]))
    again, fresh = cache.encode("space", 64, ["a b", "c d"], embedder.encode)
    assert fresh == 2
    assert np.array_equal(again, first)


def test_a_replayed_slash_command_is_answered_and_logged_once(
        tiny_settings: Settings, tiny_engine: Engine) -> None:
    from tests.test_slack import form_headers, slash_body

    settings = tiny_settings.model_copy(update={"slack_signing_secret": "test-signing-secret-1234"})
    app = create_app(settings, tiny_engine)
    client = TestClient(app)
    body = slash_body("update address on order")
    headers = form_headers(body)
    replies = [client.post("/slack/command", content=body, headers=headers).json()
               for _ in range(3)]
    assert replies[0]["text"] != replies[1]["text"]
    assert replies[1:] == [{"response_type": "ephemeral",
                            "text": "This request was already received and answered."}] * 2
    assert len(app.state.feedback_store.queries()) == 1
