"""IoU, score fusion and the thresholded assignment (lapjv extend_cost semantics)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from assoc_logger_ros.tracking.matching import assign, fuse_score, iou_distance, iou_matrix


def _brute_force(cost: np.ndarray, thresh: float) -> float:
    """Best total of lapjv's extended problem: matched costs + thresh/2 per unmatched side."""
    n, m = cost.shape
    best = thresh / 2 * (n + m)
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                c = cost[list(rows), list(cols)]
                if np.all(c < thresh):
                    best = min(best, c.sum() + thresh / 2 * (n + m - 2 * k))
    return best


def _total(cost, thresh, pairs, free_r, free_c) -> float:
    return float(sum(cost[r, c] for r, c in pairs) + thresh / 2 * (len(free_r) + len(free_c)))


def test_iou_known_values_and_pixel_offset():
    """IoU of half-overlapping boxes is 1/3; offset 1 uses inclusive pixels (cython_bbox)."""
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1 / 3, 0.0]])
    np.testing.assert_allclose(iou_matrix(a, b, pixel_offset=1.0)[0, 0], 66 / 176)
    np.testing.assert_allclose(iou_distance(a, a), [[0.0]])


def test_iou_empty_shapes():
    """Empty inputs give correctly shaped empty matrices."""
    assert iou_matrix(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert iou_distance(np.zeros((2, 4)), np.zeros((0, 4))).shape == (2, 0)


def test_fuse_score_column_scaling():
    """fuse_score: 1 - (1 - cost) * score per detection column."""
    cost = np.array([[0.2, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(fuse_score(cost, [0.5, 1.0]), [[0.6, 0.5], [1.0, 0.0]])
    assert fuse_score(np.zeros((0, 2)), [0.5, 0.5]).shape == (0, 2)


def test_assign_is_not_full_assignment_then_filter():
    """lapjv(extend_cost, cost_limit) semantics: one pair at 0.1 beats two pairs at 0.6.

    Solving the full assignment first would pick (0,1),(1,0) (total 1.2 < 5.1) and keep both;
    with unmatched sides at thresh/2 the saving of (0,0) (0.8) beats 2 x 0.3.
    """
    cost = np.array([[0.1, 0.6], [0.6, 5.0]])
    pairs, fr, fc = assign(cost, 0.9)
    assert pairs.tolist() == [[0, 0]]
    assert fr.tolist() == [1] and fc.tolist() == [1]
    pairs, _, _ = assign(np.array([[0.1, 0.4], [0.4, 5.0]]), 0.9)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (1, 0)]


def test_assign_threshold_applied_inside():
    """A pair at or above the threshold is never matched, even when it is the only option."""
    pairs, fr, fc = assign(np.array([[0.9, 0.95]]), 0.9)
    assert pairs.shape == (0, 2)
    assert fr.tolist() == [0] and fc.tolist() == [0, 1]


@pytest.mark.parametrize('shape', [(0, 0), (0, 3), (4, 0)])
def test_assign_empty(shape):
    """Empty cost matrices give shaped empties and every index unmatched."""
    pairs, fr, fc = assign(np.zeros(shape), 0.5)
    assert pairs.shape == (0, 2) and pairs.dtype == np.int64
    assert fr.tolist() == list(range(shape[0])) and fc.tolist() == list(range(shape[1]))


def test_assign_inf_and_nan_never_matched():
    """Inf and NaN costs count as ineligible."""
    pairs, _, _ = assign(np.array([[np.inf, np.nan], [np.nan, 0.2]]), 0.9)
    assert pairs.tolist() == [[1, 1]]


def test_assign_optimal_against_brute_force():
    """On random small matrices the total equals the brute-force optimum of lapjv's problem."""
    rng = np.random.default_rng(1)
    for _ in range(150):
        n, m = rng.integers(1, 5, 2)
        cost = rng.random((n, m))
        thresh = float(rng.uniform(0.2, 1.0))
        pairs, fr, fc = assign(cost, thresh)
        assert len(set(pairs[:, 0])) == len(pairs) and len(set(pairs[:, 1])) == len(pairs)
        assert np.all(cost[pairs[:, 0], pairs[:, 1]] < thresh)
        assert _total(cost, thresh, pairs, fr, fc) == pytest.approx(
            _brute_force(cost, thresh), abs=1e-9)
