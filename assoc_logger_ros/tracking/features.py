"""Seed-compatible feature rows of tracks and detections (the learned module's inputs).

Column order is :data:`~assoc_logger_ros.tracking.snapshot.TRACK_FEATURE_COLUMNS` and
:data:`~assoc_logger_ros.tracking.snapshot.DET_FEATURE_COLUMNS`. Geometry is divided by the image
size so samples from different cameras share one scale. Units:

* track ``x1/W .. y2/H``: the Kalman *predicted* box the association saw (before the update);
* ``vx/W``, ``vy/H``: Kalman centre velocity in pixels per *nominal frame* (1 / frame_rate s),
  divided by W / H: the unit the seed logged, independent of dropped frames;
* ``age/100``: nominal frames since the track started; ``time_since_update/50``: nominal frames
  since it last matched a detection (1 for a track matched in the previous frame); both are
  update counts in frame mode and describe the track *before* this update;
* ``confidence``, ``visibility``: of the detection the track last matched;
* detection ``confidence``, ``visibility`` and two reserved zero columns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.tracking.snapshot import DET_FEATURE_COLUMNS, TRACK_FEATURE_COLUMNS

AGE_SCALE = 100.0
SINCE_SCALE = 50.0


def track_features(boxes: NDArray[np.float64], velocity: NDArray[np.float64],
                   age: NDArray[np.float64], since_update: NDArray[np.float64],
                   confidence: NDArray[np.float64], visibility: NDArray[np.float64],
                   width: float, height: float) -> NDArray[np.float32]:
    """(T, 10) float32 track rows; ``velocity`` is (T, 2) centre velocity in px/nominal frame."""
    n = boxes.shape[0]
    out = np.empty((n, len(TRACK_FEATURE_COLUMNS)), np.float32)
    scale = np.array([width, height, width, height], np.float64)
    out[:, 0:4] = boxes / scale
    out[:, 4] = velocity[:, 0] / width
    out[:, 5] = velocity[:, 1] / height
    out[:, 6] = age / AGE_SCALE
    out[:, 7] = since_update / SINCE_SCALE
    out[:, 8] = confidence
    out[:, 9] = visibility
    return out


def det_features(boxes: NDArray[np.float64], scores: NDArray[np.float64],
                 visibility: NDArray[np.floating], width: float,
                 height: float) -> NDArray[np.float32]:
    """(D, 8) float32 detection rows."""
    n = boxes.shape[0]
    out = np.zeros((n, len(DET_FEATURE_COLUMNS)), np.float32)
    scale = np.array([width, height, width, height], np.float64)
    out[:, 0:4] = boxes / scale
    out[:, 4] = scores
    out[:, 5] = visibility
    return out
