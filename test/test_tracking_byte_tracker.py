"""ByteTracker behaviour: identities, time handling, classes, snapshot contract."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.snapshot import (
    DET_FEATURE_COLUMNS,
    TRACK_FEATURE_COLUMNS,
    MatchStage,
    TrackState,
)

RATE = 30.0


def frame(t_s: float, boxes, scores=None, classes=None, emb=None, idx: int = -1):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    scores = np.full(len(boxes), 0.9) if scores is None else scores
    return make_frame(int(round(t_s * 1e9)), boxes, scores, width=640, height=480,
                      class_ids=classes, embeddings=emb, frame_idx=idx)


def box(x: float, y: float = 100.0, w: float = 40.0, h: float = 100.0):
    return [x, y, x + w, y + h]


def tracker(**kw) -> ByteTracker:
    mem = kw.pop('memory', MemoryConfig())
    return ByteTracker(TrackerConfig(frame_rate=RATE, **kw), mem)


def ids_of(snap, det: int) -> int:
    """Output track id that came from detection row ``det`` (-1 if none)."""
    hit = np.flatnonzero(snap.output_det_index == det)
    return int(snap.output_track_ids[hit[0]]) if hit.size else -1


def test_straight_walk_keeps_ids():
    """Two people walking in parallel keep their IDs for 60 frames."""
    trk = tracker()
    seen = set()
    for k in range(60):
        snap = trk.update(frame(k / RATE, [box(10 + 3 * k), box(300 - 2 * k, 250)]))
        seen.update(snap.output_track_ids.tolist())
    assert seen == {1, 2}
    assert len(snap.output_track_ids) == 2


def test_new_tracks_need_two_frames_after_the_first_update():
    """First update activates at once (reference); later new tracks are output from frame 2."""
    trk = tracker()
    assert trk.update(frame(0.0, [box(10)])).output_track_ids.tolist() == [1]
    s1 = trk.update(frame(1 / RATE, [box(10), box(400)]))
    assert s1.output_track_ids.tolist() == [1]
    assert s1.new_track_ids.tolist() == [-1, 2]
    s2 = trk.update(frame(2 / RATE, [box(10), box(400)]))
    assert sorted(s2.output_track_ids.tolist()) == [1, 2]


def test_lost_and_refound_within_buffer():
    """A person hidden for 0.5 s (buffer 1 s) comes back with the same ID."""
    trk = tracker()
    for k in range(10):
        trk.update(frame(k / RATE, [box(100)]))
    for k in range(10, 25):
        snap = trk.update(frame(k / RATE, np.zeros((0, 4))))
    assert snap.track_states.tolist() == [TrackState.LOST]
    snap = trk.update(frame(25 / RATE, [box(100)]))
    assert snap.output_track_ids.tolist() == [1]
    assert snap.match_stage.tolist() == [MatchStage.HIGH]


def test_removed_after_buffer_in_seconds_not_updates():
    """Time mode removes a track after 1.5 s of gap (buffer 1 s) even if only 3 updates passed.

    Frame mode counts updates, so the same 3 updates keep it.
    """
    for frame_mode, expected in ((False, 2), (True, 1)):
        trk = tracker(frame_mode=frame_mode, track_buffer_s=1.0)
        for k in range(5):
            trk.update(frame(k / RATE, [box(100)]))
        t = 4 / RATE
        for _ in range(3):
            t += 0.5
            trk.update(frame(t, np.zeros((0, 4))))
        trk.update(frame(t + 0.5, [box(100)]))
        snap = trk.update(frame(t + 0.5 + 1 / RATE, [box(100)]))
        assert snap.output_track_ids.tolist() == [expected], frame_mode


def test_frame_mode_buffer_is_int_seconds_times_rate():
    """Frame mode keeps a lost track int(track_buffer_s * frame_rate) updates (reference)."""
    trk = ByteTracker(TrackerConfig(frame_rate=14.0, frame_mode=True, track_buffer_min_frames=0,
                                    track_buffer_s=1.0), MemoryConfig())
    assert trk.buffer_frames == 14
    # the default minimum of 30 frames (docs/tracking.md) keeps it longer at 14 fps
    assert ByteTracker(TrackerConfig(frame_rate=14.0, frame_mode=True)).buffer_frames == 30


def test_dropped_frames_predicted_by_stamp():
    """A fast walker (8 px/frame, 40 px wide) survives 6 dropped frames only in time mode."""
    results = {}
    for frame_mode in (False, True):
        trk = tracker(frame_mode=frame_mode)
        for k in range(10):
            trk.update(frame(k / RATE, [box(8 * k)]))
        snap = trk.update(frame(16 / RATE, [box(8 * 16)]))
        results[frame_mode] = snap.assigned_track_ids.tolist()
    assert results[False] == [1]
    assert results[True] == [-1]


def test_class_aware_matching():
    """A detection of another class at the same place does not take over the track."""
    trk = tracker()
    trk.update(frame(0.0, [box(100)], classes=[0]))
    trk.update(frame(1 / RATE, [box(100)], classes=[0]))
    snap = trk.update(frame(2 / RATE, [box(100)], classes=[3]))
    assert snap.assigned_track_ids.tolist() == [-1]
    assert snap.mask_matrix.sum() == 0
    agnostic = tracker(class_aware=False)
    agnostic.update(frame(0.0, [box(100)], classes=[0]))
    snap = agnostic.update(frame(1 / RATE, [box(100)], classes=[3]))
    assert snap.assigned_track_ids.tolist() == [1]
    assert snap.output_class_ids.tolist() == [0]       # the track keeps its class


def test_reset_restarts_ids_and_trackers_do_not_share():
    """IDs belong to the instance: reset restarts at 1; two trackers count independently."""
    a, b = tracker(), tracker()
    for k in range(3):
        a.update(frame(k / RATE, [box(10), box(300)]))
    assert b.update(frame(0.0, [box(10)])).output_track_ids.tolist() == [1]
    a.reset()
    assert a.update(frame(0.0, [box(500)])).output_track_ids.tolist() == [1]
    assert a.frame_count == 1


def test_output_det_index_points_at_source_detection():
    """output_det_index gives the detection row each output came from, whatever the order."""
    trk = tracker()
    xs = [10, 200, 400]
    for k in range(3):
        trk.update(frame(k / RATE, [box(x) for x in xs]))
    order = [2, 0, 1]
    snap = trk.update(frame(3 / RATE, [box(xs[i]) for i in order]))
    for tid, det, b in zip(snap.output_track_ids, snap.output_det_index, snap.output_boxes):
        assert det >= 0
        assert abs(snap.det_boxes[det, 0] - b[0]) < 2.0
        assert snap.assigned_track_ids[det] == tid


def test_det_index_follows_confidence_floor_and_source_index():
    """Rows under the floor do not reach the tracker; det_source_index maps back to the input."""
    trk = tracker()
    snap = trk.update(frame(0.0, [box(10), box(200), box(400)], scores=[0.9, 0.05, 0.8]))
    assert snap.num_detections == 2
    assert snap.det_source_index.tolist() == [0, 2]


def test_snapshot_shapes_dtypes_and_consistency():
    """Snapshot arrays have the documented shapes/dtypes and consistent decisions."""
    trk = tracker()
    rng = np.random.default_rng(3)
    for k in range(30):
        n = int(rng.integers(0, 8))
        xs = rng.uniform(0, 560, n)
        snap = trk.update(frame(k / RATE, [box(x) for x in xs], scores=rng.uniform(0, 1, n)))
        t, d = snap.num_tracks, snap.num_detections
        assert snap.track_ids.dtype == np.int64 and snap.track_ids.shape == (t,)
        assert snap.track_states.dtype == np.int8
        assert snap.track_features.shape == (t, len(TRACK_FEATURE_COLUMNS))
        assert snap.track_features.dtype == np.float32
        assert snap.det_features.shape == (d, len(DET_FEATURE_COLUMNS))
        assert snap.cost_matrix.shape == (t, d) and snap.cost_matrix.dtype == np.float32
        assert snap.mask_matrix.shape == (t, d) and snap.mask_matrix.dtype == np.float32
        assert snap.match_stage.shape == (d,) and snap.match_stage.dtype == np.int8
        assert snap.track_embeddings.shape == (t, 0) and snap.det_embeddings.shape == (d, 0)
        assigned = snap.assigned_track_ids[snap.assigned_track_ids >= 0]
        assert set(assigned.tolist()) <= set(snap.track_ids.tolist())
        assert len(set(assigned.tolist())) == assigned.size
        new = snap.new_track_ids[snap.new_track_ids >= 0]
        assert not set(new.tolist()) & set(snap.track_ids.tolist())
        assert not np.any((snap.assigned_track_ids >= 0) & (snap.new_track_ids >= 0))
        assert np.all((snap.match_stage > 0) == (snap.assigned_track_ids >= 0))
        # every matched pair was eligible in the mask
        rows = {tid: i for i, tid in enumerate(snap.track_ids.tolist())}
        for det in np.flatnonzero(snap.assigned_track_ids >= 0):
            assert snap.mask_matrix[rows[snap.assigned_track_ids[det]], det] == 1.0
        assert len(set(snap.output_track_ids.tolist())) == snap.output_track_ids.size


def test_track_features_describe_tracks_before_the_update():
    """Track features: time_since_update 1 nominal frame, velocity in px per frame, age."""
    trk = tracker()
    for k in range(20):
        snap = trk.update(frame(k / RATE, [box(100 + 4 * k)]))
    feats = snap.track_features[0]
    assert feats[7] == pytest.approx(1 / 50, rel=1e-3)
    assert feats[4] * 640 == pytest.approx(4.0, rel=0.1)
    assert feats[6] == pytest.approx(19 / 100, rel=1e-3)


def test_lost_track_reidentified_by_appearance_without_overlap():
    """With embeddings, a lost track reappearing far away (no overlap) keeps its ID."""
    trk = tracker()
    e1, e2 = np.eye(8, dtype=np.float32)[0], np.eye(8, dtype=np.float32)[1]
    for k in range(10):
        trk.update(frame(k / RATE, [box(50), box(450)], emb=np.stack([e1, e2])))
    for k in range(10, 20):
        trk.update(frame(k / RATE, [box(450)], emb=e2[None]))
    snap = trk.update(frame(20 / RATE, [box(450), box(250)], emb=np.stack([e2, e1])))
    assert snap.assigned_track_ids.tolist() == [2, 1]
    off = tracker(memory=MemoryConfig(appear_memory_enable=False))
    for k in range(10):
        off.update(frame(k / RATE, [box(50), box(450)], emb=np.stack([e1, e2])))
    for k in range(10, 20):
        off.update(frame(k / RATE, [box(450)], emb=e2[None]))
    snap = off.update(frame(20 / RATE, [box(450), box(250)], emb=np.stack([e2, e1])))
    assert snap.assigned_track_ids.tolist() == [2, -1]


def test_track_table_grows_and_reuses_slots():
    """TrackTable grows past its capacity and hands released rows out again."""
    from assoc_logger_ros.tracking.track import TrackTable

    tab = TrackTable(capacity=2)
    a = tab.alloc(3)
    assert a.tolist() == [0, 1, 2] and tab.capacity >= 3
    tab.track_id[a] = [7, 8, 9]
    tab.release(a[:1])
    b = tab.alloc(1)
    assert b.tolist() == [0]
    assert tab.track_id[1:3].tolist() == [8, 9]        # growth kept the other rows


def test_tracks_inspection_lists_tracked_then_lost():
    """tracks() returns frozen copies: tracked first, then lost, with their states."""
    trk = tracker()
    for k in range(3):
        trk.update(frame(k / RATE, [box(10), box(300)]))
    trk.update(frame(3 / RATE, [box(10)]))
    infos = trk.tracks()
    assert [(i.track_id, i.state) for i in infos] == [(1, TrackState.TRACKED),
                                                      (2, TrackState.LOST)]
    assert infos[0].box[0] == pytest.approx(10.0, abs=1.0)


def test_long_stream_releases_rows():
    """Tracks that end free their rows: 2,000 short-lived objects never grow the table far."""
    trk = tracker(track_buffer_s=0.1)
    for k in range(2000):
        trk.update(frame(k / RATE, [box(20 + (k // 3) % 500)] if k % 3 else np.zeros((0, 4))))
    assert trk._table.capacity <= 128
