"""The accuracy settings beyond the reference: each does what its description says."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.tracking import kalman, oc
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.cues import height_iou, height_modulated_distance, score_cost
from assoc_logger_ros.tracking.reference import REFERENCE_SETTINGS, reference_config

RATE = 30.0


def frame(t_s: float, boxes, scores=None):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    scores = np.full(len(boxes), 0.9) if scores is None else np.asarray(scores, float)
    return make_frame(int(round(t_s * 1e9)), boxes, scores, width=1920, height=1080)


def box(x: float, y: float = 100.0, w: float = 40.0, h: float = 100.0):
    return [x, y, x + w, y + h]


def tracker(**kw) -> ByteTracker:
    kw.setdefault('frame_mode', False)
    cfg = reference_config(frame_rate=kw.pop('frame_rate', RATE), **kw)
    return ByteTracker(cfg, MemoryConfig())


def test_reference_config_switches_every_candidate_off():
    """Every setting named in REFERENCE_SETTINGS exists and reference_config restores it."""
    cfg = reference_config(TrackerConfig(output_box='detection', oc_reupdate=True))
    assert cfg.frame_mode
    for name, value in REFERENCE_SETTINGS.items():
        assert getattr(cfg, name) == value
    assert not reference_config(frame_mode=False).frame_mode


def test_output_box_detection_publishes_the_raw_detection():
    """With output_box=detection the published box is the matched detection, bit for bit."""
    rng = np.random.default_rng(0)
    out = {}
    for mode in ('kalman', 'detection'):
        trk = tracker(output_box=mode)
        for k in range(8):
            b = np.asarray(box(100 + 5 * k)) + rng.normal(0, 2, 4)
            snap = trk.update(frame(k / RATE, [b]))
        out[mode] = (snap.output_boxes[0], snap.det_boxes[snap.output_det_index[0]], b)
    kal, det_k, raw = out['kalman']
    got, det_d, raw_d = out['detection']
    assert np.array_equal(got, det_d)
    assert not np.allclose(kal, det_k)          # the Kalman box is a different box
    assert np.array_equal(det_d, raw_d)         # the snapshot's det boxes stay raw


def _lost_for(trk: ByteTracker, rate: float, gap_frames: int) -> list[int]:
    for k in range(5):
        trk.update(frame(k / rate, [box(100)]))
    for k in range(5, 5 + gap_frames):
        trk.update(frame(k / rate, np.zeros((0, 4))))
    snap = trk.update(frame((5 + gap_frames) / rate, [box(100)]))
    return snap.assigned_track_ids.tolist()


@pytest.mark.parametrize('frame_mode', [False, True])
def test_track_buffer_min_frames_keeps_tracks_longer_at_low_rates(frame_mode):
    """At 7 fps a 1 s buffer is 7 frames; a minimum of 30 frames keeps a 20-frame gap."""
    plain = tracker(frame_rate=7.0, frame_mode=frame_mode)
    longer = tracker(frame_rate=7.0, frame_mode=frame_mode, track_buffer_min_frames=30)
    assert plain.buffer_frames == 7 and longer.buffer_frames == 30
    assert longer.buffer_s == pytest.approx(30 / 7.0)
    assert _lost_for(plain, 7.0, 20) == [-1]
    assert _lost_for(longer, 7.0, 20) == [1]
    # at 30 fps the minimum changes nothing: 1 s is already 30 frames
    assert tracker(track_buffer_min_frames=30).buffer_s == pytest.approx(1.0)


def test_reupdate_replays_a_straight_gap():
    """ORU from a state at rest to a detection 10 frames and 50 px away gives ~5 px/frame."""
    z0 = np.array([[100.0, 200.0, 0.4, 100.0]])
    mean, cov = kalman.initiate_blocks(z0)
    for _ in range(5):                              # settle at rest
        mean, cov = kalman.predict_blocks(mean, cov)
        mean, cov = kalman.update_blocks(mean, cov, z0)
    z1 = z0 + [[50.0, 0.0, 0.0, 0.0]]
    m_oru, _ = oc.reupdate(mean, cov, z0, z1, np.array([10.0]))
    # the plain way: drift 10 frames at rest, then one update
    m_plain, c_plain = mean, cov
    for _ in range(10):
        m_plain, c_plain = kalman.predict_blocks(m_plain, c_plain)
    m_plain, _ = kalman.update_blocks(m_plain, c_plain, z1)
    assert abs(m_oru[0, 4] - 5.0) < abs(m_plain[0, 4] - 5.0)
    assert m_oru[0, 4] == pytest.approx(5.0, rel=0.35)
    assert m_oru[0, 0] == pytest.approx(150.0, abs=3.0)


def test_oc_reupdate_in_the_tracker_after_occlusion():
    """A re-found lost track gets the replayed state, from its state at its last detection."""
    state = {}
    for on in (False, True):
        trk = tracker(oc_reupdate=on)
        for k in range(10):
            trk.update(frame(k / RATE, [box(100 + 3 * k)]))
        slot = trk._tracked[0]
        saved = trk._table.mean[[slot]].copy(), trk._table.cov[[slot]].copy()
        for k in range(10, 20):
            trk.update(frame(k / RATE, np.zeros((0, 4))))
        snap = trk.update(frame(20 / RATE, [box(130)]))
        assert snap.assigned_track_ids.tolist() == [1]
        state[on] = trk._table.mean[trk._tracked[0]]
    z0, z1 = kalman.xyxy_to_xyah([box(127)]), kalman.xyxy_to_xyah([box(130)])
    expected, _ = oc.reupdate(saved[0], saved[1], z0, z1, np.array([11.0]))
    np.testing.assert_allclose(state[True], expected[0], atol=1e-6)
    assert not np.allclose(state[True], state[False], atol=1e-3)


def test_nsa_noise_scale_one_is_the_reference_update():
    """noise_scale 1 equals the plain update; a confident detection is trusted more."""
    mean, cov = kalman.initiate_blocks(np.array([[100.0, 200.0, 0.4, 100.0]]))
    mean, cov = kalman.predict_blocks(mean, cov)
    z = np.array([[110.0, 200.0, 0.4, 100.0]])
    m_ref, c_ref = kalman.update_blocks(mean, cov, z)
    m_one, c_one = kalman.update_blocks(mean, cov, z, np.ones(1))
    assert np.array_equal(m_ref, m_one) and np.array_equal(c_ref, c_one)
    m_conf, _ = kalman.update_blocks(mean, cov, z, np.array([0.1]))
    assert abs(m_conf[0, 0] - 110.0) < abs(m_ref[0, 0] - 110.0)


def test_height_iou_and_score_cost():
    """Same height span: 1; half overlapping spans: 1/3; the score cue is weight * |diff|."""
    t = np.array([[0.0, 0.0, 10.0, 100.0]])
    d = np.array([[50.0, 0.0, 60.0, 100.0], [0.0, 50.0, 10.0, 150.0]])
    np.testing.assert_allclose(height_iou(t, d, 0.0), [[1.0, 50.0 / 150.0]])
    dist = np.array([[0.2, 0.2]])
    np.testing.assert_allclose(height_modulated_distance(dist, t, d, 0.0),
                               [[0.2, 1.0 - 0.8 / 3.0]])
    np.testing.assert_allclose(score_cost(np.array([0.9]), np.array([0.9, 0.4]), 0.2),
                               [[0.0, 0.1]])


def test_height_iou_separates_neighbours_of_different_depth():
    """A near person (taller) next to a far one: HMIoU keeps the track on the right one."""
    near = [100.0, 100.0, 160.0, 300.0]
    for on in (False, True):
        trk = tracker(height_iou=on)
        for k in range(5):
            snap = trk.update(frame(k / RATE, [near]))
        assert snap.output_track_ids.tolist() == [1]
    # with the cue on, a shorter box at the same place costs more than the plain IoU cost
    trk = tracker(height_iou=True)
    trk.update(frame(0.0, [near]))
    snap = trk.update(frame(1 / RATE, [[100.0, 160.0, 160.0, 300.0]]))
    plain = tracker()
    plain.update(frame(0.0, [near]))
    snap_p = plain.update(frame(1 / RATE, [[100.0, 160.0, 160.0, 300.0]]))
    assert snap.cost_matrix[0, 0] > snap_p.cost_matrix[0, 0]



def test_output_lost_frames_publishes_recently_lost_tracks():
    """With output_lost_frames=3 a hidden walker is published 3 more frames, at its prediction."""
    for k_out in (0, 3):
        trk = tracker(output_lost_frames=k_out)
        for k in range(10):
            trk.update(frame(k / RATE, [box(100 + 3 * k)]))
        published = []
        for k in range(10, 16):
            snap = trk.update(frame(k / RATE, np.zeros((0, 4))))
            published.append(snap.output_track_ids.tolist())
            if snap.output_track_ids.size:
                assert snap.output_det_index.tolist() == [-1]
                assert snap.output_boxes[0, 0] > 127.0          # moved on with its velocity
        assert published == [[1]] * k_out + [[]] * (6 - k_out)
