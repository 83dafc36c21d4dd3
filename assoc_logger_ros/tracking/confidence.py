"""Per-pair confidence of the tracker's matches, from what one association already holds.

Every value is computed from the arrays of one snapshot (or one stored sample): the cost and
eligibility matrices, the predicted track boxes, the detection boxes and the track features. So
the writer computes them off the tracker's thread, and ``filter`` recomputes them for samples
recorded before these keys existed: the tracker's hot path does no extra work.

Each key is a (D,) float32 array, one value per detection about *its* match; detections that
matched no existing track hold NaN. Why these: on MOT17 the wrong labels are mostly a track
jumping to a neighbour during an occlusion, where another eligible pair was nearly as cheap
(small margins), the predicted box fits the detection poorly (low IoU, height change) and the
track had been coasting (time since update).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

NO_RUNNER_UP_COST = 1.0   # the runner-up cost when no other eligible pair exists
CONFIDENCE_KEYS = ('pair_row_margin', 'pair_col_margin', 'pair_track_age',
                   'pair_time_since_update', 'pair_iou', 'pair_height_ratio',
                   'pair_rival_track_iou', 'pair_rival_det_iou', 'pair_det_overlap')
AGE_SCALE = 100.0         # track_features columns 6 and 7 are age/100, time_since_update/50
SINCE_SCALE = 50.0


def _iou_pairs(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Geometric IoU of box a[i] with box b[i] (xyxy, row by row)."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0, None)
    inter = iw * ih
    area_a = np.clip(a[:, 2] - a[:, 0], 0.0, None) * np.clip(a[:, 3] - a[:, 1], 0.0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0.0, None) * np.clip(b[:, 3] - b[:, 1], 0.0, None)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _iou_matrix(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """(N, M) geometric IoU of xyxy boxes."""
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0],
                                                                      b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1],
                                                                      b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _max_overlap(boxes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Largest share of each box's area covered by one other box (0 for a lone box)."""
    n = boxes.shape[0]
    if n < 2:
        return np.zeros(n)
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    iw = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]), 0, None)
    ih = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]), 0, None)
    inter = iw * ih
    np.fill_diagonal(inter, 0.0)
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return np.divide(inter.max(axis=1), area, out=np.zeros(n), where=area > 0)


def _runner_up(eligible: NDArray[np.float64], picked: NDArray[np.int64]
               ) -> NDArray[np.float64]:
    """Per row: the smallest value outside column ``picked[row]`` (inf when none)."""
    n, m = eligible.shape
    if m < 2:
        return np.full(n, np.inf)
    order = np.argpartition(eligible, 1, axis=1)[:, :2]
    r = np.arange(n)
    first, second = eligible[r, order[:, 0]], eligible[r, order[:, 1]]
    # argpartition does not order the two; put the smaller first
    swap = second < first
    first_col = np.where(swap, order[:, 1], order[:, 0])
    lo, hi = np.minimum(first, second), np.maximum(first, second)
    return np.where(first_col == picked, hi, lo)


def track_rows(track_ids: NDArray[np.int64], assigned: NDArray[np.int64]
               ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(matched detection columns, their track rows) for ``assigned_track_ids``."""
    cols = np.flatnonzero(assigned >= 0)
    if cols.size == 0 or track_ids.size == 0:
        return cols[:0], cols[:0]
    order = np.argsort(track_ids, kind='stable')
    pos = np.minimum(np.searchsorted(track_ids[order], assigned[cols]), track_ids.size - 1)
    ok = track_ids[order[pos]] == assigned[cols]
    return cols[ok], order[pos[ok]]


def pair_confidence(cost: NDArray[np.floating], mask: NDArray[np.floating],
                    track_ids: NDArray[np.int64], assigned: NDArray[np.int64],
                    track_boxes: NDArray[np.float64], det_boxes: NDArray[np.float64],
                    track_features: NDArray[np.floating]) -> dict[str, NDArray[np.float32]]:
    """The :data:`CONFIDENCE_KEYS` arrays for one association (see the schema for meanings)."""
    d = det_boxes.shape[0]
    out = {k: np.full(d, np.nan, np.float32) for k in CONFIDENCE_KEYS}
    out['pair_det_overlap'] = _max_overlap(np.asarray(det_boxes, np.float64)).astype(np.float32)
    cols, rows = track_rows(np.asarray(track_ids), np.asarray(assigned))
    if cols.size == 0:
        return out
    c = np.asarray(cost, np.float64)
    eligible = np.where(np.asarray(mask) == 1.0, c, np.inf)
    pair_cost = c[rows, cols]
    row_next = _runner_up(eligible[rows], cols)
    col_next = _runner_up(eligible[:, cols].T, rows)
    out['pair_row_margin'][cols] = np.where(np.isfinite(row_next), row_next,
                                            NO_RUNNER_UP_COST) - pair_cost
    out['pair_col_margin'][cols] = np.where(np.isfinite(col_next), col_next,
                                            NO_RUNNER_UP_COST) - pair_cost
    feats = np.asarray(track_features, np.float64)
    out['pair_track_age'][cols] = feats[rows, 6] * AGE_SCALE
    out['pair_time_since_update'][cols] = feats[rows, 7] * SINCE_SCALE
    tb, db = np.asarray(track_boxes, np.float64)[rows], np.asarray(det_boxes, np.float64)[cols]
    out['pair_iou'][cols] = _iou_pairs(tb, db)
    # the best rival on each side: another track's predicted box on this detection, another
    # detection on this track's predicted box (0 when there is none)
    iou = _iou_matrix(np.asarray(track_boxes, np.float64), np.asarray(det_boxes, np.float64))
    iou_t = iou[:, cols].copy()
    iou_t[rows, np.arange(cols.size)] = -1.0
    out['pair_rival_track_iou'][cols] = np.maximum(iou_t.max(axis=0, initial=0.0), 0.0)
    iou_d = iou[rows].copy()
    iou_d[np.arange(cols.size), cols] = -1.0
    out['pair_rival_det_iou'][cols] = np.maximum(iou_d.max(axis=1, initial=0.0), 0.0)
    th, dh = tb[:, 3] - tb[:, 1], db[:, 3] - db[:, 1]
    out['pair_height_ratio'][cols] = np.divide(dh, th, out=np.ones(cols.size),
                                               where=th > 0)
    return out


def from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, NDArray[np.float32]]:
    """:func:`pair_confidence` of a loaded sample (or the writer's arrays)."""
    return pair_confidence(arrays['cost_matrix'], arrays['mask_matrix'], arrays['track_ids'],
                           arrays['assigned_track_ids'], arrays['track_boxes'],
                           arrays['det_boxes'], arrays['track_features'])
