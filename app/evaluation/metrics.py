"""Retrieval and calibration metrics as pure functions over ranked entry ids.

Conventions (README.md, Evaluation):
- a ranking is the list of entry ids a system returned, best first; tied scores count in the
  order the system returned them, because that is the order an agent sees;
- `relevant` is the set of ids that count as a right answer (empty for an out-of-scope query);
- ranking metrics are averaged over in-scope queries only.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np


def precision_at(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the first k positions holding a relevant entry (missing positions count as 0)."""
    return sum(1 for entry_id in ranking[:k] if entry_id in relevant) / k


def recall_at(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant entries found in the first k positions."""
    if not relevant:
        raise ValueError("recall needs at least one relevant entry")
    return len(set(ranking[:k]) & set(relevant)) / len(set(relevant))


def reciprocal_rank(ranking: Sequence[str], relevant: Collection[str]) -> float:
    for position, entry_id in enumerate(ranking, start=1):
        if entry_id in relevant:
            return 1.0 / position
    return 0.0


def average_precision(ranking: Sequence[str], relevant: Collection[str]) -> float:
    """Mean of precision@rank over the ranks of the relevant entries; relevant entries that were
    not retrieved contribute 0 (the denominator is all relevant entries)."""
    wanted = set(relevant)
    if not wanted:
        raise ValueError("average precision needs at least one relevant entry")
    hits = 0
    total = 0.0
    for position, entry_id in enumerate(ranking, start=1):
        if entry_id in wanted:
            hits += 1
            total += hits / position
            wanted.discard(entry_id)  # a repeated id counts once
    return total / len(set(relevant))


def mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def rate(flags: Sequence[bool]) -> float | None:
    """Share of True, or None when there is nothing to count."""
    return sum(flags) / len(flags) if flags else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass(frozen=True)
class ReliabilityBin:
    """Queries whose confidence fell in [lower, upper) (the last bin includes 1.0)."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % Wilson interval of the accuracy; None for an empty bin."""
        if not self.count or self.accuracy is None:
            return None
        return wilson_interval(round(self.accuracy * self.count), self.count)


def reliability_table(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width confidence bins against the observed share of correct top answers."""
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct differ in length")
    table = []
    for b in range(bins):
        lower, upper = b / bins, (b + 1) / bins
        members = [
            i for i, c in enumerate(confidences)
            if _bin_of(c, bins) == b
        ]
        table.append(ReliabilityBin(
            lower=round(lower, 10),
            upper=round(upper, 10),
            count=len(members),
            mean_confidence=mean([confidences[i] for i in members]),
            accuracy=mean([1.0 if correct[i] else 0.0 for i in members]),
        ))
    return table


def _bin_of(confidence: float, bins: int) -> int:
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence {confidence} is outside [0, 1]")
    # A confidence on an edge goes to the bin above it; 1.0 goes to the last bin.
    return min(int(confidence * bins + 1e-12), bins - 1)


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of a share: honest on few trials, where a bin
    of 2 queries at 50 % says little (0.09-0.91)."""
    if trials <= 0:
        raise ValueError("an interval needs at least one trial")
    share = successes / trials
    scale = 1.0 + z * z / trials
    centre = (share + z * z / (2 * trials)) / scale
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / scale
    # Clamped so that rounding never puts the share itself outside its interval.
    return max(0.0, min(share, centre - half)), min(1.0, max(share, centre + half))


def expected_calibration_error(table: Sequence[ReliabilityBin]) -> float | None:
    """Sum over bins of (share of queries in the bin) x |accuracy - mean confidence|."""
    total = sum(b.count for b in table)
    if total == 0:
        return None
    return float(sum(
        b.count / total * abs((b.accuracy or 0.0) - (b.mean_confidence or 0.0))
        for b in table if b.count
    ))
