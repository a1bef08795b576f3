"""Calibration: held-out alternates, and the synthetic out-of-scope questions made from them by
leaving their entry out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.index.build import build_index
from app.index.format import Manifest, content_checksum
from app.knowledge.playbook import load_knowledge
from app.ranking.calibration import (
    DEFAULT_CALIBRATION,
    Calibration,
    fit_calibration,
    fit_logistic,
    held_out_features,
    synthetic_weight,
)
from app.ranking.head import fit_head
from app.ranking.training import calibrate, entry_folds, synthetic_negative_features
from tests.fakes import FakeEmbedder

# Three entries of two rows each (question, alternate), in 3 dimensions: cosines by hand.
VECTORS = np.array([
    [1.0, 0.0, 0.0], [0.6, 0.8, 0.0],  # entry 0: question, alternate a0
    [0.0, 1.0, 0.0], [0.0, 0.6, 0.8],  # entry 1: question, alternate a1
    [0.0, 0.0, 1.0], [0.6, 0.0, 0.8],  # entry 2: question, alternate a2
], dtype=np.float32)
ROW_ENTRY = np.array([0, 0, 1, 1, 2, 2], dtype=np.int64)
HELD_OUT = np.array([1, 3, 5], dtype=np.int64)


def clustered(entries: int = 12, per_entry: int = 5, seed: int = 0) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """Noisy phrasings around one direction per entry: some held-out alternates land on
    another entry, so the old fit (no synthetic negatives) has something to fit."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(entries, 16))
    vectors = np.repeat(centres, per_entry, axis=0) + 1.2 * rng.normal(size=(entries * per_entry, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    row_entry = np.repeat(np.arange(entries), per_entry).astype(np.int64)
    is_alternate = np.arange(entries * per_entry) % per_entry != 0
    return vectors, row_entry, is_alternate, rng


def test_each_held_out_alternate_is_asked_against_the_other_entries_only() -> None:
    # a0 = (.6, .8, 0): entry 1 best .8 (its question), entry 2 best .36 (a2) -> margin .44.
    # a1 = (0, .6, .8): entry 2 best .8 (its question), entry 0 best .48 (a0) -> margin .32.
    # a2 = (.6, 0, .8): entry 1 best .64 (a1), entry 0 best .6 (its question) -> margin .04.
    scores, margins = synthetic_negative_features(VECTORS, ROW_ENTRY, HELD_OUT, 3)
    assert scores == pytest.approx([0.8, 0.8, 0.64], abs=1e-6)
    assert margins == pytest.approx([0.44, 0.32, 0.04], abs=1e-6)


def test_with_the_head_each_fold_is_scored_by_a_head_fitted_without_it() -> None:
    scores, margins = synthetic_negative_features(VECTORS, ROW_ENTRY, HELD_OUT, 3, head_weight=0.1)
    # a2's fold is entry 2: a head on entries 0 and 1 (labels re-indexed 0, 1) scores it.
    log_p = fit_head(VECTORS[:4], np.array([0, 0, 1, 1]), 2).log_probs(VECTORS[5:6])[0]
    per_entry = np.array([0.6, 0.64]) + 0.1 * log_p
    assert (scores[2], margins[2]) == pytest.approx(
        (per_entry.max(), per_entry.max() - per_entry.min()), abs=1e-6)
    assert scores[2] < 0.64  # the head's log p is negative: a lower score than cosine alone


def test_entries_fall_in_their_own_fold_below_10_else_in_5() -> None:
    assert entry_folds(3).tolist() == [0, 1, 2]
    assert entry_folds(9).tolist() == list(range(9))
    assert entry_folds(12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    # One entry: nothing to ask its alternates against.
    one = synthetic_negative_features(VECTORS[:2], ROW_ENTRY[:2], np.array([1]), 1)
    assert (one[0].size, one[1].size) == (0, 0)


def test_with_5_entry_folds_an_alternate_meets_no_entry_of_its_fold() -> None:
    vectors, row_entry, is_alternate, _ = clustered(entries=12)
    held_out = np.flatnonzero(is_alternate)
    scores, margins = synthetic_negative_features(vectors, row_entry, held_out, 12)
    fold = entry_folds(12)
    for i, row in enumerate(held_out):
        others = fold[row_entry] != fold[row_entry[row]]
        per_entry = [float((vectors[(row_entry == e) & others] @ vectors[row]).max())
                     for e in np.unique(row_entry[others])]
        best, second = sorted(per_entry, reverse=True)[:2]
        assert (scores[i], margins[i]) == pytest.approx((best, best - second), abs=1e-6)


def test_synthetic_negatives_weigh_as_if_a_quarter_of_questions_were_out_of_scope() -> None:
    assert synthetic_weight(120, 120) == pytest.approx(1 / 3)
    assert synthetic_weight(120, 60) == pytest.approx(2 / 3)
    assert synthetic_weight(120, 120, oos_share=0.5) == pytest.approx(1.0)
    assert synthetic_weight(120, 0) == 0.0
    # Real out-of-scope examples count first; the synthetic ones only top them up.
    assert synthetic_weight(120, 120, real_negatives=20) == pytest.approx(20 / 120)
    assert synthetic_weight(120, 120, real_negatives=60) == 0.0


def test_a_sample_weight_of_2_is_the_same_fit_as_the_row_twice() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(30, 2))
    labels = (features[:, 0] + rng.normal(size=30) > 0).astype(np.float64)
    weights = np.where(np.arange(30) < 10, 2.0, 1.0)
    twice = fit_logistic(np.vstack([features, features[:10]]), np.r_[labels, labels[:10]])
    assert fit_logistic(features, labels, sample_weights=weights) == pytest.approx(twice)
    assert fit_logistic(features, labels, sample_weights=np.ones(30)) == pytest.approx(
        fit_logistic(features, labels))


def test_the_build_records_the_synthetic_negatives() -> None:
    vectors, row_entry, is_alternate, _ = clustered()
    calibration = calibrate(vectors, row_entry, is_alternate, 12, vectors[:0])
    assert (calibration.positives, calibration.negatives, calibration.synthetic_negatives) == (
        36, 12, 48)
    assert calibration.synthetic_weight == pytest.approx(1 / 3)
    assert (round(calibration.intercept, 3), round(calibration.weight_score, 3),
            round(calibration.weight_margin, 3)) == (-2.990, 4.689, 4.015)
    assert calibration.threshold == 0.5


def test_an_out_of_scope_question_is_less_confident_than_with_the_old_fit() -> None:
    vectors, row_entry, is_alternate, rng = clustered()
    old = calibrate(vectors, row_entry, is_alternate, 12, vectors[:0], oos_share=0.0)
    new = calibrate(vectors, row_entry, is_alternate, 12, vectors[:0])
    assert (old.synthetic_negatives, old.synthetic_weight) == (0, 0.0)
    query = rng.normal(size=(1, 16))
    query = (query / np.linalg.norm(query)).astype(np.float32)
    scores, margins, _ = held_out_features(vectors, row_entry, np.zeros(0, np.int64), query)
    assert (round(float(scores[0]), 3), round(float(margins[0]), 3)) == (0.635, 0.096)
    assert round(old.confidence(scores[0], margins[0]), 3) == 0.729
    assert round(new.confidence(scores[0], margins[0]), 3) == 0.592


def test_synthetic_negatives_give_the_contrast_but_not_the_10_queries_a_fit_needs() -> None:
    right = np.ones(12, dtype=bool)
    scores, margins = np.linspace(0.7, 0.9, 12), np.full(12, 0.2)
    assert fit_calibration(scores, margins, right) == DEFAULT_CALIBRATION
    fitted = fit_calibration(scores, margins, right, scores - 0.3, margins / 2, 1.0)
    assert (fitted.positives, fitted.negatives, fitted.synthetic_negatives) == (12, 0, 12)
    few = fit_calibration(scores[:9], margins[:9], right[:9], scores - 0.3, margins / 2, 1.0)
    assert few == DEFAULT_CALIBRATION


def test_a_manifest_from_before_synthetic_negatives_still_loads(
        tiny_knowledge: Path, fake_embedder: FakeEmbedder, tmp_path: Path) -> None:
    built = build_index(load_knowledge(tiny_knowledge), fake_embedder, tmp_path / "index")
    data = json.loads(built.manifest.to_json())
    del data["calibration"]["synthetic_negatives"], data["calibration"]["synthetic_weight"]
    del data["checksum"]
    data["checksum"] = content_checksum(data)
    calibration = Manifest.from_json(json.dumps(data)).calibration
    assert calibration == built.manifest.calibration == DEFAULT_CALIBRATION
    # The tiny playbook's 6 alternates and 3 out-of-scope lines are still too few to fit on.
    assert isinstance(calibration, Calibration)
