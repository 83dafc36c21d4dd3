"""Second-round tracking cues: the CMC zoom (``cmc_scale``), NSA strength and OCM."""

from __future__ import annotations

import numpy as np
import pytest
from test_tracking_cmc import people, xyah
from test_tracking_sparse import (
    assert_same_snapshots,
    crowd,
    decisions_differ,
    sparse_and_dense_runs,
)

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.tracking import cmc, kalman, ocm
from assoc_logger_ros.tracking.byte_tracker import ByteTracker


def zoomed(boxes: np.ndarray, s: float, c: tuple[float, float], t=(0.0, 0.0)) -> np.ndarray:
    """Boxes scaled by ``1 + s`` about ``c`` and shifted by ``t``."""
    c2 = np.array([c[0], c[1], c[0], c[1]])
    return c2 + (1.0 + s) * (boxes - c2) + np.array([t[0], t[1], t[0], t[1]])


def test_zoom_is_recovered_where_the_shift_finds_no_consensus():
    """A 3 % zoom plus a (4, -2) px shift: the plain shift gives up, the zoom fit finds it.

    Moving the predictions with the fit lands them on the detections.
    """
    rng = np.random.default_rng(3)
    boxes = people(rng, 25)
    dets = zoomed(boxes, 0.03, (900.0, 500.0), (4.0, -2.0)) + rng.normal(0, 0.5, (25, 4))
    assert cmc.estimate_shift(xyah(boxes), dets) == (0.0, 0.0, 0)
    dx, dy, s, cx0, cy0, n = cmc.estimate_motion(xyah(boxes), dets)
    assert n >= 20 and s == pytest.approx(0.03, abs=0.003)
    mean = xyah(boxes)
    cmc.apply_motion(mean, dx, dy, s, cx0, cy0)
    err = np.abs(mean[:, :4] - kalman.xyxy_to_xyah(dets))
    assert err[:, [0, 1]].max() < 3.0 and (err[:, 3] / mean[:, 3]).max() < 0.03


def test_zoom_falls_back_to_the_shift_and_to_nothing():
    """A pure pan gives the shift with s = 0; people walking their own ways give nothing."""
    rng = np.random.default_rng(4)
    boxes = people(rng, 20)
    pan = boxes + np.array([10.0, 3.0, 10.0, 3.0]) + rng.normal(0, 1.0, (20, 4))
    dx, dy, n = cmc.estimate_shift(xyah(boxes), pan)
    assert n > 0
    assert cmc.estimate_motion(xyah(boxes), pan) == (dx, dy, 0.0, 0.0, 0.0, n)
    jitter = boxes + np.repeat(rng.normal(0, 2.0, (20, 2)), 2, axis=0).reshape(20, 4)
    assert cmc.estimate_motion(xyah(boxes), jitter)[:3] == (0.0, 0.0, 0.0)
    assert cmc.estimate_motion(xyah(boxes[:2]), boxes[:2])[5] == 0


def test_apply_motion_without_zoom_is_apply_shift():
    a, b = np.ones((3, 8)), np.ones((3, 8))
    cmc.apply_motion(a, 2.0, -1.0, 0.0, 5.0, 5.0)
    cmc.apply_shift(b, 2.0, -1.0)
    np.testing.assert_array_equal(a, b)


def _walk_forward(cmc_scale: bool) -> list[int]:
    """Twelve standing people; the camera then zooms 2.5 % a frame for eight frames."""
    boxes = people(np.random.default_rng(6), 12)
    boxes[:, 2] = boxes[:, 0] + 0.2 * (boxes[:, 3] - boxes[:, 1])     # slim: zoom hurts IoU
    trk = ByteTracker(TrackerConfig(cmc_scale=cmc_scale), MemoryConfig())
    for k in range(10):
        trk.update(make_frame(int(k * 1e9 / 30), boxes, np.full(12, 0.9), width=1920,
                              height=1080))
    ids = []
    for k in range(1, 9):
        snap = trk.update(make_frame(int((9 + k) * 1e9 / 30),
                                     zoomed(boxes, 0.025 * k, (960.0, 540.0)),
                                     np.full(12, 0.9), width=1920, height=1080))
        ids.append(int(np.count_nonzero(snap.assigned_track_ids > 0)))
    return ids


def test_tracker_follows_a_zoom_with_cmc_scale():
    """With the zoom term every person stays matched; without it some are lost on the way."""
    assert min(_walk_forward(True)) == 12
    assert min(_walk_forward(False)) < 12


