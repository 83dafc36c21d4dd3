"""OC-SORT observation-centric recovery (``ocr_thresh``): the last observed box re-finds."""

from __future__ import annotations

import numpy as np
from test_tracking_sparse import (
    assert_same_snapshots,
    crowd,
    decisions_differ,
    sparse_and_dense_runs,
)

from assoc_logger_ros.config import TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.reference import reference_config


def _walk_then_stop(tracker: ByteTracker) -> list[np.ndarray]:
    """A person walks right 25 px/frame for 10 frames, is hidden 3 frames, reappears standing.

    The constant-velocity prediction runs on 75+ px past the person (no overlap at all); the
    box where it was last seen overlaps the reappearance.
    """
    ids = []
    box = np.array([100.0, 100.0, 140.0, 200.0])
    for i in range(16):
        if 10 <= i < 13:
            boxes = np.empty((0, 4))
        else:
            x = 25.0 * min(i, 9) + (4.0 if i >= 13 else 0.0)
            boxes = (box + [x, 0, x, 0])[None]
        snap = tracker.update(make_frame(i * 33_333_333, boxes, np.full(len(boxes), 0.9),
                                         width=1280, height=720))
        ids.append(snap.output_track_ids.copy())
    return ids


def test_ocr_re_finds_a_track_whose_prediction_ran_past():
    plain = _walk_then_stop(ByteTracker(TrackerConfig(cmc=False)))
    ocr = _walk_then_stop(ByteTracker(TrackerConfig(cmc=False, ocr_thresh=0.3)))
    assert plain[9].tolist() == [1] and plain[-1].tolist() != [1]     # a new ID without OCR
    assert ocr[9].tolist() == [1] and all(o.tolist() == [1] for o in ocr[13:])


def test_ocr_is_off_in_the_reference_and_by_default():
    assert reference_config().ocr_thresh == 0.0 and TrackerConfig().ocr_thresh == 0.0


def test_sparse_path_equals_dense_with_ocr(monkeypatch):
    """OCR runs after both paths on the leftovers alone: identical decisions."""
    sparse, dense, base = sparse_and_dense_runs(
        monkeypatch, crowd(np.random.default_rng(8), 150, 20), ocr_thresh=0.3)
    assert decisions_differ(dense, base)
    assert_same_snapshots(sparse, dense)
