"""Association by cost matrices: IoU, score fusion and thresholded linear assignment.

All functions are vectorised and accept empty inputs (they return correctly shaped empties).

:func:`assign` reproduces ``lap.lapjv(cost, extend_cost=True, cost_limit=thresh)`` as the ByteTrack
reference uses it: there, every row and every column may stay unmatched at a price of
``thresh / 2`` each, so a pair is worth taking only when its cost is below ``thresh``, and the
solver maximises the total saving ``sum(thresh - cost)`` over the chosen pairs. That is *not* the
same as solving the full assignment and dropping pairs above the threshold afterwards (which can
give up two good pairs to make room for one bad one). Here the same optimum is found with SciPy on
``min(cost - thresh, 0)``: pairs at or above the threshold cost nothing, i.e. count as unmatched.
When every eligible pair is isolated (its row and its column have no other eligible entry) the
pairs are taken directly; otherwise the solver only sees rows and columns with an eligible entry.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

_I64 = NDArray[np.int64]


def iou_matrix(a: ArrayLike, b: ArrayLike, *, pixel_offset: float = 0.0) -> NDArray[np.float64]:
    """(N, M) intersection over union of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4).

    ``pixel_offset=1`` uses the inclusive-pixel convention (``w = x2 - x1 + 1``) of the
    ``cython_bbox`` routine the ByteTrack reference calls.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    # two contiguous (N, M) planes, updated in place: the (N, M) work dominates
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    inter = np.minimum(ax2, bx2)
    inter -= np.maximum(ax1, bx1)
    inter += pixel_offset
    np.maximum(inter, 0.0, out=inter)
    ih = np.minimum(ay2, by2)
    ih -= np.maximum(ay1, by1)
    ih += pixel_offset
    np.maximum(ih, 0.0, out=ih)
    inter *= ih
    area_a = (ax2 - ax1 + pixel_offset) * (ay2 - ay1 + pixel_offset)
    area_b = (bx2 - bx1 + pixel_offset) * (by2 - by1 + pixel_offset)
    union = area_a + area_b
    union -= inter
    # union >= the larger area > 0 for proper boxes; a degenerate box has no intersection, so
    # the floor only avoids 0/0
    np.maximum(union, 1e-12, out=union)
    inter /= union
    return inter


def iou_distance(a: ArrayLike, b: ArrayLike, *, pixel_offset: float = 0.0) -> NDArray[np.float64]:
    """``1 - IoU``: 0 for identical boxes, 1 for disjoint ones."""
    iou = iou_matrix(a, b, pixel_offset=pixel_offset)
    return np.subtract(1.0, iou, out=iou)


def fuse_score(cost: ArrayLike, scores: ArrayLike) -> NDArray[np.float64]:
    """Fold detection confidence into an IoU cost: ``1 - (1 - cost) * score`` per column.

    A confident detection keeps its overlap; a weak one looks farther away, so a track prefers
    the confident of two equally overlapping detections (ByteTrack's ``fuse_score``).
    """
    c = np.asarray(cost, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64).reshape(1, -1)
    if c.size == 0:
        return c.copy()
    return 1.0 - (1.0 - c) * s


def mask_classes(cost: NDArray[np.float64], track_classes: ArrayLike,
                 det_classes: ArrayLike, value: float = np.inf) -> NDArray[np.float64]:
    """Set ``cost[i, j] = value`` where track i and detection j have different classes."""
    tc = np.asarray(track_classes).reshape(-1, 1)
    dc = np.asarray(det_classes).reshape(1, -1)
    if cost.size:
        cost[tc != dc] = value
    return cost


def _empty_pairs() -> _I64:
    return np.empty((0, 2), dtype=np.int64)


def assign(cost: ArrayLike, thresh: float) -> tuple[_I64, _I64, _I64]:
    """Minimum-cost matching where leaving a row or column unmatched costs ``thresh / 2``.

    Args:
        cost: (N, M) costs; ``inf``/NaN entries are never matched.
        thresh: pairs with ``cost >= thresh`` are never matched.

    Returns:
        ``(pairs, free_rows, free_cols)``: (K, 2) int64 ``[row, col]`` sorted by row, and the
        unmatched row and column indices in increasing order.
    """
    c = np.asarray(cost, dtype=np.float64)
    n, m = c.shape
    if n == 0 or m == 0:
        return _empty_pairs(), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    eligible = c < thresh                       # False for NaN and inf too
    r, k = eligible.nonzero()                   # row-major: r is sorted
    if r.size > 1 and ((r[1:] == r[:-1]).any() or np.bincount(k, minlength=m).max() > 1):
        # some row or column has two options: solve the eligible part exactly
        rows = eligible.any(axis=1).nonzero()[0]
        cols = eligible.any(axis=0).nonzero()[0]
        sub = c[rows][:, cols]                  # two 1-D gathers: cheaper than one 2-D
        sub -= thresh
        gain = np.where(eligible[rows][:, cols], sub, 0.0)
        rr, kk = linear_sum_assignment(gain)
        good = gain[rr, kk] < 0.0
        r, k = rows[rr[good]], cols[kk[good]]
    # else: every eligible pair is isolated, so all of them are in the optimum
    row_free = np.empty(n, dtype=bool)          # np.ones is a Python wrapper: fill instead
    row_free.fill(True)
    row_free[r] = False
    col_free = np.empty(m, dtype=bool)
    col_free.fill(True)
    col_free[k] = False
    pairs = np.empty((r.size, 2), dtype=np.int64)
    pairs[:, 0] = r
    pairs[:, 1] = k
    return pairs, row_free.nonzero()[0], col_free.nonzero()[0]
