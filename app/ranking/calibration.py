"""Confidence that means what it says: P(top entry is right), fitted at build time.

Training data comes from the knowledge itself, never from the evaluation set:
- each alternate phrasing is held out in turn and asked as a query against the rest of the
  index (leave-one-out): a positive if its own entry comes first, a negative otherwise;
- every line of `out_of_scope.txt` is asked too: always a negative, since no entry is right.
A two-feature logistic model on (top score, margin to the runner-up) is fitted to these.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

# Playbooks with very many alternates need no more held-out queries than this to fit 3 numbers.
MAX_HELD_OUT = 1000


@dataclass(frozen=True)
class Calibration:
    intercept: float
    weight_score: float
    weight_margin: float
    threshold: float  # answer when confidence >= threshold, else "no confident match"
    ambiguity_margin: float  # top two entries closer than this (raw score) are ambiguous
    positives: int = 0
    negatives: int = 0

    def confidence(self, score: float, margin: float) -> float:
        z = self.intercept + self.weight_score * score + self.weight_margin * margin
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


# Used when there is nothing to fit on (no alternates, no out-of-scope examples).
DEFAULT_CALIBRATION = Calibration(
    intercept=-9.0, weight_score=14.0, weight_margin=20.0, threshold=0.5, ambiguity_margin=0.02
)


def fit_logistic(
    features: npt.NDArray[np.float64], labels: npt.NDArray[np.float64], l2: float = 1e-2
) -> npt.NDArray[np.float64]:
    """Newton's method on the L2-regularised log loss; returns [intercept, w1, w2, ...]."""
    x = np.hstack([np.ones((features.shape[0], 1)), features])
    weights = np.zeros(x.shape[1])
    penalty = l2 * np.eye(x.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ weights, -60, 60)))
        gradient = x.T @ (p - labels) + penalty @ weights
        hessian = (x.T * (p * (1 - p))) @ x + penalty
        step = np.linalg.solve(hessian + 1e-9 * np.eye(x.shape[1]), gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return weights


def fit_calibration(
    scores: npt.NDArray[np.float64],
    margins: npt.NDArray[np.float64],
    correct: npt.NDArray[np.bool_],
    ambiguity_margin: float = 0.02,
) -> Calibration:
    """Fit on held-out queries: their top score, margin, and whether the top entry was right."""
    if correct.size < 10 or correct.all() or not correct.any():
        return DEFAULT_CALIBRATION
    weights = fit_logistic(np.column_stack([scores, margins]), correct.astype(np.float64))
    return Calibration(
        intercept=float(weights[0]),
        weight_score=float(weights[1]),
        weight_margin=float(weights[2]),
        threshold=0.5,
        ambiguity_margin=ambiguity_margin,
        positives=int(correct.sum()),
        negatives=int((~correct).sum()),
    )


def held_out_features(
    vectors: npt.NDArray[np.float32],
    row_entry: npt.NDArray[np.int64],
    held_out_rows: npt.NDArray[np.int64],
    negatives: npt.NDArray[np.float32],
    held_out_bonus: npt.NDArray[np.float64] | None = None,
    negative_bonus: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(top score, margin, correct) for each held-out row asked against the other rows, then for
    each out-of-scope vector asked against all rows. Rows must be grouped by entry. An entry's
    score is its best cosine plus, when given, that query's bonus for the entry (the intent
    head's weighted log-probability: exactly what the ranker ranks by)."""
    starts = np.flatnonzero(np.r_[True, row_entry[1:] != row_entry[:-1]])
    scores: list[npt.NDArray[np.float64]] = []
    margins: list[npt.NDArray[np.float64]] = []
    correct: list[npt.NDArray[np.bool_]] = []

    def collect(queries: npt.NDArray[np.float32], own_rows: npt.NDArray[np.int64] | None,
                bonus: npt.NDArray[np.float64] | None) -> None:
        for begin in range(0, len(queries), 512):
            similarity = queries[begin : begin + 512] @ vectors.T
            if own_rows is not None:
                chunk = own_rows[begin : begin + 512]
                similarity[np.arange(len(chunk)), chunk] = -np.inf
            per_entry = np.maximum.reduceat(similarity, starts, axis=1)
            if bonus is not None:
                per_entry = per_entry + bonus[begin : begin + 512]
            # The best two per row, not a full sort: a 10k-entry playbook re-indexes in a
            # fraction of the time (the values are the same, float32 widens exactly).
            if per_entry.shape[1] == 1:
                top_two = np.hstack([per_entry, np.zeros_like(per_entry)])
            else:
                top_two = -np.partition(-per_entry, 1, axis=1)[:, :2]
            top_two = top_two.astype(np.float64)
            scores.append(top_two[:, 0])
            margins.append(top_two[:, 0] - top_two[:, 1])
            if own_rows is None:
                correct.append(np.zeros(len(similarity), dtype=bool))
            else:
                winner = row_entry[starts[np.argmax(per_entry, axis=1)]]
                correct.append(winner == row_entry[own_rows[begin : begin + 512]])

    if len(held_out_rows):
        collect(vectors[held_out_rows], held_out_rows, held_out_bonus)
    if len(negatives):
        collect(negatives, None, negative_bonus)
    if not scores:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    return np.concatenate(scores), np.concatenate(margins), np.concatenate(correct)
