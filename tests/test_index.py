from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.engine.engine import Engine
from app.engine.hash_cache import CACHE_FILE
from app.errors import IndexInvalid
from app.index.build import build_index
from app.index.format import CURRENT_FILE, load_index, staleness
from app.knowledge.playbook import KnowledgeBase, load_knowledge
from tests.fakes import FakeEmbedder


def test_round_trip_keeps_manifest_rows_and_vectors(tiny_settings: Settings) -> None:
    kb = load_knowledge(tiny_settings.knowledge_dir)
    built = build_index(kb, FakeEmbedder(), tiny_settings.index_dir)
    loaded = load_index(tiny_settings.index_dir)
    assert loaded.manifest == built.manifest
    assert loaded.rows == built.rows
    assert loaded.vectors.ntotal == 9
    manifest = json.loads((loaded.path / "manifest.json").read_text())
    assert {k: manifest[k] for k in ("model", "encoder", "space", "dimension", "entry_count",
                                     "vector_count", "knowledge_hash", "index_type")} == {
        "model": "fake-bag-of-words@1",
        "encoder": "fake",
        "space": "fake-bag-of-words@1#fake",
        "dimension": 64,
        "entry_count": 3,
        "vector_count": 9,
        "knowledge_hash": kb.content_hash(),
        "index_type": "flat",
    }
    assert sorted(manifest["files"]) == ["out_of_scope.npy", "rows.jsonl", "vectors.faiss"]
    assert [(r.entry_id, r.kind, r.text) for r in loaded.rows[:3]] == [
        ("change-address", "question", "Customer wants to change the shipping address"),
        ("change-address", "alternate", "cx (customer) wants a different delivery address"),
        ("change-address", "alternate", "update address on order"),
    ]


def test_staleness_names_the_reason(tiny_settings: Settings) -> None:
    kb = load_knowledge(tiny_settings.knowledge_dir)
    index = build_index(kb, FakeEmbedder(), tiny_settings.index_dir)
    assert staleness(index, kb, "fake-bag-of-words@1#fake") is None
    assert staleness(index, kb.with_alternate("cancel-order", "abort order"),
                     "fake-bag-of-words@1#fake") == "the knowledge changed since the index was built"
    assert staleness(index, kb, "other-model@2") == (
        "the index was built with fake-bag-of-words@1#fake, the engine uses other-model@2"
    )


def test_corrupt_vectors_are_detected(tiny_settings: Settings) -> None:
    kb = load_knowledge(tiny_settings.knowledge_dir)
    index = build_index(kb, FakeEmbedder(), tiny_settings.index_dir)
    vectors = index.path / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:-10])
    with pytest.raises(IndexInvalid) as raised:
        load_index(tiny_settings.index_dir)
    assert str(raised.value) == f"index file {vectors} is missing or corrupt (checksum mismatch)"


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexInvalid) as raised:
        load_index(tmp_path)
    assert str(raised.value) == f"no index built yet in {tmp_path}"


def test_engine_rebuilds_corrupt_index_and_never_serves_it(tiny_settings: Settings) -> None:
    engine = Engine(tiny_settings, FakeEmbedder())
    first = engine.load()
    old = load_index(tiny_settings.index_dir)
    (old.path / "rows.jsonl").write_text("garbage\n", encoding="utf-8")
    report = Engine(tiny_settings, FakeEmbedder()).load()
    assert (first.action, report.action) == ("built", "built")
    assert report.reason == (
        f"index file {old.path / 'rows.jsonl'} is missing or corrupt (checksum mismatch)"
    )
    assert load_index(tiny_settings.index_dir).manifest.build_id != old.manifest.build_id


def test_engine_rebuilds_when_knowledge_changes_and_reuses_cached_vectors(
    tiny_settings: Settings,
) -> None:
    embedder = FakeEmbedder()
    engine = Engine(tiny_settings, embedder)
    assert engine.load().action == "built"
    assert engine.load().action == "loaded"
    calls_before = len(embedder.calls)
    report = engine.add_alternate("cancel-order", "kill the order")
    assert (report.action, report.reason) == ("built", "the knowledge changed since the index was built")
    # Once to check it sits nearest its own entry, once for the index; nothing else is re-encoded.
    assert embedder.calls[calls_before:] == [["kill the order"], ["kill the order"]]
    assert engine.ask("kill the order").best.entry.id == "cancel-order"  # type: ignore[union-attr]


