"""Camera-motion compensation from the boxes (tracking/cmc.py) and its use in the tracker."""

from __future__ import annotations

import numpy as np
import pytest
from test_tracking_sparse import assert_same_snapshots, crowd

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.tracking import byte_tracker, cmc, kalman
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.reference import reference_config


def people(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 4) xyxy boxes of people spread over a 1920x1080 image."""
    c = rng.uniform([100, 200], [1800, 900], (n, 2))
    h = rng.uniform(80, 200, n)
    return np.c_[c[:, 0] - 0.2 * h, c[:, 1] - 0.5 * h, c[:, 0] + 0.2 * h, c[:, 1] + 0.5 * h]


def xyah(boxes: np.ndarray) -> np.ndarray:
    return np.c_[kalman.xyxy_to_xyah(boxes), np.zeros((len(boxes), 4))]


def test_uniform_shift_is_recovered():
    """Every detection moved by (12, -5) px plus 1 px noise: the estimate is within 0.5 px."""
    rng = np.random.default_rng(0)
    boxes = people(rng, 20)
    dets = boxes + np.array([12.0, -5.0, 12.0, -5.0]) + rng.normal(0, 1.0, (20, 4))
    dx, dy, n = cmc.estimate_shift(xyah(boxes), dets)
    assert n >= 16
    assert dx == pytest.approx(12.0, abs=0.5) and dy == pytest.approx(-5.0, abs=0.5)


def test_kd_tree_path_gives_the_same_shift(monkeypatch):
    """Beyond DENSE_MAX_PAIRS the nearest centres come from a k-d tree: same pairs, same shift."""
    rng = np.random.default_rng(1)
    boxes = people(rng, 40)
    dets = boxes + np.array([-7.0, 3.0, -7.0, 3.0]) + rng.normal(0, 1.0, (40, 4))
    dense = cmc.estimate_shift(xyah(boxes), dets)
    monkeypatch.setattr(cmc, 'DENSE_MAX_PAIRS', 0)
    assert cmc.estimate_shift(xyah(boxes), dets) == dense
    assert dense[2] > 0


def test_no_shift_without_consensus_or_evidence():
    """A group moving while the others stand, independent jitter, or too few people: no shift."""
    rng = np.random.default_rng(2)
    boxes = people(rng, 20)
    group = boxes.copy()
    group[:8] += np.array([25.0, 0.0, 25.0, 0.0])        # 8 of 20 walk right together
    assert cmc.estimate_shift(xyah(boxes), group) == (0.0, 0.0, 0)
    jitter = boxes + np.repeat(rng.normal(0, 2.0, (20, 2)), 2, axis=0).reshape(20, 4)
    assert cmc.estimate_shift(xyah(boxes), jitter) == (0.0, 0.0, 0)
    few = boxes[:3] + np.array([30.0, 0.0, 30.0, 0.0])
    assert cmc.estimate_shift(xyah(boxes[:3]), few) == (0.0, 0.0, 0)
    assert cmc.estimate_shift(xyah(boxes[:0]), boxes) == (0.0, 0.0, 0)


def test_apply_shift_moves_position_and_part_of_velocity():
    mean = np.zeros((2, 8))
    cmc.apply_shift(mean, 4.0, -2.0)
    np.testing.assert_array_equal(mean[:, 0:2], [[4.0, -2.0]] * 2)
    np.testing.assert_array_equal(mean[:, 4:6], [[4.0 * cmc.VELOCITY_SHARE,
                                                 -2.0 * cmc.VELOCITY_SHARE]] * 2)
    np.testing.assert_array_equal(mean[:, [2, 3, 6, 7]], 0.0)


def _jump_ids(use_cmc: bool) -> tuple[list[int], list[int]]:
    """Six standing people; the camera jolts 36 px (most of a 40 px box width) in one frame."""
    xs = 60.0 + 150.0 * np.arange(6)
    boxes = np.c_[xs, np.full(6, 100.0), xs + 40.0, np.full(6, 200.0)]
    trk = ByteTracker(reference_config(frame_mode=False, cmc=use_cmc), MemoryConfig())
    for k in range(10):
        snap = trk.update(make_frame(int(k * 1e9 / 30), boxes, np.full(6, 0.9),
                                     width=1920, height=1080))
    before = sorted(snap.output_track_ids.tolist())
    jolt = boxes + np.array([36.0, 0.0, 36.0, 0.0])
    snap = trk.update(make_frame(int(10 * 1e9 / 30), jolt, np.full(6, 0.9),
                                 width=1920, height=1080))
    return before, sorted(snap.assigned_track_ids.tolist())


def test_tracker_keeps_identities_through_a_camera_jolt():
    """Without CMC the jolted boxes barely overlap their predictions and no track matches."""
    before, after = _jump_ids(False)
    assert before == [1, 2, 3, 4, 5, 6] and after == [-1] * 6
    before, after = _jump_ids(True)
    assert before == [1, 2, 3, 4, 5, 6] and after == [1, 2, 3, 4, 5, 6]


def test_lost_tracks_follow_the_camera():
    """A hidden person's lost track moves with the shift the visible people agree on."""
    xs = 60.0 + 150.0 * np.arange(7)
    boxes = np.c_[xs, np.full(7, 100.0), xs + 40.0, np.full(7, 200.0)]
    trk = ByteTracker(TrackerConfig(), MemoryConfig())
    t = 0
    for _ in range(10):
        trk.update(make_frame(int(t * 1e9 / 30), boxes, np.full(7, 0.9), width=1920,
                              height=1080))
        t += 1
    for k in range(1, 6):       # the camera pans 6 px per frame; person 7 is hidden
        moved = boxes[:6] + np.array([6.0 * k, 0.0, 6.0 * k, 0.0])
        trk.update(make_frame(int(t * 1e9 / 30), moved, np.full(6, 0.9), width=1920,
                              height=1080))
        t += 1
    lost = [tr for tr in trk.tracks() if tr.track_id == 7]
    assert lost and int(lost[0].state) == 2
    cx = 0.5 * (lost[0].box[0] + lost[0].box[2])
    assert cx > xs[6] + 20.0 + 0.5 * 6.0 * 5        # followed most of the 30 px pan


def test_sparse_path_equals_dense_with_camera_motion(monkeypatch):
    """A panning crowd: CMC fires, and the sparse association still equals the dense one."""
    rng = np.random.default_rng(5)
    frames = crowd(rng, 150, 20)
    pan = np.cumsum(rng.normal(0.0, 8.0, (len(frames), 2)), axis=0)    # a shaking camera
    for f, p in zip(frames, pan):
        f.boxes[:] += np.r_[p, p]
    fired = []
    real = cmc.estimate_shift

    def spy(t, d):
        out = real(t, d)
        fired.append(out[2] > 0)
        return out
    monkeypatch.setattr(cmc, 'estimate_shift', spy)
    runs = []
    for sparse in (False, True):
        monkeypatch.setattr(byte_tracker, 'SPARSE_MIN_PAIRS', 0 if sparse else 1 << 62)
        tr = ByteTracker(TrackerConfig(frame_mode=True))
        runs.append([tr.update(f) for f in frames])
    assert sum(fired) >= 10
    assert_same_snapshots(*runs)
