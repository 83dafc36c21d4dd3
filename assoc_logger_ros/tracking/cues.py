"""Cheap association cues beyond IoU, after Hybrid-SORT (Yang et al., AAAI 2024).

* Height-modulated IoU: IoU times the overlap of the two boxes' vertical extents. People in a
  crowd overlap sideways but differ in height (distance from the camera), so the product
  separates neighbours that plain IoU confuses.
* Score cue: a person's detection score changes slowly (it drops as they get occluded), so a
  large jump between a track's last score and a detection's score hints at the wrong pair.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_F64 = NDArray[np.float64]


def height_iou(tracks: _F64, dets: _F64, pixel_offset: float = 1.0) -> _F64:
    """(T, D) overlap / union of the vertical extents ``[y1, y2]`` of xyxy boxes.

    ``pixel_offset`` as in :func:`~assoc_logger_ros.tracking.matching.iou_distance`.
    """
    t = np.asarray(tracks, np.float64).reshape(-1, 4)
    d = np.asarray(dets, np.float64).reshape(-1, 4)
    ty1, ty2, dy1, dy2 = t[:, 1:2], t[:, 3:4], d[:, 1], d[:, 3]
    # in place, the operations of height_iou_pairs in the same order (the same floats)
    inter = np.minimum(ty2, dy2)
    inter -= np.maximum(ty1, dy1)
    inter += pixel_offset
    np.maximum(inter, 0.0, out=inter)
    union = np.maximum(ty2, dy2)
    union -= np.minimum(ty1, dy1)
    union += pixel_offset
    np.maximum(union, 1e-9, out=union)
    inter /= union
    return inter


def height_iou_pairs(tracks: _F64, dets: _F64, pixel_offset: float = 1.0) -> _F64:
    """(N,) :func:`height_iou` of row-aligned box pairs (the sparse path), the same floats."""
    t = np.asarray(tracks, np.float64).reshape(-1, 4)
    d = np.asarray(dets, np.float64).reshape(-1, 4)
    top = np.maximum(t[:, 1], d[:, 1])
    bottom = np.minimum(t[:, 3], d[:, 3])
    inter = np.maximum(bottom - top + pixel_offset, 0.0)
    union = np.maximum(t[:, 3], d[:, 3]) - np.minimum(t[:, 1], d[:, 1]) + pixel_offset
    return inter / np.maximum(union, 1e-9)


def height_modulated_distance(iou_dist: _F64, tracks: _F64, dets: _F64,
                              pixel_offset: float = 1.0) -> _F64:
    """``1 - IoU * height IoU`` from an IoU-distance matrix and the boxes it came from."""
    out = np.subtract(1.0, iou_dist)
    out *= height_iou(tracks, dets, pixel_offset)
    return np.subtract(1.0, out, out=out)


def score_cost(track_scores: _F64, det_scores: _F64, weight: float) -> _F64:
    """(T, D) ``weight * |track score - detection score|``."""
    return weight * np.abs(np.asarray(track_scores, np.float64)[:, None]
                           - np.asarray(det_scores, np.float64)[None, :])
