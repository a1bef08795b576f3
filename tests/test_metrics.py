from __future__ import annotations

import pytest

from app.evaluation.metrics import (
    ReliabilityBin,
    average_precision,
    expected_calibration_error,
    mean,
    percentile,
    precision_at,
    rate,
    recall_at,
    reciprocal_rank,
    reliability_table,
)


def test_precision_at_k_counts_missing_positions_as_misses() -> None:
    assert precision_at(["a", "x", "b"], {"a", "b"}, 1) == 1.0
    assert precision_at(["a", "x", "b"], {"a", "b"}, 3) == pytest.approx(2 / 3)
    assert precision_at(["x", "a"], {"a"}, 1) == 0.0
    assert precision_at(["a"], {"a"}, 3) == pytest.approx(1 / 3)


def test_recall_at_k_with_several_relevant_entries() -> None:
    ranking = ["a", "x", "b", "y", "c"]
    assert recall_at(ranking, {"a", "b", "c", "d"}, 3) == 0.5
    assert recall_at(ranking, {"a", "b", "c", "d"}, 5) == 0.75
    assert recall_at(ranking, {"z"}, 5) == 0.0
    with pytest.raises(ValueError, match="at least one relevant"):
        recall_at(ranking, set(), 3)


def test_reciprocal_rank_is_one_over_the_first_relevant_position() -> None:
    assert reciprocal_rank(["a", "b"], {"a"}) == 1.0
    assert reciprocal_rank(["x", "y", "a", "b"], {"a", "b"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x", "y"], {"a"}) == 0.0


def test_average_precision_over_several_relevant_entries() -> None:
    # Relevant at ranks 1 and 3, and one relevant never retrieved:
    # (1/1 + 2/3) / 3 = 5/9.
    assert average_precision(["a", "x", "b", "y"], {"a", "b", "c"}) == pytest.approx(5 / 9)
    # All relevant first: 1.0; all relevant last of four: (1/3 + 2/4) / 2 = 5/12.
    assert average_precision(["a", "b", "x"], {"a", "b"}) == 1.0
    assert average_precision(["x", "y", "a", "b"], {"a", "b"}) == pytest.approx(5 / 12)
    assert average_precision(["x"], {"a"}) == 0.0


def test_average_precision_counts_a_repeated_id_once() -> None:
    assert average_precision(["a", "a", "b"], {"a", "b"}) == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_tied_scores_count_in_the_order_returned() -> None:
    # Three entries of one StackFAQ thread share a score; the system returned the unrelated
    # one first. The metrics judge the order the agent saw: P@1 = 0, RR = 1/2.
    ranking = ["other", "t1_a1", "t1_a2"]
    assert precision_at(ranking, {"t1_a1", "t1_a2"}, 1) == 0.0
    assert reciprocal_rank(ranking, {"t1_a1", "t1_a2"}) == 0.5
    assert average_precision(ranking, {"t1_a1", "t1_a2"}) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_mean_and_rate_are_none_without_data() -> None:
    assert mean([]) is None
    assert rate([]) is None
    assert mean([1.0, 0.0, 0.5]) == 0.5
    assert rate([True, False, False, True]) == 0.5


def test_percentiles_interpolate_between_ranks_including_ties() -> None:
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 95) == pytest.approx(38.5)
    assert percentile([5.0, 5.0, 5.0, 9.0], 50) == 5.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_reliability_table_bins_edges_upward_and_one_into_the_last_bin() -> None:
    table = reliability_table([0.05, 0.1, 0.15, 0.95, 1.0, 0.5],
                              [False, True, False, True, True, False], bins=10)
    assert [b.count for b in table] == [1, 2, 0, 0, 0, 1, 0, 0, 0, 2]
    assert table[1] == ReliabilityBin(0.1, 0.2, 2, pytest.approx(0.125), 0.5)
    assert table[2] == ReliabilityBin(0.2, 0.3, 0, None, None)
    assert table[9] == ReliabilityBin(0.9, 1.0, 2, pytest.approx(0.975), 1.0)


def test_expected_calibration_error_by_hand() -> None:
    # Bin 0.0-0.5: confidences 0.2, 0.4 (mean 0.3), one right -> |0.5 - 0.3| = 0.2, weight 2/5.
    # Bin 0.5-1.0: confidences 0.8, 0.9, 1.0 (mean 0.9), all right -> 0.1, weight 3/5.
    # ECE = 0.4 * 0.2 + 0.6 * 0.1 = 0.14.
    table = reliability_table([0.2, 0.4, 0.8, 0.9, 1.0], [True, False, True, True, True], bins=2)
    assert [(b.lower, b.upper, b.count) for b in table] == [(0.0, 0.5, 2), (0.5, 1.0, 3)]
    assert expected_calibration_error(table) == pytest.approx(0.14)


def test_expected_calibration_error_is_zero_when_perfect_and_none_when_empty() -> None:
    assert expected_calibration_error(reliability_table([1.0, 0.0], [True, False])) == 0.0
    assert expected_calibration_error(reliability_table([], [])) is None


def test_confidence_outside_zero_one_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"confidence 1.2 is outside \[0, 1\]"):
        reliability_table([1.2], [True])