def test_nsa_strength_softens_the_noise_scale():
    """Strength 1 is NSA as published; strength 0 is the reference update."""
    def state(**kw) -> np.ndarray:
        trk = ByteTracker(TrackerConfig(cmc=False, **kw), MemoryConfig())
        for k, x in enumerate((100.0, 104.0, 113.0)):
            trk.update(make_frame(int(k * 1e9 / 30), np.array([[x, 100.0, x + 40.0, 200.0]]),
                                  np.array([0.9]), width=640, height=480))
        return np.asarray(trk.tracks()[0].box)
    plain, full = state(), state(nsa_kalman=True)
    half = state(nsa_kalman=True, nsa_strength=0.5)
    np.testing.assert_allclose(state(nsa_kalman=True, nsa_strength=0.0), plain)
    assert abs(half[0] - 113.0) < abs(plain[0] - 113.0)
    assert abs(full[0] - 113.0) < abs(half[0] - 113.0)


def test_ocm_term_rewards_the_direction_the_track_walks():
    """Moving right: a detection ahead costs less, one behind more.

    No term with fewer than HISTORY observations or without overlap.
    """
    hist = np.array([[[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]]] * 3)
    det = np.array([[35.0, 0.0], [-5.0, 0.0], [10.0, 25.0]])
    term = ocm.direction_term(hist, np.full(3, 3), det, np.ones(3), 0.2)
    assert term[0] == pytest.approx(-0.1) and term[1] == pytest.approx(0.1)
    assert term[2] == pytest.approx(0.0, abs=1e-12)
    assert np.all(ocm.direction_term(hist, np.full(3, 2), det, np.ones(3), 0.2) == 0.0)
    box = np.c_[det - [5.0, 50.0], det + [5.0, 50.0]]        # 100 px tall: 20 px is a move
    cost = ocm.add_direction_term(np.array([0.5, 0.5, 1.0]), hist, np.full(3, 3), box,
                                  np.ones(3), 0.2)
    np.testing.assert_allclose(cost, [0.4, 0.6, 1.0])
    tall = np.c_[det - [5.0, 250.0], det + [5.0, 250.0]]     # 500 px tall: 20 px is jitter
    np.testing.assert_array_equal(ocm.add_direction_term(np.full(3, 0.5), hist, np.full(3, 3),
                                                         tall, np.ones(3), 0.2), 0.5)


def test_sparse_path_equals_dense_with_ocm(monkeypatch):
    """The OCM term is computed pair by pair on both paths: identical decisions."""
    sparse, dense, plain = sparse_and_dense_runs(
        monkeypatch, crowd(np.random.default_rng(8), 150, 20), ocm_weight=0.2)
    assert decisions_differ(dense, plain) or any(
        not np.array_equal(a.cost_matrix, b.cost_matrix) for a, b in zip(dense, plain))
    assert_same_snapshots(sparse, dense)


def test_cmc_unconfirmed_moves_the_new_tracks_too():
    """Six confirmed people and a newcomer seen once; the camera pans 30 px (of 40 px widths).

    With cmc_unconfirmed the newcomer's one-box track moves with the camera and is matched
    again; without it, its box barely overlaps the new one and the track is dropped.
    """
    def newcomer_ids(flag: bool) -> list[int]:
        xs = 60.0 + 150.0 * np.arange(6)
        boxes = np.c_[xs, np.full(6, 100.0), xs + 40.0, np.full(6, 200.0)]
        boxes = np.r_[boxes, [[1500.0, 500.0, 1540.0, 600.0]]]
        trk = ByteTracker(TrackerConfig(cmc_unconfirmed=flag), MemoryConfig())
        for k in range(5):
            trk.update(make_frame(int(k * 1e9 / 30), boxes[:6], np.full(6, 0.9), width=1920,
                                  height=1080))
        trk.update(make_frame(int(5 * 1e9 / 30), boxes, np.full(7, 0.9), width=1920,
                              height=1080))
        first = [t.track_id for t in trk.tracks() if not t.activated]
        pan = boxes + np.array([30.0, 0.0, 30.0, 0.0])
        trk.update(make_frame(int(6 * 1e9 / 30), pan, np.full(7, 0.9), width=1920,
                              height=1080))
        return first + [t.track_id for t in trk.tracks() if t.activated and t.track_id > 6]
    assert newcomer_ids(True) == [7, 7]
    assert newcomer_ids(False) == [7]
