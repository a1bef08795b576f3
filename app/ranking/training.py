"""What a build learns from the knowledge for ranking: the intent head, and the calibration of
confidence, fitted on held-out alternates (cross-fitted when the head is on) and out-of-scope
examples."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.embedding.embedder import Vectors
from app.ranking.calibration import MAX_HELD_OUT, Calibration, fit_calibration, held_out_features
from app.ranking.head import IntentHead, fit_head, head_skipped

# Calibration scores each held-out alternate with a head fitted without it (cross-fitting):
# a head that had seen the query would make the calibration over-confident.
CROSS_FIT_FOLDS = 5


def fit_intent_head(
    vectors: Vectors, row_entry: npt.NDArray[np.int64], row_is_alternate: npt.NDArray[np.bool_],
    entries: int, head_weight: float,
) -> tuple[IntentHead | None, str]:
    """The head and its status for the manifest: "fitted", "off", or "skipped: <why>"."""
    if head_weight <= 0:
        return None, "off"
    why = head_skipped(entries, len(vectors), int(row_is_alternate.sum()), vectors.shape[1])
    if why is not None:
        return None, f"skipped: {why}"
    return fit_head(vectors, row_entry, entries), "fitted"


def cross_fitted_log_probs(
    vectors: Vectors, labels: npt.NDArray[np.int64], held_out: npt.NDArray[np.int64],
    entries: int,
) -> npt.NDArray[np.float64]:
    """log p(entry | held-out row) from heads that never saw that row: the held-out rows are
    dealt round-robin into folds, and each fold is scored by a head fitted on every other row
    (each entry keeps its question, which is never held out)."""
    out = np.zeros((len(held_out), entries))
    fold_of = np.arange(len(held_out)) % CROSS_FIT_FOLDS
    for fold in range(min(CROSS_FIT_FOLDS, len(held_out))):
        in_fold = fold_of == fold
        training = np.ones(len(vectors), dtype=bool)
        training[held_out[in_fold]] = False
        head = fit_head(vectors[training], labels[training], entries)
        out[in_fold] = head.log_probs(vectors[held_out[in_fold]])
    return out


def calibrate(
    vectors: Vectors, row_entry: npt.NDArray[np.int64], row_is_alternate: npt.NDArray[np.bool_],
    entries: int, negatives: Vectors, head: IntentHead | None = None, head_weight: float = 0.0,
) -> Calibration:
    held_out = np.flatnonzero(row_is_alternate).astype(np.int64)
    if len(held_out) > MAX_HELD_OUT:
        held_out = np.sort(np.random.default_rng(0).choice(held_out, MAX_HELD_OUT, replace=False))
    held_out_bonus = negative_bonus = None
    if head is not None:
        held_out_bonus = head_weight * cross_fitted_log_probs(vectors, row_entry, held_out, entries)
        # No out-of-scope line trained the head, so the served head scores them honestly.
        negative_bonus = head_weight * head.log_probs(negatives)
    scores, margins, correct = held_out_features(
        vectors, row_entry, held_out, negatives, held_out_bonus, negative_bonus)
    return fit_calibration(scores, margins, correct)


def train(
    vectors: Vectors, row_entry: npt.NDArray[np.int64], row_is_alternate: npt.NDArray[np.bool_],
    entries: int, negatives: Vectors, head_weight: float,
) -> tuple[IntentHead | None, str, Calibration]:
    """The head (when on and the playbook suits one) and the calibration that goes with it."""
    head, status = fit_intent_head(vectors, row_entry, row_is_alternate, entries, head_weight)
    calibration = calibrate(vectors, row_entry, row_is_alternate, entries, negatives, head,
                            head_weight)
    if head is not None and calibration.positives + calibration.negatives == 0:
        # The fallback calibration knows cosines, not the head's log-probability gaps, which
        # run large on questions unlike any entry's: an uncalibrated head would be over-confident.
        head, status = None, "skipped: too few held-out examples to calibrate it"
        calibration = calibrate(vectors, row_entry, row_is_alternate, entries, negatives)
    return head, status, calibration