def test_a_restart_takes_the_knowledge_hash_remembered_for_unchanged_files(
    tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Engine(tiny_settings, FakeEmbedder()).load().action == "built"
    kb_hash = load_knowledge(tiny_settings.knowledge_dir).content_hash()
    remembered = json.loads((tiny_settings.index_dir / CACHE_FILE).read_text())
    assert remembered["knowledge_hash"] == kb_hash
    assert [Path(stamp[0]).name for stamp in remembered["stamps"]] == sorted(
        p.name for p in tiny_settings.knowledge_dir.iterdir())
    hashed: list[int] = []
    real_hash = KnowledgeBase.content_hash
    def counted(kb: KnowledgeBase) -> str:
        hashed.append(1)
        return real_hash(kb)
    monkeypatch.setattr(KnowledgeBase, "content_hash", counted)
    assert Engine(tiny_settings, FakeEmbedder()).load().action == "loaded"
    assert hashed == []
    # A file written since (here a comment: the same content) is hashed again, then remembered.
    playbook = tiny_settings.knowledge_dir / "playbook.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8") + "# reviewed\n", encoding="utf-8")
    assert Engine(tiny_settings, FakeEmbedder()).load().action == "loaded"
    assert len(hashed) == 2  # the staleness check, then remembering it (cached on the object)
    # A changed card changes the hash: rebuilt, never served from the old index.
    playbook.write_text(playbook.read_text(encoding="utf-8").replace(
        "Customer wants to cancel", "Customer would like to cancel"), encoding="utf-8")
    report = Engine(tiny_settings, FakeEmbedder()).load()
    assert (report.action, report.reason) == ("built", "the knowledge changed since the index was built")


def test_a_damaged_remembered_hash_is_ignored(tiny_settings: Settings) -> None:
    Engine(tiny_settings, FakeEmbedder()).load()
    cache = tiny_settings.index_dir / CACHE_FILE
    for damage in ("{not json", '["a list"]', '{"stamps": [], "knowledge_hash": "x"}'):
        cache.write_text(damage, encoding="utf-8")
        assert Engine(tiny_settings, FakeEmbedder()).load().action == "loaded"
    # A wrong hash remembered for these very stamps costs a rebuild, never a stale index.
    stamps = json.loads(cache.read_text())["stamps"]
    cache.write_text(json.dumps({"stamps": stamps, "knowledge_hash": "0" * 64}), encoding="utf-8")
    report = Engine(tiny_settings, FakeEmbedder()).load()
    assert (report.action, report.reason) == ("built", "the knowledge changed since the index was built")


