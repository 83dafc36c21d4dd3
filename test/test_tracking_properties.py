"""Property tests: random and degenerate frames never break the tracker's invariants."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import numpy as np

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.tracking.byte_tracker import ByteTracker

_VALUES = st.one_of(st.floats(-50, 700), st.sampled_from([np.nan, np.inf, -np.inf, 0.0]))


@st.composite
def frames(draw):
    """A short sequence of frames: random boxes, NaN/inf, zero-area and duplicated boxes."""
    out = []
    stamp = 0
    for _ in range(draw(st.integers(1, 6))):
        n = draw(st.integers(0, 12))
        raw = np.array(draw(st.lists(_VALUES, min_size=4 * n, max_size=4 * n)),
                       float).reshape(n, 4)
        with np.errstate(invalid='ignore'):
            boxes = np.c_[raw[:, :2], raw[:, :2] + np.abs(raw[:, 2:]) / 4]
        if n and draw(st.booleans()):
            boxes[0, 2:] = boxes[0, :2]                      # zero area
        if n > 1 and draw(st.booleans()):
            boxes[1] = boxes[0]                              # duplicate
        scores = np.array(draw(st.lists(st.one_of(st.floats(0, 1), st.just(np.nan)),
                                        min_size=n, max_size=n)), float)
        classes = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), int)
        stamp += draw(st.integers(0, 2_000_000_000))
        out.append(make_frame(stamp, boxes, scores, width=640, height=480, class_ids=classes))
    return out


def _check(snap) -> None:
    out_ids = snap.output_track_ids
    assert len(set(out_ids.tolist())) == out_ids.size                 # unique IDs
    assert len(set(snap.track_ids.tolist())) == snap.track_ids.size
    det = snap.output_det_index
    assert np.all(det < snap.num_detections)
    used = det[det >= 0]
    assert len(set(used.tolist())) == used.size                       # one det per track
    assigned = snap.assigned_track_ids[snap.assigned_track_ids >= 0]
    assert len(set(assigned.tolist())) == assigned.size
    assert np.all(np.isfinite(snap.output_boxes))
    assert np.all(np.isfinite(snap.cost_matrix))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=frames(), frame_mode=st.booleans(), class_aware=st.booleans())
def test_random_frames_keep_invariants(seq, frame_mode, class_aware):
    """Random/degenerate frames never raise; IDs unique; one detection per track per frame."""
    trk = ByteTracker(TrackerConfig(frame_mode=frame_mode, class_aware=class_aware),
                      MemoryConfig())
    for f in seq:
        _check(trk.update(f))


def test_thousands_of_boxes():
    """Two frames with 3,000 overlapping boxes each are handled (and all stay consistent)."""
    rng = np.random.default_rng(0)
    trk = ByteTracker(TrackerConfig(max_detections=5000), MemoryConfig())  # above the default
    for k in range(2):
        xy = rng.uniform(0, 1800, (3000, 2))
        boxes = np.c_[xy, xy + rng.uniform(5, 80, (3000, 2))]
        snap = trk.update(make_frame(k * 33_000_000, boxes, rng.uniform(0, 1, 3000),
                                     width=1920, height=1080))
        _check(snap)
    assert snap.num_detections > 2000


def test_empty_frames_only():
    """A stream of empty frames produces empty, well-shaped snapshots."""
    trk = ByteTracker(TrackerConfig(), MemoryConfig())
    for k in range(3):
        snap = trk.update(make_frame(k, np.zeros((0, 4)), np.zeros(0), width=10, height=10))
        assert snap.num_tracks == 0 and snap.num_detections == 0
        assert snap.cost_matrix.shape == (0, 0) and snap.output_boxes.shape == (0, 4)


def test_absurd_coordinates_are_ignored():
    """Boxes with coordinates beyond 1e6 px never reach the tracker (no overflow, no output)."""
    trk = ByteTracker(TrackerConfig(), MemoryConfig())
    for k in range(3):
        snap = trk.update(make_frame(k * 33_000_000, [[1e200, 1e200, 3e200, 4e200],
                                                      [10, 10, 50, 100]], [0.9, 0.9],
                                     width=640, height=480))
        assert snap.num_detections == 1
        assert np.all(np.isfinite(snap.det_features))
        assert snap.output_track_ids.tolist() == [1]
