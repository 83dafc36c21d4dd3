"""Tracks started in a frame that is not a sample (no tracks yet): their origin, kept for later.

A session's first frame (and any frame after every track died) has detections but no tracks, so
no association sample; the tracks it starts would have no recorded origin. The pipeline keeps
that frame's new tracks here and the next sample carries them as the optional ``origin_*`` keys,
so the set of samples (what a seed reader sees) does not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.tracking.snapshot import AssociationSnapshot


@dataclass(frozen=True, eq=False)
class Origin:
    """The detections that started tracks in a frame without a sample."""

    stamp_ns: int
    frame_idx: int
    track_ids: NDArray[np.int64]
    det_boxes: NDArray[np.float64]
    det_scores: NDArray[np.float32]
    det_gt_ids: NDArray[np.int64] | None

    def arrays(self) -> dict[str, np.ndarray]:
        """The ``origin_*`` sample keys."""
        out = {'origin_stamp_ns': np.asarray(self.stamp_ns, np.int64),
               'origin_frame_idx': np.asarray(self.frame_idx, np.int64),
               'origin_track_ids': self.track_ids, 'origin_det_boxes': self.det_boxes,
               'origin_det_scores': self.det_scores}
        if self.det_gt_ids is not None:
            out['origin_det_gt_ids'] = self.det_gt_ids
        return out


def origin_of(snap: AssociationSnapshot) -> Origin | None:
    """The origin record of a snapshot's new tracks, or None when it started none."""
    rows = np.flatnonzero(snap.new_track_ids >= 0)
    if rows.size == 0:
        return None
    return Origin(
        stamp_ns=int(snap.stamp_ns), frame_idx=int(snap.frame_idx),
        track_ids=snap.new_track_ids[rows].astype(np.int64),
        det_boxes=np.asarray(snap.det_boxes, np.float64).reshape(-1, 4)[rows],
        det_scores=np.asarray(snap.det_scores, np.float32)[rows],
        det_gt_ids=None if snap.det_gt_ids is None else snap.det_gt_ids[rows].astype(np.int64))
