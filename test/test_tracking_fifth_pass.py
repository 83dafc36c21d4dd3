"""Issue 12, fifth pass: coasting filters, velocity decay, xywh state, crowd threshold."""

from __future__ import annotations

import numpy as np
from test_tracking_candidates import RATE, box, frame, tracker
from test_tracking_sparse import (
    assert_same_snapshots,
    crowd,
    decisions_differ,
    sparse_and_dense_runs,
)

from assoc_logger_ros.config import TrackerConfig
from assoc_logger_ros.tracking import kalman
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.reference import reference_config


def _walk_then_hide(trk: ByteTracker, hits: int, x0: float = 100.0, step: float = 3.0,
                    hidden: int = 3) -> list[tuple[list[int], list[int]]]:
    """A walker seen ``hits`` frames, then hidden: (output IDs, det index) per hidden frame."""
    for k in range(hits):
        trk.update(frame(k / RATE, [box(x0 + step * k)]))
    out = []
    for k in range(hits, hits + hidden):
        snap = trk.update(frame(k / RATE, np.zeros((0, 4))))
        out.append((snap.output_track_ids.tolist(), snap.output_det_index.tolist()))
    return out


def test_defaults_publish_an_established_lost_track_for_one_frame():
    """Today's defaults: lost 1 frame after >= 10 matches in a row, inside the image."""
    cfg = TrackerConfig()
    assert (cfg.output_lost_frames, cfg.output_lost_min_hits, cfg.output_lost_inside) == \
        (1, 10, True)
    out = _walk_then_hide(ByteTracker(TrackerConfig(cmc=False)), hits=12)
    assert out == [([1], [-1]), ([], []), ([], [])]


def test_a_short_track_is_not_published_while_lost():
    """Seen 6 frames (fewer than output_lost_min_hits = 10): nothing while hidden; 0 lets it."""
    assert _walk_then_hide(ByteTracker(TrackerConfig(cmc=False)), hits=6)[0] == ([], [])
    any_len = ByteTracker(TrackerConfig(cmc=False, output_lost_min_hits=0))
    assert _walk_then_hide(any_len, hits=6)[0] == ([1], [-1])


def test_a_track_leaving_the_image_is_not_published():
    """A walker at the right edge (its prediction crosses x = 1920): only without the filter."""
    edge = {'hits': 12, 'x0': 1879.0 - 12 * 3.0 + 3.0}    # last box's right edge: 1919
    assert _walk_then_hide(ByteTracker(TrackerConfig(cmc=False)), **edge)[0] == ([], [])
    outside_ok = ByteTracker(TrackerConfig(cmc=False, output_lost_inside=False))
    assert _walk_then_hide(outside_ok, **edge)[0] == ([1], [-1])


def test_reference_turns_the_fifth_pass_settings_off():
    cfg = reference_config()
    assert (cfg.output_lost_frames, cfg.output_lost_min_hits, cfg.output_lost_inside) == \
        (0, 0, False)
    assert cfg.lost_velocity_decay == 1.0 and cfg.kalman_state == 'xyah'


def test_sparse_path_equals_dense_with_the_coasting_filters(monkeypatch):
    """Coasting runs after either path: identical outputs, coasted tracks included."""
    sparse, dense, _ = sparse_and_dense_runs(monkeypatch, crowd(np.random.default_rng(5), 150, 25))
    assert any((s.output_det_index == -1).any() for s in dense)
    assert_same_snapshots(sparse, dense)


def test_lost_velocity_decay_slows_a_lost_prediction():
    """Velocity 3 px/frame; lost, each further step is decay times the one before."""
    steps = {}
    for decay in (1.0, 0.5):
        trk = tracker(lost_velocity_decay=decay)
        for k in range(12):
            trk.update(frame(k / RATE, [box(100 + 3 * k)]))
        xs = []
        for k in range(12, 16):
            snap = trk.update(frame(k / RATE, np.zeros((0, 4))))
            xs.append(float(snap.track_boxes[0, 0]))
        steps[decay] = np.diff(xs)
    assert np.all(steps[1.0] > 2.5)
    np.testing.assert_allclose(steps[0.5][1:] / steps[0.5][:-1], 0.5, rtol=1e-6)
    assert steps[0.5][-1] < 0.5


