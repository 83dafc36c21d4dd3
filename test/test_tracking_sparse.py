"""The sparse (crowd) association gives exactly the dense association's results."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_logger_ros.config import TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.tracking import byte_tracker
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.matching import assign, iou_distance
from assoc_logger_ros.tracking.sparse import PairCosts, assign_sparse, overlap_pairs

_FIELDS = ('track_ids', 'track_states', 'track_boxes', 'det_boxes', 'match_stage',
           'assigned_track_ids', 'new_track_ids', 'output_track_ids', 'output_boxes',
           'output_det_index', 'removed_track_ids', 'cost_matrix', 'mask_matrix')


def assert_same_snapshots(runs_a: list, runs_b: list) -> None:
    """Every snapshot of two runs equal in every compared field (bit for bit)."""
    assert len(runs_a) == len(runs_b)
    for a, b in zip(runs_a, runs_b):
        for name in _FIELDS:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def decisions_differ(runs_a: list, runs_b: list) -> bool:
    """Whether some snapshot of two runs assigned a detection differently."""
    return any(not np.array_equal(a.assigned_track_ids, b.assigned_track_ids)
               for a, b in zip(runs_a, runs_b))


def sparse_and_dense_runs(monkeypatch, frames: list, **settings) -> tuple[list, list, list]:
    """The outputs of the sparse path, the dense path (both with ``settings``) and plain."""
    runs = []
    for sparse in (False, True):
        monkeypatch.setattr(byte_tracker, 'SPARSE_MIN_PAIRS', 0 if sparse else 1 << 62)
        tr = ByteTracker(TrackerConfig(frame_mode=True, **settings))
        runs.append([tr.update(f) for f in frames])
    plain = ByteTracker(TrackerConfig(frame_mode=True))
    return runs[1], runs[0], [plain.update(f) for f in frames]


def crowd(rng: np.random.Generator, n: int, frames: int, *, classes: int = 1,
          width: float = 1920.0, height: float = 1080.0) -> list:
    """People walking with noisy detections, misses, clutter and mixed scores."""
    pos = rng.uniform([0, 0], [width, height], (n, 2))
    size = rng.uniform([15, 40], [45, 110], (n, 2))
    vel = rng.normal(0, 2.0, (n, 2))
    cls = rng.integers(0, classes, n)
    out = []
    for f in range(frames):
        pos += vel
        seen = rng.random(n) > 0.1
        c = pos[seen] + rng.normal(0, 1.5, (seen.sum(), 2))
        s = size[seen] * rng.uniform(0.9, 1.1, (seen.sum(), 1))
        boxes = np.c_[c - s / 2, c + s / 2]
        k = max(n // 10, 1)
        cl = rng.uniform([0, 0], [width, height], (k, 2))
        boxes = np.r_[boxes, np.c_[cl, cl + rng.uniform(10, 80, (k, 2))]]
        scores = rng.uniform(0.05, 1.0, len(boxes))
        ids = np.r_[cls[seen], rng.integers(0, classes, k)]
        out.append(make_frame(f * 33_333_333, boxes, scores, width=int(width),
                              height=int(height), class_ids=ids))
    return out


def run(frames: list, sparse: bool, monkeypatch, cfg: TrackerConfig | None = None) -> list:
    monkeypatch.setattr(byte_tracker, 'SPARSE_MIN_PAIRS', 0 if sparse else 1 << 62)
    tr = ByteTracker(cfg or TrackerConfig(frame_mode=True))
    return [tr.update(f) for f in frames]


@pytest.mark.parametrize('seed,n,classes,offset', [(0, 60, 1, 0.0), (1, 150, 3, 1.0),
                                                   (2, 400, 1, 1.0)])
def test_sparse_tracker_matches_dense(monkeypatch, seed, n, classes, offset):
    frames = crowd(np.random.default_rng(seed), n, 25, classes=classes)
    cfg = TrackerConfig(frame_mode=True, iou_pixel_offset=offset)
    dense = run(frames, False, monkeypatch, cfg)
    sparse = run(frames, True, monkeypatch, cfg)
    matched = 0
    for a, b in zip(dense, sparse):
        for name in _FIELDS:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        matched += a.matched_pairs
    assert matched > 10 * n     # the scenes really exercise the association


def test_overlap_pairs_equal_dense_iou():
    rng = np.random.default_rng(5)
    a = np.r_[rng.uniform(0, 500, (300, 2)), [[-20.0, -20.0], [100.0, 100.0], [7.0, 7.0]]]
    a = np.c_[a, a + rng.uniform(0, 60, a.shape)]
    a[-3, 2:] = [900.0, 700.0]           # one big box (tested against all)
    a[-2, 2:] = a[-2, :2]                # zero area
    a[-1, 2:] = a[-1, :2] - 3.0          # inverted
    a = np.r_[a, [[np.nan, 0.0, 10.0, 10.0], [0.0, 0.0, np.inf, 10.0]]]   # overlap nothing
    b = np.c_[rng.uniform(0, 500, (250, 2)), np.zeros((250, 2))]
    b[:, 2:] = b[:, :2] + rng.uniform(0, 60, (250, 2))
    b[:5] = a[:5]                        # identical boxes
    for off in (0.0, 1.0):
        with np.errstate(invalid='ignore'):
            dense = iou_distance(a, b, pixel_offset=off)
        i, j, d = overlap_pairs(a, b, pixel_offset=off)
        expect_i, expect_j = (dense < 1.0).nonzero()
        np.testing.assert_array_equal(i, expect_i)
        np.testing.assert_array_equal(j, expect_j)
        np.testing.assert_array_equal(d, dense[i, j])   # bit-identical values


def test_assign_sparse_equals_assign():
    rng = np.random.default_rng(9)
    for _ in range(200):
        n, m = rng.integers(1, 30, 2)
        cost = rng.uniform(0, 1.5, (n, m))
        cost[rng.random((n, m)) < 0.7] = 1.0
        thresh = float(rng.uniform(0.3, 1.0))
        r, c = (cost < 1.0).nonzero()
        want = assign(cost, thresh)
        got = assign_sparse(r, c, cost[r, c], n, m, thresh)
        for w, g in zip(want, got):
            np.testing.assert_array_equal(w, g)


def test_big_component_uses_sparse_matching(monkeypatch):
    from assoc_logger_ros.tracking import sparse
    monkeypatch.setattr(sparse, '_DENSE_COMPONENT', 4)
    rng = np.random.default_rng(3)
    for _ in range(50):
        n, m = rng.integers(2, 25, 2)
        cost = rng.uniform(0, 1.0, (n, m))
        cost[rng.random((n, m)) < 0.5] = 1.0
        r, c = (cost < 1.0).nonzero()
        want = assign(cost, 0.8)
        got = assign_sparse(r, c, cost[r, c], n, m, 0.8)
        for w, g in zip(want, got):
            np.testing.assert_array_equal(w, g)


def test_pair_costs_densify():
    pc = PairCosts(3, 4)
    pc.add(np.array([0, 2]), np.array([1, 3]), np.array([0.25, 0.5]), np.array([True, False]))
    cost, mask = pc.dense_cost(), pc.dense_mask()
    assert cost.dtype == np.float32 and cost.shape == (3, 4)
    assert cost[0, 1] == 0.25 and cost[2, 3] == 0.5 and cost.sum() == 10 + 0.75
    assert mask.sum() == 1.0 and mask[0, 1] == 1.0


def test_visibility_grid_equals_dense():
    from assoc_logger_ros.tracking import visibility as v
    rng = np.random.default_rng(4)
    n = 1500
    xy = rng.uniform(0, 1500, (n, 2))
    b = np.c_[xy, xy + rng.uniform([10, 30], [50, 120], (n, 2))]
    b[:3] = b[3]                                    # identical boxes
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    want = v._visibility_dense(b, area, np.ones(n, np.float32))
    got = v.visibility_from_boxes(b)
    assert (got < 1.0).sum() > n // 4
    np.testing.assert_array_equal(got, want)


def test_switch_diagnostics_sparse_equal_dense(monkeypatch):
    """Swap and reappearance tests on k-d tree pairs give the dense tests' counts."""
    from assoc_logger_ros.tracking import diagnostics as dg
    frames = crowd(np.random.default_rng(11), 700, 40)

    kinds = {'swap': 0, 'reappear': 0}
    observe = dg.SwitchEstimator.observe

    def spy(self, *args, **kwargs):
        rep = observe(self, *args, **kwargs)
        kinds['swap'] += rep.swap
        kinds['reappear'] += rep.reappear
        return rep

    monkeypatch.setattr(dg.SwitchEstimator, 'observe', spy)

    def counts(sparse: bool) -> list:
        monkeypatch.setattr(dg, '_PAIR_TREE_MIN', 0 if sparse else 1 << 62)
        monkeypatch.setattr(dg, '_REAPPEAR_SPARSE_MIN', 0 if sparse else 1 << 62)
        tr = ByteTracker(TrackerConfig(frame_mode=True))
        out = []
        for f in frames:
            s = tr.update(f)
            out.append((s.est_id_switches_frame, s.output_track_ids.tolist()))
        return out

    dense, sparse = counts(False), counts(True)
    assert dense == sparse
    assert kinds['swap'] > 0 and kinds['reappear'] > 0   # both tests really fired


def test_max_detections_keeps_the_best_scores_and_counts():
    rng = np.random.default_rng(2)
    n = 50
    xy = rng.uniform(0, 600, (n, 2))
    boxes = np.c_[xy, xy + 30.0]
    boxes[7] = [2e6, 0, 2e6 + 30, 30]                    # not pixels
    scores = rng.uniform(0.2, 1.0, n)
    tr = ByteTracker(TrackerConfig(max_detections=20))
    snap = tr.update(make_frame(0, boxes, scores, width=640, height=480))
    kept = snap.det_source_index
    assert kept.size == 20 and np.all(np.diff(kept) > 0)          # in message order
    ok = np.setdiff1d(np.flatnonzero(scores > 0.1), [7])
    best = ok[np.argsort(-scores[ok], kind='stable')[:20]]
    np.testing.assert_array_equal(kept, np.sort(best))
    assert tr.last_input_drops.out_of_range == 1
    assert tr.last_input_drops.over_max_detections == ok.size - 20
    tr.update(make_frame(1, boxes, scores, width=640, height=480))
    assert tr.input_drops.capped_frames == 2 and tr.input_drops.out_of_range == 2