def test_failed_build_leaves_previous_index_current(
    tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = load_knowledge(tiny_settings.knowledge_dir)
    good = build_index(kb, FakeEmbedder(), tiny_settings.index_dir)

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("app.index.format.faiss.write_index", crash)
    with pytest.raises(OSError, match="disk full"):
        build_index(kb.with_alternate("cancel-order", "abort"), FakeEmbedder(),
                    tiny_settings.index_dir)
    assert (tiny_settings.index_dir / CURRENT_FILE).read_text().strip() == good.manifest.build_id
    assert load_index(tiny_settings.index_dir).manifest == good.manifest
    builds = tiny_settings.index_dir / "builds"
    assert [p.name for p in builds.iterdir()] == [good.manifest.build_id]


class OtherModel(FakeEmbedder):
    identity = "other-model@1"


def _served(engine: Engine) -> tuple[str, str, str | None]:
    answer = engine.ask("cancel my order please")
    return (engine.health()["model"], engine.health()["knowledge_hash"],
            answer.best.entry.id if answer.best else None)


def test_an_index_from_another_model_is_rebuilt_not_served(tiny_settings: Settings) -> None:
    Engine(tiny_settings, FakeEmbedder()).load()
    engine = Engine(tiny_settings, OtherModel())
    report = engine.load()
    assert (report.action, report.reason) == (
        "built", "the index was built with fake-bag-of-words@1#fake, the engine uses "
                 "other-model@1#fake")
    kb = load_knowledge(tiny_settings.knowledge_dir)
    assert _served(engine) == ("other-model@1", kb.content_hash(), "cancel-order")
    assert load_index(tiny_settings.index_dir).manifest.space == "other-model@1#fake"


def test_an_index_from_other_knowledge_is_rebuilt_not_served(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    other = tmp_path / "other-knowledge"
    other.mkdir()
    (other / "playbook.yaml").write_text(
        "entries:\n- id: refunds\n  question: How do refunds work\n  answer: In 5 days\n",
        encoding="utf-8")
    Engine(tiny_settings.model_copy(update={"knowledge_dir": other}), FakeEmbedder()).load()
    foreign = load_index(tiny_settings.index_dir).manifest
    engine = Engine(tiny_settings, FakeEmbedder())
    report = engine.load()
    assert (report.action, report.reason, report.entries) == (
        "built", "the knowledge changed since the index was built", 3)
    kb = load_knowledge(tiny_settings.knowledge_dir)
    assert foreign.knowledge_hash != kb.content_hash()
    assert _served(engine) == ("fake-bag-of-words@1", kb.content_hash(), "cancel-order")


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda text: text[: text.index("\n") + 1],  # cut after its first line
     "has an unreadable manifest: Expecting property name enclosed in double quotes: "
     "line 2 column 1 (char 2)"),
    (lambda text: "", "has an unreadable manifest: Expecting value: line 1 column 1 (char 0)"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "files"}),
     "has an unreadable manifest: its content does not match its checksum (edited by hand?)"),
])
def test_a_truncated_or_damaged_manifest_is_rebuilt_not_served(
    tiny_settings: Settings, damage: Any, problem: str
) -> None:
    Engine(tiny_settings, FakeEmbedder()).load()
    broken = load_index(tiny_settings.index_dir)
    manifest = broken.path / "manifest.json"
    manifest.write_text(damage(manifest.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(IndexInvalid) as raised:
        load_index(tiny_settings.index_dir)
    assert str(raised.value) == f"index build {broken.manifest.build_id} {problem}"
    engine = Engine(tiny_settings, FakeEmbedder())
    report = engine.load()
    assert (report.action, report.reason) == (
        "built", f"index build {broken.manifest.build_id} {problem}")
    assert load_index(tiny_settings.index_dir).manifest.build_id != broken.manifest.build_id
    kb = load_knowledge(tiny_settings.knowledge_dir)
    assert _served(engine) == ("fake-bag-of-words@1", kb.content_hash(), "cancel-order")


def test_a_missing_vectors_file_is_rebuilt_not_served(tiny_settings: Settings) -> None:
    Engine(tiny_settings, FakeEmbedder()).load()
    broken = load_index(tiny_settings.index_dir)
    (broken.path / "vectors.faiss").unlink()
    report = Engine(tiny_settings, FakeEmbedder()).load()
    assert (report.action, report.reason) == (
        "built", f"index file {broken.path / 'vectors.faiss'} is missing or corrupt "
                 "(checksum mismatch)")


def test_the_out_of_scope_questions_vectors_are_kept_checked_and_required(
        tiny_settings: Settings) -> None:
    kb = load_knowledge(tiny_settings.knowledge_dir)
    built = build_index(kb, FakeEmbedder(), tiny_settings.index_dir)
    loaded = load_index(tiny_settings.index_dir)
    assert loaded.out_of_scope is not None and built.out_of_scope is not None
    assert loaded.out_of_scope.tolist() == FakeEmbedder().encode(list(kb.out_of_scope)).tolist()
    assert len(kb.out_of_scope) == 3
    earlier = replace(loaded, out_of_scope=None)  # as an earlier version built it
    assert staleness(earlier, kb, "fake-bag-of-words@1#fake") == (
        "the index holds no vectors of the out-of-scope questions (an earlier version's)")
    assert staleness(earlier, replace(kb, out_of_scope=()), "fake-bag-of-words@1#fake") == (
        "the knowledge changed since the index was built")
    damaged = loaded.path / "out_of_scope.npy"
    damaged.write_bytes(damaged.read_bytes()[:-4] + b"\xff\xff\xff\xff")
    with pytest.raises(IndexInvalid) as raised:
        load_index(tiny_settings.index_dir)
    assert str(raised.value) == f"index file {damaged} is missing or corrupt (checksum mismatch)"
