"""One frame of detections, the only input type of the tracking core.

Adapters (ROS messages, rosbags, MOT text files, the scene generator) convert once, at the edge,
into a :class:`Frame`; :func:`make_frame` is where bad input is cleaned and reported, so that the
tracker only ever sees finite, positive-area boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True, eq=False)
class Frame:
    """Detections of one image, already sanitised.

    Attributes:
        stamp_ns: capture time in nanoseconds (header stamp), drives the Kalman time step.
        frame_idx: running index of the frame in its source (-1 when unknown).
        boxes: (N, 4) float64 ``x1, y1, x2, y2`` in pixels.
        scores: (N,) float64 detector confidence.
        class_ids: (N,) int64 class of each detection (0 when the source has none).
        width, height: image size in pixels (feature normalisation).
        embeddings: (N, E) float32 appearance vectors, or None when the source has none.
        embedding_valid: (N,) bool, which rows of ``embeddings`` are real (missing rows are zero).
        mask: (H, W) integer instance label image, value k marks detection k-1 *of the source
            message*; use ``source_index`` to map. None without segmentation.
        source_index: (N,) int64 index of each detection in the source message (detections
            dropped as invalid leave gaps).
        gt_ids: (N,) int64 ground-truth identity per detection (-1 unknown), or None.
        class_names: (N,) original class labels as strings (for message round trips).
        gt_boxes, gt_object_ids: (G, 4) xyxy px and (G,) identities of every ground-truth
            object of the frame, or None; recorded only to score labels, never to make them.
        warnings: what :func:`make_frame` removed or repaired, one line each.
    """

    stamp_ns: int
    boxes: NDArray[np.float64]
    scores: NDArray[np.float64]
    class_ids: NDArray[np.int64]
    width: int
    height: int
    frame_idx: int = -1
    embeddings: NDArray[np.float32] | None = None
    embedding_valid: NDArray[np.bool_] | None = None
    mask: NDArray[np.integer] | None = None
    source_index: NDArray[np.int64] | None = None
    gt_ids: NDArray[np.int64] | None = None
    class_names: tuple[str, ...] | None = None
    warnings: tuple[str, ...] = field(default=())
    gt_boxes: NDArray[np.float64] | None = None
    gt_object_ids: NDArray[np.int64] | None = None
    size_source: str = ''

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def make_frame(stamp_ns: int, boxes: ArrayLike, scores: ArrayLike, *,
               width: int, height: int, class_ids: ArrayLike | None = None,
               frame_idx: int = -1, embeddings: ArrayLike | None = None,
               embedding_valid: ArrayLike | None = None, mask: np.ndarray | None = None,
               gt_ids: ArrayLike | None = None,
               class_names: list[str] | tuple[str, ...] | None = None) -> Frame:
    """Build a Frame from raw arrays, dropping rows that cannot be tracked.

    Rows with a non-finite coordinate or score, or a box of zero or negative area, are removed
    and reported in ``Frame.warnings``; scores are clipped to [0, 1]. ``source_index`` keeps the
    original row numbers so outputs and masks can still be related to the input message.
    """
    warnings: list[str] = []
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = b.shape[0]
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != n:
        raise ValueError(f'{n} boxes but {s.shape[0]} scores')
    c = (np.zeros(n, np.int64) if class_ids is None
         else np.asarray(class_ids, dtype=np.int64).reshape(-1))
    if c.shape[0] != n:
        raise ValueError(f'{n} boxes but {c.shape[0]} class ids')
    finite = np.isfinite(b).all(axis=1) & np.isfinite(s)
    positive = np.zeros(n, dtype=bool)
    positive[finite] = ((b[finite, 2] > b[finite, 0]) & (b[finite, 3] > b[finite, 1]))
    keep = finite & positive
    if (~finite).any():
        warnings.append(f'dropped {int((~finite).sum())} detection(s) with NaN/inf box or score')
    if (finite & ~positive).any():
        warnings.append(f'dropped {int((finite & ~positive).sum())} detection(s) with zero '
                        'or negative box area')
    out_of_range = keep & ((s < 0.0) | (s > 1.0))
    if out_of_range.any():
        warnings.append(f'clipped {int(out_of_range.sum())} score(s) to [0, 1]')
    idx = np.flatnonzero(keep).astype(np.int64)

    emb = valid = None
    if embeddings is not None:
        e = np.asarray(embeddings, dtype=np.float32)
        if e.ndim != 2 or e.shape[0] != n:
            warnings.append(f'ignored embeddings of shape {e.shape} for {n} detections')
        else:
            v = (np.ones(n, bool) if embedding_valid is None
                 else np.asarray(embedding_valid, dtype=bool).reshape(-1))
            v = v & np.isfinite(e).all(axis=1) & (np.abs(e).sum(axis=1) > 0)
            e = np.where(v[:, None], e, 0.0).astype(np.float32)
            emb, valid = e[idx], v[idx]
    gt = None
    if gt_ids is not None:
        gt = np.asarray(gt_ids, dtype=np.int64).reshape(-1)[idx]
    names = None
    if class_names is not None:
        names = tuple(class_names[i] for i in idx)
    return Frame(
        stamp_ns=int(stamp_ns), boxes=b[idx], scores=np.clip(s[idx], 0.0, 1.0),
        class_ids=c[idx], width=int(width), height=int(height), frame_idx=int(frame_idx),
        embeddings=emb, embedding_valid=valid, mask=mask, source_index=idx, gt_ids=gt,
        class_names=names, warnings=tuple(warnings))
