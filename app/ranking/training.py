"""What a build learns from the knowledge for ranking: the intent head, and the calibration of
confidence, fitted on held-out alternates (cross-fitted when the head is on), the same alternates
asked with their entry left out (synthetic out-of-scope questions), and out-of-scope examples."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.embedding.embedder import Vectors
from app.ranking.calibration import (
    MAX_HELD_OUT,
    OOS_SHARE,
    Calibration,
    fit_calibration,
    held_out_features,
    left_out_features,
    synthetic_weight,
)
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


def entry_folds(entries: int) -> npt.NDArray[np.int64]:
    """Each entry's fold for the synthetic negatives: below 10 entries its own (exactly
    leave-one-entry-out), else its number mod CROSS_FIT_FOLDS. On BANKING77, 5 entry folds
    calibrated as well as 77 one-entry-out heads, at a fifteenth of the fitting."""
    folds = entries if entries < 2 * CROSS_FIT_FOLDS else CROSS_FIT_FOLDS
    return np.arange(entries, dtype=np.int64) % max(1, folds)


def synthetic_negative_features(
    vectors: Vectors, row_entry: npt.NDArray[np.int64], held_out: npt.NDArray[np.int64],
    entries: int, head_weight: float = 0.0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(top score, margin) of each held-out alternate asked against the entries outside its
    entry's fold only: a question the playbook does not cover, but worded like those it does.
    With `head_weight` > 0 each fold's entries are scored with a head fitted on the other
    folds' rows, as the served head would score a question about none of its entries. Playbooks
    of fewer than 2 entries have none."""
    if entries < 2 or not len(held_out):
        return np.zeros(0), np.zeros(0)
    fold_of_entry = entry_folds(entries)
    held_out_fold = fold_of_entry[row_entry[held_out]]
    scores, margins = np.zeros(len(held_out)), np.zeros(len(held_out))
    for fold in np.unique(held_out_fold):
        kept = fold_of_entry != fold
        rows = kept[row_entry]
        labels = (np.cumsum(kept) - 1)[row_entry[rows]]  # re-indexed to the kept entries
        in_fold = held_out_fold == fold
        queries = vectors[held_out[in_fold]]
        bonus = None
        if head_weight > 0:
            head = fit_head(vectors[rows], labels, int(kept.sum()))
            bonus = head_weight * head.log_probs(queries)
        scores[in_fold], margins[in_fold] = left_out_features(vectors[rows], labels, queries, bonus)
    return scores, margins


def calibrate(
    vectors: Vectors, row_entry: npt.NDArray[np.int64], row_is_alternate: npt.NDArray[np.bool_],
    entries: int, negatives: Vectors, head: IntentHead | None = None, head_weight: float = 0.0,
    oos_share: float = OOS_SHARE,
) -> Calibration:
    """Calibration on held-out alternates, synthetic negatives weighing as if `oos_share` of
    questions were out of scope (0: none), and the out-of-scope examples."""
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
    synthetic_scores, synthetic_margins = np.zeros(0), np.zeros(0)
    # One synthetic negative per held-out alternate (none under 2 entries), scored only when the
    # real out-of-scope examples leave them some weight.
    weight = synthetic_weight(len(held_out), len(held_out) if entries >= 2 else 0,
                              len(negatives), oos_share)
    if weight > 0:
        synthetic_scores, synthetic_margins = synthetic_negative_features(
            vectors, row_entry, held_out, entries, head_weight if head is not None else 0.0)
    return fit_calibration(scores, margins, correct, synthetic_scores, synthetic_margins, weight)


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
