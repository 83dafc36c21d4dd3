"""IDF1, ID switches and MOTA for generated scenes (and quick checks), numpy/scipy only.

This is a small re-implementation of the CLEAR MOT and identity metrics as TrackEval computes
them (IoU >= 0.5 matches; CLEAR keeps a previous frame's pairing when still valid and counts an
ID switch when a ground-truth identity is matched to another tracker ID than the last one it
had; IDF1 from the globally best one-to-one identity pairing). It has none of the MOTChallenge
preprocessing (distractor classes, ignore regions): official MOT numbers come from TrackEval
(``python -m assoc_logger_ros eval``); use this for the generated scenes, where ground truth is
exact, and for per-frame switch counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

_NONE = np.iinfo(np.int64).min


def iou_matrix(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """(N, M) IoU of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, inter / union, 0.0)


@dataclass(frozen=True)
class FrameBoxes:
    """Identities and xyxy boxes of one frame (ground truth or tracker output)."""

    ids: NDArray[np.int64]
    boxes: NDArray[np.float64]

    @classmethod
    def of(cls, ids: ArrayLike, boxes: ArrayLike) -> FrameBoxes:
        """Build with the right dtypes and shapes."""
        return cls(np.asarray(ids, np.int64).reshape(-1),
                   np.asarray(boxes, np.float64).reshape(-1, 4))


@dataclass(frozen=True)
class MotMetrics:
    """Scores of one sequence (or several pooled)."""

    idf1: float
    idp: float
    idr: float
    mota: float
    idsw: int
    tp: int
    fp: int
    fn: int
    num_gt: int
    num_pred: int
    gt_ids: int
    idsw_per_frame: NDArray[np.int64]
    idsw_events: tuple[tuple[int, int, int, int], ...] = ()   # (frame, gt, old id, new id)

    def row(self) -> dict[str, float]:
        """Headline numbers for a table (percentages)."""
        return {'IDF1': 100 * self.idf1, 'MOTA': 100 * self.mota, 'IDSW': self.idsw,
                'IDP': 100 * self.idp, 'IDR': 100 * self.idr}


def evaluate(gt: Sequence[FrameBoxes], pred: Sequence[FrameBoxes], *,
             iou_thresh: float = 0.5) -> MotMetrics:
    """Score a tracker output against ground truth, frame by frame (same length lists)."""
    if len(gt) != len(pred):
        raise ValueError(f'{len(gt)} ground-truth frames but {len(pred)} prediction frames')
    gt_index = _index(f.ids for f in gt)
    pr_index = _index(f.ids for f in pred)
    n_g = len(gt_index)
    pair_counts: dict[tuple[int, int], int] = {}
    last_match: dict[int, int] = {}      # gt id -> last tracker id it was matched to
    prev_pairs: dict[int, int] = {}      # gt id -> tracker id matched in the previous frame
    tp = fp = fn = idsw = 0
    per_frame = np.zeros(len(gt), np.int64)
    events: list[tuple[int, int, int, int]] = []
    num_gt = num_pred = 0
    for k, (g, p) in enumerate(zip(gt, pred)):
        num_gt += g.ids.size
        num_pred += p.ids.size
        if g.ids.size == 0 or p.ids.size == 0:
            fn += g.ids.size
            fp += p.ids.size
            continue   # as TrackEval: an empty frame does not break continuity
        iou = iou_matrix(g.boxes, p.boxes)
        ok = iou >= iou_thresh - 1e-9
        # identity: every pair above the threshold counts (TrackEval Identity)
        gi, pj = np.nonzero(ok)
        for a, b in zip(g.ids[gi].tolist(), p.ids[pj].tolist()):
            pair_counts[(a, b)] = pair_counts.get((a, b), 0) + 1
        # CLEAR: prefer continuing last frame's pairs, then IoU
        prev = np.fromiter((prev_pairs.get(a, _NONE) for a in g.ids.tolist()), np.int64,
                           count=g.ids.size)
        cont = (prev[:, None] == p.ids[None, :]) & (prev[:, None] != _NONE)
        score = np.where(ok, 1000.0 * cont + iou, 0.0)
        rows, cols = linear_sum_assignment(-score)
        keep = score[rows, cols] > 0
        rows, cols = rows[keep], cols[keep]
        matched = rows.size
        tp += matched
        fn += g.ids.size - matched
        fp += p.ids.size - matched
        pairs = {}
        for a, b in zip(g.ids[rows].tolist(), p.ids[cols].tolist()):
            if a in last_match and last_match[a] != b:
                idsw += 1
                per_frame[k] += 1
                events.append((k, a, last_match[a], b))
            last_match[a] = b
            pairs[a] = b
        prev_pairs = pairs
    idtp = _best_identity_tp(pair_counts, gt_index, pr_index)
    idp = idtp / num_pred if num_pred else 0.0
    idr = idtp / num_gt if num_gt else 0.0
    idf1 = 2 * idtp / (num_gt + num_pred) if (num_gt + num_pred) else 0.0
    mota = 1.0 - (fn + fp + idsw) / num_gt if num_gt else 0.0
    return MotMetrics(idf1, idp, idr, mota, idsw, tp, fp, fn, num_gt, num_pred, n_g,
                      per_frame, tuple(events))


def _index(id_lists: Iterable[NDArray[np.int64]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for ids in id_lists:
        for i in ids.tolist():
            out.setdefault(i, len(out))
    return out


def _best_identity_tp(pairs: dict[tuple[int, int], int], gt_index: dict[int, int],
                      pr_index: dict[int, int]) -> int:
    """IDTP of the one-to-one gt/tracker identity pairing that maximises it."""
    if not pairs:
        return 0
    m = np.zeros((len(gt_index), len(pr_index)))
    for (a, b), c in pairs.items():
        m[gt_index[a], pr_index[b]] = c
    rows, cols = linear_sum_assignment(-m)
    return int(m[rows, cols].sum())
