from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.config import Settings
from app.engine.engine import Engine
from app.errors import IndexInvalid
from app.index.build import build_index
from app.index.format import HEAD_FILE, load_index, staleness
from app.knowledge.playbook import KnowledgeBase
from app.ranking import head
from app.ranking.head import IntentHead, batch_rows, fit_head, head_skipped
from app.ranking.ranker import Ranker
from app.ranking.training import cross_fitted_log_probs
from app.records import Entry
from tests.fakes import FakeEmbedder

ENTRIES = (
    Entry("refund", "customer wants a refund", "r",
          alternates=("money back please", "refund my payment", "return the money for the order")),
    Entry("cancel", "customer wants to cancel the order", "c",
          alternates=("stop the order", "cancel my purchase", "abort the purchase please")),
    Entry("track", "where is my package", "t",
          alternates=("track the parcel", "package tracking number", "when will the parcel arrive")),
    Entry("address", "change the delivery address", "a",
          alternates=("ship to another address", "wrong address on the order",
                      "update the delivery address")),
)
OUT_OF_SCOPE = ("what is the weather tomorrow", "tell me a joke", "reset my laptop password",
                "who won the game")
# 12 held-out alternates + 4 out-of-scope lines: enough to fit a calibration, so a head is kept.
KB = KnowledgeBase(entries=ENTRIES, out_of_scope=OUT_OF_SCOPE)
SPACE = "fake-bag-of-words@1#fake"


def test_log_probs_of_a_hand_made_problem() -> None:
    vectors = np.eye(3, dtype=np.float32)[[0, 0, 1, 2]]
    head = fit_head(vectors, np.array([0, 0, 1, 1]), entries=2)
    log_probs = head.log_probs(np.eye(3, dtype=np.float32))
    assert np.exp(log_probs).sum(axis=1).round(6).tolist() == [1.0, 1.0, 1.0]
    # Entry 1's weight is shared by two directions, so each is half as sure as entry 0's one.
    assert log_probs.round(2).tolist() == [[0.0, -86.11], [-43.06, 0.0], [-43.06, 0.0]]


def test_no_head_where_it_cannot_help_or_would_cost_too_much() -> None:
    assert head_skipped(1, 3, 2, 384) == "fewer than 2 entries"
    assert head_skipped(77, 77, 0, 384) == "no entry has alternates"
    assert head_skipped(77, 847, 770, 384) is None
    # BANKING77 with every training text: over MAX_WORK, so minibatches of 3,382 rows.
    assert (head_skipped(77, 10_080, 10_003, 384), batch_rows(77, 384)) == (None, 3_382)
    # 10,000 entries leave 26 rows a step: 7,800 rows seen in all, under one pass.
    assert head_skipped(10_000, 11_000, 1_000, 384) == (
        "too large to fit quickly (10000 entries, 11000 texts)")


def test_a_knowledge_over_the_budget_gets_a_head_fitted_on_minibatches(
    tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 16 texts x 4 entries x 64 dimensions = 4,096 > 2,048: steps of 8 rows, 150 passes.
    monkeypatch.setattr(head, "MAX_WORK", 2048.0)
    assert (head_skipped(4, 16, 12, 64), batch_rows(4, 64)) == (None, 8)
    built = build_index(KB, fake_embedder, tmp_path, head_weight=0.1)
    assert built.manifest.head == "fitted" and built.head is not None
    questions = fake_embedder.encode([e.question for e in ENTRIES])
    assert np.exp(built.head.log_probs(questions)).round(3).tolist() == np.eye(4).tolist()
    query = fake_embedder.encode(["the package please"])[0]
    assert [(s.entry.id, round(s.score, 4)) for s in Ranker(built, ENTRIES).rank(query, 2)] == [
        ("track", 0.5164), ("cancel", -1.1088)]


def test_a_minibatch_fit_is_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 64)).astype(np.float32)
    labels = np.repeat(np.arange(4), 10)
    monkeypatch.setattr(head, "MAX_WORK", 4 * 64 * 12.0)  # 12 rows a step
    first, second = fit_head(vectors, labels, 4), fit_head(vectors, labels, 4)
    assert np.array_equal(first.weights, second.weights)
    assert np.array_equal(first.bias, second.bias)
    # Every row was seen: each is assigned to its own entry.
    assert (first.log_probs(vectors).argmax(axis=1) == labels).all()


