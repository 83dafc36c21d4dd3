"""AssociationSnapshot -> the arrays of one sample (pure: no I/O, no clock).

Runs on the writer's thread, never in the tracker's. Identical input gives identical arrays, so
that replaying the same data twice writes byte-identical samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import json
from typing import Any

import numpy as np

from assoc_logger_ros.recording.schema import FIELDS, SCHEMA_VERSION
from assoc_logger_ros.tracking import confidence
from assoc_logger_ros.tracking.snapshot import AssociationSnapshot


@dataclass(frozen=True, eq=False)
class Sample:
    """The arrays of one npz (schema order) and whether an embedding was cut to the cap."""

    arrays: dict[str, np.ndarray]

    @property
    def truncated(self) -> bool:
        """True when an embedding was wider than the cap."""
        return bool(self.arrays['embed_truncated'])

    def record(self, npz: str, nbytes: int) -> dict[str, Any]:
        """The manifest line for this sample once written as ``npz`` of ``nbytes`` bytes."""
        from assoc_logger_ros.recording.manifest import record_from_arrays
        return record_from_arrays(self.arrays, npz, nbytes)


def fit_width(emb: np.ndarray, rows: int, cap: int) -> tuple[np.ndarray, int, bool]:
    """Zero-pad or truncate ``emb`` (rows, E) to (rows, cap) float32.

    Returns the fitted array, the original width E and whether columns were cut.
    """
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != rows:
        emb = np.zeros((rows, 0), np.float32)
    width = int(emb.shape[1])
    keep = min(width, cap)
    out = np.zeros((rows, cap), np.float32)
    out[:, :keep] = emb[:, :keep]
    return out, width, width > cap


def metadata_json(snap: AssociationSnapshot, metadata: Mapping[str, Any] | None,
                  embed_cap: int) -> str:
    """The ``metadata`` string: caller's keys plus width, height, fps; sorted, compact."""
    meta: dict[str, Any] = dict(metadata or {})
    if snap.size_source:
        meta['size_source'] = snap.size_source
    meta.update({'width': int(snap.width), 'height': int(snap.height),
                 'fps': float(snap.frame_rate), 'embed_cap': int(embed_cap),
                 'schema_version': SCHEMA_VERSION})
    return json.dumps(meta, sort_keys=True, separators=(',', ':'), default=str)


def build(snap: AssociationSnapshot, session_id: str, metadata: Mapping[str, Any] | None,
          embed_cap: int) -> Sample:
    """Arrays of one sample from a snapshot, embeddings fitted to ``embed_cap`` columns."""
    t, d = snap.num_tracks, snap.num_detections
    trk_emb, trk_w, trk_cut = fit_width(snap.track_embeddings, t, embed_cap)
    det_emb, det_w, det_cut = fit_width(snap.det_embeddings, d, embed_cap)
    values: dict[str, Any] = {
        'schema_version': SCHEMA_VERSION,
        'frame_idx': np.array([snap.frame_idx]),
        'stamp_ns': snap.stamp_ns,
        'session_id': np.str_(session_id),
        'metadata': np.str_(metadata_json(snap, metadata, embed_cap)),
        'track_ids': snap.track_ids,
        'track_states': snap.track_states,
        'track_class_ids': snap.track_class_ids,
        'track_boxes': np.reshape(snap.track_boxes, (t, 4)),
        'track_features': np.reshape(snap.track_features, (t, 10)),
        'track_embeddings': trk_emb,
        'track_embed_dim': trk_w,
        'detection_count': np.array([d]),
        'det_boxes': np.reshape(snap.det_boxes, (d, 4)),
        'det_scores': snap.det_scores,
        'det_class_ids': snap.det_class_ids,
        'det_visibility': snap.det_visibility,
        'det_source_index': snap.det_source_index,
        'det_features': np.reshape(snap.det_features, (d, 8)),
        'det_embeddings': det_emb,
        'det_embed_dim': det_w,
        'embed_truncated': trk_cut or det_cut,
        'det_gt_ids': snap.det_gt_ids,
        'cost_matrix': np.reshape(snap.cost_matrix, (t, d)),
        'mask_matrix': np.reshape(snap.mask_matrix, (t, d)),
        'match_stage': snap.match_stage,
        'assigned_track_ids': snap.assigned_track_ids,
        'new_track_ids': snap.new_track_ids,
        'est_id_switches': snap.est_id_switches,
        'est_id_switches_frame': snap.est_id_switches_frame,
        'gt_boxes': (None if snap.gt_boxes is None or snap.det_gt_ids is None
                     else np.reshape(snap.gt_boxes, (-1, 4))),
        'gt_ids': None if snap.det_gt_ids is None else snap.gt_object_ids,
        'assoc_prob': None if snap.assoc_prob is None else np.reshape(snap.assoc_prob, (t, d)),
        'classical_cost_matrix': (None if snap.classical_cost_matrix is None
                                  else np.reshape(snap.classical_cost_matrix, (t, d))),
    }
    if values['gt_boxes'] is None or values['gt_ids'] is None:
        values['gt_boxes'] = values['gt_ids'] = None
    if snap.origin is not None:
        values.update(snap.origin.arrays())
    values.update(confidence.pair_confidence(
        values['cost_matrix'], values['mask_matrix'], snap.track_ids, snap.assigned_track_ids,
        values['track_boxes'], values['det_boxes'], values['track_features']))
    arrays: dict[str, np.ndarray] = {}
    for f in FIELDS:
        value = values.get(f.key)
        if value is None:  # optional key absent (no ground truth, no label weights)
            continue
        if f.dtype == 'U':
            arrays[f.key] = np.asarray(value)
        else:
            arr = np.asarray(value, dtype=f.dtype)
            arrays[f.key] = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    return Sample(arrays)
