"""The settings under which the tracker is the official ByteTrack code, decision for decision.

The defaults may add accuracy measures (``docs/tracking.md``, "Beyond the reference"); these
overrides switch every one of them off again, and with ``frame_mode`` the tracker reproduces the
official MOT17 half-val figures exactly (HOTA 67.80, MOTA 77.79, IDF1 79.89, IDSW 170; kept by
``test/test_tracking_reference.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from assoc_logger_ros.config import TrackerConfig

REFERENCE_SETTINGS: dict[str, Any] = {
    'output_box': 'kalman', 'track_buffer_min_frames': 0, 'oc_reupdate': False,
    'nsa_kalman': False, 'height_iou': False, 'score_cost_weight': 0.0,
    'output_lost_frames': 0, 'cmc': False, 'cmc_scale': False, 'nsa_strength': 1.0,
    'ocm_weight': 0.0, 'ocr_thresh': 0.0, 'cmc_unconfirmed': False,
    'track_buffer_s': 1.0, 'unconfirmed_match_thresh': 0.7, 'duplicate_iou_dist': 0.15,
    'lost_velocity_decay': 1.0, 'kalman_state': 'xyah',
    'output_lost_min_hits': 0, 'output_lost_inside': False,
    'crowd_match_thresh': 0.0,
}


def reference_config(base: TrackerConfig | None = None, *, frame_mode: bool = True,
                     **overrides: Any) -> TrackerConfig:
    """``base`` (default: the defaults) with the reference behaviour restored."""
    return dataclasses.replace(base or TrackerConfig(), frame_mode=frame_mode,
                               **{**REFERENCE_SETTINGS, **overrides})
