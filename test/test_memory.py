"""Contracts of the appearance memory and of the appearance cost fusion."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
import pytest

from assoc_logger_ros.config import MemoryConfig
from assoc_logger_ros.tracking.memory import AppearanceMemory, fuse_appearance

BOX = [[0.0, 0.0, 50.0, 120.0]]


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def basis(i, dim=8):
    v = np.zeros(dim, np.float32)
    v[i] = 1.0
    return v


def update_one(mem, tid, emb, *, vis=1.0, score=0.9, box=BOX, valid=True):
    return mem.update([tid], np.asarray([emb], np.float32), [valid], [vis], [score], box)


def test_first_update_stores_unit_embedding():
    """A good detection creates a memory whose EMA is the normalised embedding."""
    mem = AppearanceMemory(MemoryConfig())
    assert update_one(mem, 7, 3 * basis(2)) == 1
    assert mem.has([7, 8]).tolist() == [True, False]
    np.testing.assert_allclose(mem.embeddings([7])[0], basis(2), atol=1e-6)


@pytest.mark.parametrize('kwargs', [
    {'vis': 0.3}, {'score': 0.3}, {'box': [[0.0, 0.0, 10.0, 120.0]]}, {'valid': False}])
def test_quality_gate_rejects_poor_detections(kwargs):
    """Low visibility, low confidence, a small box side or an invalid embedding update nothing."""
    mem = AppearanceMemory(MemoryConfig())
    assert update_one(mem, 1, basis(0), **kwargs) == 0
    assert not mem.has([1])[0]


def test_update_angle_is_clamped():
    """One update rotates the EMA by at most memory_max_angle_deg, however different the sample."""
    cfg = MemoryConfig(memory_ema=0.0, memory_max_angle_deg=20.0)
    mem = AppearanceMemory(cfg)
    update_one(mem, 1, basis(0))
    update_one(mem, 1, basis(1))            # 90 degrees away, momentum 0 would jump there
    e = mem.embeddings([1])[0]
    angle = math.degrees(math.acos(float(np.clip(e @ basis(0), -1, 1))))
    assert angle == pytest.approx(20.0, abs=0.1)
    assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)


def test_small_updates_follow_the_ema():
    """Below the clamp the EMA is the normalised momentum mix."""
    cfg = MemoryConfig(memory_ema=0.9, memory_max_angle_deg=90.0)
    mem = AppearanceMemory(cfg)
    a, b = unit([1, 0, 0, 0]), unit([1, 0.2, 0, 0])
    update_one(mem, 1, a)
    update_one(mem, 1, b)
    np.testing.assert_allclose(mem.embeddings([1])[0], unit(0.9 * a + 0.1 * b), atol=1e-5)


def test_freeze_blocks_updates_for_n_frames():
    """A frozen memory ignores updates until memory_freeze_frames steps have passed."""
    mem = AppearanceMemory(MemoryConfig(memory_freeze_frames=3, memory_ema=0.0,
                                        memory_max_angle_deg=180.0))
    update_one(mem, 1, basis(0))
    mem.freeze([1, 99])                      # unknown 99 is ignored, not allocated
    assert len(mem) == 1
    for _ in range(3):
        assert update_one(mem, 1, basis(1)) == 0
        mem.step()
    assert update_one(mem, 1, basis(1)) == 1
    np.testing.assert_allclose(mem.embeddings([1])[0], basis(1), atol=1e-6)


def test_prototypes_are_bounded_and_keep_the_best():
    """At most k prototypes per track; a better sample evicts the worst one."""
    cfg = MemoryConfig(memory_prototypes=3)
    mem = AppearanceMemory(cfg)
    rng = np.random.default_rng(0)
    base = unit(rng.normal(size=16))
    scores = [0.65, 0.7, 0.95, 0.66, 0.9, 0.8, 0.61]
    for s in scores:               # distinct views of one identity (cosine distance ~0.05)
        update_one(mem, 1, base + 0.3 * unit(rng.normal(size=16)), score=s)
    protos, q = mem.prototypes(1)
    assert protos.shape == (3, 16)
    np.testing.assert_allclose(sorted(q), sorted(scores)[-3:], atol=1e-6)


def test_near_duplicate_sample_replaces_rather_than_fills():
    """A sample almost equal to a stored prototype competes with that one only (diversity)."""
    mem = AppearanceMemory(MemoryConfig(memory_prototypes=4))
    update_one(mem, 1, basis(0), score=0.7)
    update_one(mem, 1, basis(0) + 1e-3 * basis(1), score=0.9)
    protos, q = mem.prototypes(1)
    assert protos.shape[0] == 1 and q[0] == pytest.approx(0.9)


def test_distance_is_min_over_ema_and_prototypes():
    """A detection like an old prototype is close even after the EMA has moved away."""
    cfg = MemoryConfig(memory_ema=0.0, memory_max_angle_deg=180.0)
    mem = AppearanceMemory(cfg)
    b = unit(basis(0) + 0.5 * basis(1))      # 0.106 from basis(0): same identity
    update_one(mem, 1, basis(0))
    update_one(mem, 1, b)                    # EMA jumps to b; prototype basis(0) stays
    np.testing.assert_allclose(mem.embeddings([1])[0], b, atol=1e-6)
    d = mem.distance([1], np.stack([basis(0), basis(2)]))
    assert d[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert d[0, 1] == pytest.approx(1.0, abs=1e-6)


def test_prototypes_stay_with_the_tracks_identity():
    """A sample unlike the EMA is not a prototype; prototypes the EMA left behind are dropped."""
    cfg = MemoryConfig(memory_ema=0.0, memory_max_angle_deg=180.0, appear_thresh=0.25)
    mem = AppearanceMemory(cfg)
    update_one(mem, 1, basis(0))
    update_one(mem, 1, basis(1))             # a mix-up: EMA moves, the sample is not admitted
    protos, _ = mem.prototypes(1)
    assert protos.shape[0] == 0 or not np.allclose(protos @ basis(1), 1.0)
    # basis(0) is now 1.0 from the EMA (> 2 * appear_thresh): dropped
    assert not np.isclose(mem.prototypes(1)[0] @ basis(0), 1.0).any()
    d = mem.distance([1], basis(0)[None])
    assert d[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_missing_embeddings_give_nan_never_crash():
    """Unknown tracks, invalid, zero, NaN or wrong-width detection embeddings give NaN."""
    mem = AppearanceMemory(MemoryConfig())
    update_one(mem, 1, basis(0))
    det = np.stack([basis(0), np.zeros(8, np.float32), np.full(8, np.nan, np.float32),
                    basis(0)])
    d = mem.distance([1, 2], det, [True, True, True, False])
    assert np.isfinite(d[0, 0])
    assert np.isnan(d[0, 1:]).all() and np.isnan(d[1]).all()
    assert np.isnan(mem.distance([1], np.ones((2, 5), np.float32))).all()
    assert mem.distance([1], None).shape == (1, 0)
    assert mem.update([1], None, None, [1.0], [0.9], BOX) == 0


def test_width_change_clears_memory():
    """Embeddings of another width mean another descriptor: the old memory is dropped."""
    mem = AppearanceMemory(MemoryConfig())
    update_one(mem, 1, basis(0))
    update_one(mem, 2, basis(0, dim=4))
    assert mem.dim == 4 and mem.has([1, 2]).tolist() == [False, True]


def test_remove_forgets_and_rows_are_reused():
    """Removed tracks lose their memory; a new ID does not inherit anything."""
    mem = AppearanceMemory(MemoryConfig())
    update_one(mem, 1, basis(0))
    mem.remove([1])
    assert not mem.has([1])[0]
    mem.freeze([2])
    assert len(mem) == 0
    update_one(mem, 2, basis(3))
    protos, _ = mem.prototypes(2)
    assert protos.shape[0] == 1 and protos[0] @ basis(3) == pytest.approx(1.0)


# -- fusion ----------------------------------------------------------------------------------

def test_fusion_tracked_pair_needs_proximity_and_similarity():
    """Tracked tracks: appearance lowers the cost only when close in IoU and in appearance."""
    cfg = MemoryConfig()
    iou = np.array([[0.4, 0.9, 0.4]])
    app = np.array([[0.1, 0.05, 0.6]])
    out = fuse_appearance(iou, app, [False], cfg)
    np.testing.assert_allclose(out, [[0.1, 0.9, 0.4]])


def test_fusion_lost_track_reidentified_without_overlap():
    """A lost track whose predicted box no longer overlaps is matched by appearance alone."""
    cfg = MemoryConfig()
    iou = np.array([[1.0, 1.0], [1.0, 1.0]])
    app = np.array([[0.05, 0.9], [0.05, 0.9]])
    out = fuse_appearance(iou, app, [True, False], cfg)
    assert out[0, 0] == pytest.approx(0.05)      # lost: re-identified
    assert out[1, 0] == 1.0                      # tracked: proximity gate holds
    assert out[0, 1] == 1.0


def test_fusion_reid_respects_threshold_allowed_and_ambiguity():
    """Lost re-id needs app <= reid_thresh, an allowed pair, and an unambiguous best track."""
    cfg = MemoryConfig(reid_thresh=0.15)
    iou = np.ones((1, 1))
    assert fuse_appearance(iou, [[0.2]], [True], cfg)[0, 0] == 1.0
    assert fuse_appearance(iou, [[0.05]], [True], cfg, reid_allowed=[[False]])[0, 0] == 1.0
    two = fuse_appearance(np.ones((2, 1)), [[0.05], [0.08]], [True, True], cfg)
    np.testing.assert_array_equal(two, np.ones((2, 1)))
    clear = fuse_appearance(np.ones((2, 1)), [[0.02], [0.12]], [True, True], cfg)
    np.testing.assert_allclose(clear[:, 0], [0.02, 1.0])


def test_fusion_nan_keeps_iou_cost_and_disabled_is_identity():
    """Unknown appearance never changes a cost; memory disabled returns the IoU cost."""
    iou = np.array([[0.3, 1.0]])
    app = np.array([[np.nan, np.nan]])
    np.testing.assert_array_equal(fuse_appearance(iou, app, [True]), iou)
    off = MemoryConfig(appear_memory_enable=False)
    np.testing.assert_array_equal(fuse_appearance(iou, [[0.0, 0.0]], [True], off), iou)
    np.testing.assert_array_equal(fuse_appearance(iou, None, [True]), iou)
    assert fuse_appearance(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, bool)).shape == (0, 3)


def test_fusion_uses_raw_iou_distance_for_the_gate_when_given():
    """With iou_dist given, the proximity gate uses it rather than the fused cost."""
    cfg = MemoryConfig(proximity_thresh=0.5)
    out = fuse_appearance([[0.7]], [[0.1]], [False], cfg, iou_dist=[[0.4]])
    assert out[0, 0] == pytest.approx(0.1)


# -- properties ------------------------------------------------------------------------------

_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=60, deadline=None)
@given(emb=hnp.arrays(np.float32, st.tuples(st.integers(0, 6), st.just(4)), elements=_floats),
       det=hnp.arrays(np.float32, st.tuples(st.integers(0, 6), st.just(4)), elements=_floats),
       lost=st.lists(st.booleans(), min_size=6, max_size=6))
def test_memory_and_fusion_never_raise_and_stay_in_range(emb, det, lost):
    """Any embeddings (NaN, inf, zero, huge) never raise and keep costs sane.

    Distances are in [0, 2] or NaN, fused costs finite, and a pair with unknown appearance keeps
    its IoU cost.
    """
    mem = AppearanceMemory(MemoryConfig())
    n = emb.shape[0]
    ids = np.arange(n)
    boxes = np.tile([0.0, 0.0, 40.0, 100.0], (n, 1))
    with np.errstate(all='ignore'):
        mem.update(ids, emb, None, np.ones(n), np.full(n, 0.9), boxes)
    d = mem.distance(np.arange(6), det)
    assert d.shape == (6, det.shape[0])
    known = np.isfinite(d)
    assert ((d[known] >= 0) & (d[known] <= 2)).all()
    iou = np.full(d.shape, 0.8)
    fused = fuse_appearance(iou, d, lost)
    assert np.isfinite(fused).all()
    np.testing.assert_array_equal(fused[~known], iou[~known])