def test_head_is_saved_with_a_checksum_and_loaded(tmp_path: Path) -> None:
    built = build_index(KB, FakeEmbedder(), tmp_path, head_weight=0.1)
    assert (built.manifest.head, built.manifest.head_weight) == ("fitted", 0.1)
    assert sorted(built.manifest.files) == [
        "head.npz", "out_of_scope.npy", "rows.jsonl", "vectors.faiss"]
    loaded = load_index(tmp_path)
    assert loaded.manifest == built.manifest
    assert loaded.head is not None and built.head is not None
    assert np.array_equal(loaded.head.weights, built.head.weights)
    assert np.array_equal(loaded.head.bias, built.head.bias)


def test_a_damaged_head_is_refused(tmp_path: Path) -> None:
    built = build_index(KB, FakeEmbedder(), tmp_path, head_weight=0.1)
    head_file = built.path / HEAD_FILE
    IntentHead(np.zeros((64, 4), dtype=np.float32), np.zeros(4, dtype=np.float32)).save(head_file)
    with pytest.raises(IndexInvalid) as raised:
        load_index(tmp_path)
    assert str(raised.value) == f"index file {head_file} is missing or corrupt (checksum mismatch)"
    head_file.unlink()
    with pytest.raises(IndexInvalid) as raised:
        load_index(tmp_path)
    assert str(raised.value) == f"index file {head_file} is missing or corrupt (checksum mismatch)"


def test_off_builds_keep_the_old_layout(tmp_path: Path) -> None:
    built = build_index(KB, FakeEmbedder(), tmp_path)
    assert (built.manifest.head, built.manifest.head_weight, built.head) == ("off", 0.0, None)
    assert sorted(built.manifest.files) == ["out_of_scope.npy", "rows.jsonl", "vectors.faiss"]
    assert not (built.path / HEAD_FILE).exists()
    assert load_index(tmp_path).head is None


def test_an_index_calibrated_with_another_weight_is_stale(tmp_path: Path) -> None:
    index = build_index(KB, FakeEmbedder(), tmp_path, head_weight=0.1)
    assert staleness(index, KB, SPACE, 0.1) is None
    assert staleness(index, KB, SPACE, 0.2) == (
        "the index was calibrated with head weight 0.1, the engine uses 0.2")
    assert staleness(index, KB, SPACE, 0.0) == (
        "the index was calibrated with head weight 0.1, the engine uses 0.0")


def test_the_head_reorders_entries_by_cosine_plus_weighted_log_probability(
    tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    query = fake_embedder.encode(["the package please"])[0]
    without = Ranker(build_index(KB, fake_embedder, tmp_path / "off"), ENTRIES)
    with_head = Ranker(build_index(KB, fake_embedder, tmp_path / "on", head_weight=0.1), ENTRIES)
    assert [(s.entry.id, round(s.score, 4)) for s in without.rank(query, 2)] == [
        ("cancel", 0.5774), ("track", 0.5164)]
    assert [(s.entry.id, round(s.score, 4)) for s in with_head.rank(query, 2)] == [
        ("track", 0.5144), ("cancel", 0.1828)]


def test_calibration_scores_each_alternate_with_a_head_that_never_saw_it() -> None:
    # Every text is its own random direction: nothing generalises, so a head that saw a
    # held-out text recognises it (log p ~ 0) while an honest one cannot tell (about chance, 1/4).
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.repeat(np.arange(4), 10)
    held_out = np.flatnonzero(np.arange(40) % 10 != 0)  # all but each entry's "question"
    own = (np.arange(len(held_out)), labels[held_out])
    leaking = fit_head(vectors, labels, 4).log_probs(vectors[held_out])[own]
    honest = cross_fitted_log_probs(vectors, labels, held_out, 4)[own]
    assert round(float(np.exp(leaking).mean()), 2) == 1.0
    assert round(float(np.exp(honest).mean()), 2) == 0.19


def test_too_few_examples_to_calibrate_means_no_head(tiny_settings: Settings,
                                                     fake_embedder: FakeEmbedder) -> None:
    # The tiny playbook (6 alternates, 3 out-of-scope lines) falls back to the default
    # calibration, which knows nothing of log-probabilities: its fast tests rank by cosine.
    engine = Engine(tiny_settings, fake_embedder)
    engine.load()
    manifest = load_index(tiny_settings.index_dir).manifest
    assert (manifest.head, manifest.head_weight) == (
        "skipped: too few held-out examples to calibrate it", 0.1)
    assert load_index(tiny_settings.index_dir).head is None


def test_changing_the_weight_rebuilds(tiny_settings: Settings,
                                      fake_embedder: FakeEmbedder) -> None:
    Engine(tiny_settings, fake_embedder).load()
    report = Engine(tiny_settings.model_copy(update={"head_weight": 0.0}), fake_embedder).load()
    assert (report.action, report.reason) == (
        "built", "the index was calibrated with head weight 0.1, the engine uses 0.0")
