"""Synthetic, internally consistent snapshots for tests and benchmarks of the recorder.

They follow every rule the validator checks (matched pairs eligible, ids consistent, values in
range) without running a tracker, so recorder tests do not depend on tracker behaviour.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from assoc_logger_ros.tracking.snapshot import AssociationSnapshot, MatchStage, TrackState


def make_snapshot(tracks: int = 5, detections: int = 6, *, embed_dim: int = 16,
                  seed: int = 0, frame_idx: int = 0, stamp_ns: int | None = None,
                  gt: bool = False, est_id_switches: int = 0, width: int = 1920,
                  height: int = 1080, fps: float = 30.0) -> AssociationSnapshot:
    """A snapshot with ``tracks`` x ``detections`` pairs, about half of them matched."""
    rng = np.random.default_rng(seed)
    t, d = tracks, detections
    track_ids = np.arange(1, t + 1, dtype=np.int64) + 1000 * (seed % 7)
    xy = rng.uniform(0, 0.8, size=(d, 2)) * (width, height)
    wh = rng.uniform(20, 200, size=(d, 2))
    det_boxes = np.concatenate([xy, xy + wh], axis=1)
    txy = rng.uniform(0, 0.8, size=(t, 2)) * (width, height)
    track_boxes = np.concatenate([txy, txy + rng.uniform(20, 200, size=(t, 2))], axis=1)
    scores = rng.uniform(0.1, 1.0, size=d)
    vis = rng.uniform(0.0, 1.0, size=d).astype(np.float32)
    cost = rng.uniform(0.0, 1.0, size=(t, d)).astype(np.float32)
    mask = (cost < 0.8).astype(np.float32)
    n_match = min(t, d) // 2 + (1 if min(t, d) else 0)
    n_match = min(n_match, t, d)
    rows = rng.permutation(t)[:n_match]
    cols = rng.permutation(d)[:n_match]
    mask[rows, cols] = 1.0
    cost[rows, cols] = rng.uniform(0.0, 0.3, size=n_match).astype(np.float32)
    assigned = np.full(d, -1, np.int64)
    assigned[cols] = track_ids[rows]
    stage = np.zeros(d, np.int8)
    stage[cols] = rng.choice([MatchStage.HIGH, MatchStage.LOW, MatchStage.UNCONFIRMED],
                             size=n_match)
    new_ids = np.full(d, -1, np.int64)
    free = np.setdiff1d(np.arange(d), cols)
    new_ids[free[: len(free) // 2]] = track_ids.max(initial=0) + 1 + np.arange(len(free) // 2)
    det_feat = np.zeros((d, 8), np.float32)
    det_feat[:, :4] = det_boxes / (width, height, width, height)
    det_feat[:, 4] = scores
    det_feat[:, 5] = vis
    trk_feat = rng.uniform(0, 1, size=(t, 10)).astype(np.float32)
    return AssociationSnapshot(
        stamp_ns=int(stamp_ns if stamp_ns is not None else 1_700_000_000_000_000_000
                     + frame_idx * 33_333_333),
        frame_idx=frame_idx, width=width, height=height, frame_rate=fps,
        track_ids=track_ids,
        track_states=rng.choice([TrackState.NEW, TrackState.TRACKED, TrackState.LOST],
                                size=t).astype(np.int8),
        track_class_ids=np.zeros(t, np.int64), track_boxes=track_boxes,
        track_features=trk_feat,
        track_embeddings=rng.normal(size=(t, embed_dim)).astype(np.float32),
        det_boxes=det_boxes, det_scores=scores, det_class_ids=np.zeros(d, np.int64),
        det_visibility=vis, det_source_index=np.arange(d, dtype=np.int64),
        det_features=det_feat,
        det_embeddings=rng.normal(size=(d, embed_dim)).astype(np.float32),
        det_gt_ids=(rng.integers(-1, 50, size=d).astype(np.int64) if gt else None),
        cost_matrix=cost, mask_matrix=mask, match_stage=stage, assigned_track_ids=assigned,
        new_track_ids=new_ids, output_track_ids=track_ids[rows],
        output_boxes=det_boxes[cols], output_scores=scores[cols],
        output_class_ids=np.zeros(n_match, np.int64), output_det_index=cols.astype(np.int64),
        est_id_switches_frame=0, est_id_switches=est_id_switches,
        removed_track_ids=np.zeros(0, np.int64))


def outputs_snapshot(out_ids: ArrayLike, out_det: ArrayLike,
                     src: ArrayLike) -> AssociationSnapshot:
    """A snapshot holding only what ``tracks`` messages are built from (other arrays empty).

    ``out_ids`` are the published track ids, ``out_det`` the detection row each came from and
    ``src`` the source-message row of every detection.
    """
    z = np.zeros(0)
    src = np.asarray(src, np.int64)
    return AssociationSnapshot(
        stamp_ns=0, frame_idx=0, width=1, height=1, frame_rate=30.0, track_ids=z,
        track_states=z, track_class_ids=z, track_boxes=z, track_features=z,
        track_embeddings=z, det_boxes=np.zeros((len(src), 4)), det_scores=z,
        det_class_ids=z, det_visibility=z, det_source_index=src,
        det_features=z, det_embeddings=z, det_gt_ids=None, cost_matrix=z, mask_matrix=z,
        match_stage=z, assigned_track_ids=z, new_track_ids=z,
        output_track_ids=np.asarray(out_ids, np.int64), output_boxes=z, output_scores=z,
        output_class_ids=z, output_det_index=np.asarray(out_det, np.int64),
        est_id_switches_frame=0, est_id_switches=0, removed_track_ids=z)
