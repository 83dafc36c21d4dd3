"""What one tracker update decided, frozen for the logger and the adapters.

The tracker builds an :class:`AssociationSnapshot` at the end of every ``update()``; the sample
writer turns it into an npz on its own thread, so every array here is a private copy that the
tracker never touches again.
"""

from __future__ import annotations

from dataclasses import dataclass
import enum
from typing import Any

import numpy as np
from numpy.typing import NDArray


class TrackState(enum.IntEnum):
    """Life cycle of a track (values are stored in samples)."""

    NEW = 0        # unconfirmed: seen once, not yet activated
    TRACKED = 1
    LOST = 2
    REMOVED = 3


class MatchStage(enum.IntEnum):
    """Which ByteTrack step matched a detection (values are stored in samples)."""

    NONE = 0       # unmatched (it may still have started a new track)
    HIGH = 1       # stage 1: tracked + lost tracks vs high-score detections
    LOW = 2        # stage 2: remaining tracked tracks vs low-score detections, IoU 0.5
    UNCONFIRMED = 3  # stage 3: unconfirmed tracks vs remaining high-score detections, 0.7


TRACK_FEATURE_COLUMNS = (
    'x1/W', 'y1/H', 'x2/W', 'y2/H', 'vx/W', 'vy/H', 'age/100', 'time_since_update/50',
    'confidence', 'visibility')
DET_FEATURE_COLUMNS = (
    'x1/W', 'y1/H', 'x2/W', 'y2/H', 'confidence', 'visibility', 'reserved0', 'reserved1')


class _DenseOnDemand:
    """Dataclass field holding an array, or an object built into one when first read.

    The tracker passes a :class:`~assoc_logger_ros.tracking.sparse.PairCosts` for
    ``cost_matrix``/``mask_matrix``: a crowd's (T, D) matrices are built by whoever reads them
    (the sample writer, off the hot path), not by every update. The class access raises
    AttributeError so that the dataclass sees a field without a default.
    """

    def __init__(self, method: str) -> None:
        self._method = method
        self._key = ''

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = f'_{name}_value'

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self._key)
        value = obj.__dict__[self._key]
        if not isinstance(value, np.ndarray) and hasattr(value, self._method):
            value = getattr(value, self._method)()
            obj.__dict__[self._key] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._key] = value


@dataclass(frozen=True, eq=False)
class AssociationSnapshot:
    """The association problem of one frame and its answer.

    T = every track the association considered (tracked, lost and unconfirmed), D = every
    detection that reached the tracker (after the confidence floor), E = embedding width
    (0 when there are none).

    Attributes:
        stamp_ns, frame_idx, width, height, frame_rate: copied from the Frame / config.
        track_ids: (T,) int64.  track_states: (T,) int8 :class:`TrackState`.
        track_class_ids: (T,) int64.  track_boxes: (T, 4) float64 predicted xyxy.
        track_features: (T, 10) float32, columns :data:`TRACK_FEATURE_COLUMNS`.
        track_embeddings: (T, E) float32, the memory's embedding (zero when none).
        det_boxes: (D, 4) float64 raw xyxy.  det_scores: (D,) float64.
        det_class_ids: (D,) int64.  det_visibility: (D,) float32 in [0, 1].
        det_source_index: (D,) int64 row in the source message.
        det_features: (D, 8) float32, columns :data:`DET_FEATURE_COLUMNS`.
        det_embeddings: (D, E) float32 (zero rows where a detection had none).
        det_gt_ids: (D,) int64 ground-truth identities or None.
        cost_matrix: (T, D) float32, the cost each pair had in the stage that considered it
            (1.0 for pairs no stage considered).
        mask_matrix: (T, D) float32, 1.0 where the pair was eligible for assignment (right
            stage, same class, within that stage's threshold), else 0.0.
        match_stage: (D,) int8 :class:`MatchStage` per detection.
        assigned_track_ids: (D,) int64, the existing track each detection was matched to,
            -1 when none (including detections that start a new track).
        new_track_ids: (D,) int64, the ID a detection started, else -1.
        output_track_ids, output_boxes, output_scores, output_class_ids, output_det_index:
            the active confirmed tracks after the update (what is published), with the row of
            the detection each came from (index into the D detections).
        est_id_switches_frame, est_id_switches: estimated ID switches this frame / so far.
        removed_track_ids: (R,) int64 tracks removed in this update.
        gt_boxes, gt_object_ids: the frame's ground-truth objects (G, 4) / (G,), or None.
        size_source: where width/height came from (``Frame.size_source``).
        origin: tracks started in the previous frame that was no sample
            (:class:`~assoc_logger_ros.recording.origin.Origin`), set by the pipeline, or None.
        assoc_prob, classical_cost_matrix: (T, D) float32, only with the learned cost on:
            the model's match probability (0 outside stage 1) and the cost without the model.
    """

    stamp_ns: int
    frame_idx: int
    width: int
    height: int
    frame_rate: float
    track_ids: NDArray[np.int64]
    track_states: NDArray[np.int8]
    track_class_ids: NDArray[np.int64]
    track_boxes: NDArray[np.float64]
    track_features: NDArray[np.float32]
    track_embeddings: NDArray[np.float32]
    det_boxes: NDArray[np.float64]
    det_scores: NDArray[np.float64]
    det_class_ids: NDArray[np.int64]
    det_visibility: NDArray[np.float32]
    det_source_index: NDArray[np.int64]
    det_features: NDArray[np.float32]
    det_embeddings: NDArray[np.float32]
    det_gt_ids: NDArray[np.int64] | None
    cost_matrix: NDArray[np.float32] = _DenseOnDemand('dense_cost')  # type: ignore[assignment]
    mask_matrix: NDArray[np.float32] = _DenseOnDemand('dense_mask')  # type: ignore[assignment]
    match_stage: NDArray[np.int8]
    assigned_track_ids: NDArray[np.int64]
    new_track_ids: NDArray[np.int64]
    output_track_ids: NDArray[np.int64]
    output_boxes: NDArray[np.float64]
    output_scores: NDArray[np.float64]
    output_class_ids: NDArray[np.int64]
    output_det_index: NDArray[np.int64]
    est_id_switches_frame: int
    est_id_switches: int
    removed_track_ids: NDArray[np.int64]
    gt_boxes: NDArray[np.float64] | None = None
    gt_object_ids: NDArray[np.int64] | None = None
    size_source: str = ''
    origin: Any = None
    assoc_prob: NDArray[np.float32] | None = None
    classical_cost_matrix: NDArray[np.float32] | None = None

    @property
    def num_tracks(self) -> int:
        """T: tracks the association considered."""
        return int(self.track_ids.shape[0])

    @property
    def num_detections(self) -> int:
        """D: detections that reached the tracker."""
        return int(self.det_boxes.shape[0])

    @property
    def matched_pairs(self) -> int:
        """Detections matched to an existing track."""
        return int((self.assigned_track_ids >= 0).sum())