def _botsort_kalman():
    """BoT-SORT's xywh filter written out in full 8x8 matrices (its kalman_filter.py)."""
    wp, wv = 1.0 / 20, 1.0 / 160
    f = np.eye(8)
    f[:4, 4:] = np.eye(4)
    hm = np.eye(4, 8)

    def initiate(z):
        w, h = z[2], z[3]
        std = [2 * wp * w, 2 * wp * h, 2 * wp * w, 2 * wp * h,
               10 * wv * w, 10 * wv * h, 10 * wv * w, 10 * wv * h]
        return np.r_[z, np.zeros(4)], np.diag(np.square(std))

    def predict(m, p):
        w, h = m[2], m[3]
        q = np.diag(np.square([wp * w, wp * h, wp * w, wp * h, wv * w, wv * h, wv * w, wv * h]))
        return f @ m, f @ p @ f.T + q

    def update(m, p, z):
        w, h = m[2], m[3]
        s = hm @ p @ hm.T + np.diag(np.square([wp * w, wp * h, wp * w, wp * h]))
        k = p @ hm.T @ np.linalg.inv(s)
        return m + k @ (z - hm @ m), p - k @ s @ k.T

    return initiate, predict, update


def test_xywh_blocks_equal_the_botsort_filter():
    """Initiate, predict and update in block form equal BoT-SORT's 8x8 xywh filter."""
    rng = np.random.default_rng(2)
    init, pred, upd = _botsort_kalman()
    z0 = np.array([500.0, 300.0, 40.0, 110.0])
    m_ref, p_ref = init(z0)
    m, b = kalman.initiate_blocks(z0[None], wh=True)
    for _ in range(6):
        m_ref, p_ref = pred(m_ref, p_ref)
        m, b = kalman.predict_blocks(m, b, 1.0, wh=True)
        z = m_ref[:4] + rng.normal(0, 2.0, 4)
        m_ref, p_ref = upd(m_ref, p_ref, z)
        m, b = kalman.update_blocks(m, b, z[None], wh=True)
        np.testing.assert_allclose(m[0], m_ref, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(kalman.from_blocks(b)[0], p_ref, rtol=1e-9, atol=1e-9)


def test_xywh_tracker_follows_a_box_that_changes_width():
    """The xywh state: a box widening 2 px a frame is followed in width; boxes round-trip."""
    b = np.array([[10.0, 20.0, 50.0, 120.0]])
    np.testing.assert_allclose(kalman.xywh_to_xyxy(kalman.xyxy_to_xywh(b)), b)
    trk = ByteTracker(TrackerConfig(kalman_state='xywh', cmc=False))
    for k in range(15):
        snap = trk.update(frame(k / RATE, [[100.0, 100.0, 140.0 + 2 * k, 200.0]]))
    assert snap.output_track_ids.tolist() == [1]
    assert abs(snap.output_boxes[0, 2] - (140.0 + 28)) < 1.0
    info = trk.tracks()[0]
    np.testing.assert_allclose(info.box, snap.output_boxes[0])


def _crowd_case(crowd_thresh: float, neighbour: bool) -> list[int]:
    """A at x 100..140 (B at 130..170 beside it, overlapping), then A's box 22 px left.

    Its IoU with A's prediction is about 0.3: fused cost about 0.73.
    """
    trk = tracker(crowd_match_thresh=crowd_thresh)
    for k in range(4):
        trk.update(frame(k / RATE, [box(100.0)] + ([box(130.0)] if neighbour else [])))
    return trk.update(frame(4 / RATE, [box(78.0)])).assigned_track_ids.tolist()


def test_crowd_match_thresh_tightens_stage_1_only_for_crowded_tracks():
    assert _crowd_case(0.0, neighbour=True) == [1]       # match_thresh 0.9 lets it match
    assert _crowd_case(0.7, neighbour=True) == [-1]      # crowded: 0.73 is above 0.7
    assert _crowd_case(0.7, neighbour=False) == [1]      # alone: the plain limit
    assert reference_config().crowd_match_thresh == 0.0 == TrackerConfig().crowd_match_thresh


def test_sparse_path_equals_dense_with_crowd_match_thresh(monkeypatch):
    sparse, dense, base = sparse_and_dense_runs(
        monkeypatch, crowd(np.random.default_rng(9), 150, 20), crowd_match_thresh=0.8)
    assert decisions_differ(dense, base)
    assert_same_snapshots(sparse, dense)
