"""Contracts of the generated scene and of the scene metrics (IDF1, IDSW, MOTA)."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_logger_ros.sim.metrics import FrameBoxes, evaluate, iou_matrix
from assoc_logger_ros.sim.scene import CART, SceneConfig, generate_scene
from assoc_logger_ros.tracking.visibility import visibility_from_mask

SMALL = SceneConfig(seed=3, num_frames=60)


@pytest.fixture(scope='module')
def scene():
    return generate_scene(SMALL)


def test_same_seed_same_scene_other_seed_other_scene(scene):
    """Generation is deterministic in the config, and the seed matters."""
    again = generate_scene(SMALL)
    for a, b in zip(scene.frames, again.frames):
        assert a.stamp_ns == b.stamp_ns
        np.testing.assert_array_equal(a.det_boxes, b.det_boxes)
        np.testing.assert_array_equal(a.det_embeddings, b.det_embeddings)
        np.testing.assert_array_equal(a.det_gt_ids, b.det_gt_ids)
    np.testing.assert_array_equal(scene.frames[10].mask(), again.frames[10].mask())
    other = generate_scene(SceneConfig(seed=4, num_frames=60))
    assert not np.array_equal(other.frames[5].det_boxes, scene.frames[5].det_boxes)


def test_frames_are_complete_and_consistent(scene):
    """Frame count, increasing stamps, aligned per-detection arrays, both classes present."""
    assert len(scene.frames) == SMALL.num_frames
    stamps = [f.stamp_ns for f in scene.frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    classes = set()
    for f in scene.frames:
        n = len(f)
        assert f.det_scores.shape == (n,) and f.det_embeddings.shape == (n, SMALL.emb_dim)
        assert ((f.det_scores >= 0) & (f.det_scores <= 1)).all()
        real = f.det_obj >= 0
        np.testing.assert_array_equal(f.det_gt_ids[real], f.obj_ids[f.det_obj[real]])
        assert (f.det_gt_ids[~real] == -1).all()
        assert (f.obj_visibility[f.det_obj[real]] >= SMALL.min_visibility).all()
        classes |= set(f.obj_classes.tolist())
    assert classes == {0, CART}


def test_embeddings_identify_the_person(scene):
    """A well visible detection's embedding is nearest to its own identity's embedding."""
    hits = total = 0
    for f in scene.frames:
        ok = (f.det_obj >= 0) & f.det_emb_valid & (f.det_visibility > 0.9)
        if not ok.any():
            continue
        sim = f.det_embeddings[ok] @ scene.identity_embeddings.T
        hits += int((sim.argmax(axis=1) == f.det_gt_ids[ok]).sum())
        total += int(ok.sum())
    assert total > 100 and hits / total > 0.99


def test_mask_labels_are_detection_indices_and_give_visibility(scene):
    """Mask value k marks detection k-1 inside its box; mask visibility follows the truth."""
    f = scene.frames[30]
    m, img = f.render()
    assert m.dtype == np.uint16 and m.shape == (SMALL.height, SMALL.width)
    assert img.dtype == np.uint8 and img.shape == (SMALL.height, SMALL.width, 3)
    assert m.max() <= len(f)
    fps = np.flatnonzero(f.det_obj < 0)
    assert not np.isin(fps + 1, m).any()                 # false positives have no pixels
    vis = visibility_from_mask(m, f.det_boxes, None, SMALL.width, SMALL.height, fill_ref=0.7)
    real = f.det_obj >= 0
    assert np.corrcoef(vis[real], f.det_visibility[real])[0, 1] > 0.5
    frame = f.to_frame(with_mask=True)
    assert frame.mask is not None and frame.gt_ids is not None and frame.embeddings is not None


def test_images_colour_identities_differently(scene):
    """Two different identities' visible pixels have different mean colours."""
    f = scene.frames[0]
    labels, img = scene.rasterise(f, with_image=True)
    vis = np.argsort(-f.obj_visibility)[:2]
    c = [img[labels == i + 1].mean(axis=0) for i in vis]
    assert np.abs(c[0] - c[1]).sum() > 30


def test_dropped_frames_and_jitter_leave_gaps():
    """With dropped frames, frame indices skip and stamps keep real time."""
    s = generate_scene(SceneConfig(seed=1, num_frames=50, drop_rate=0.3, stamp_jitter=0.2))
    idx = np.array([f.frame_idx for f in s.frames])
    assert len(s.frames) == 50 and (np.diff(idx) > 1).any()
    dt = np.diff([f.stamp_ns for f in s.frames])
    assert (dt > 0).all() and dt.std() > 0


def test_generation_fits_small_configs():
    """Degenerate configs (no walkers, no occluders, tiny image) still generate."""
    s = generate_scene(SceneConfig(num_frames=5, num_walkers=0, num_occluders=0, width=32,
                                   height=24, false_positives=0.0))
    assert len(s.frames) == 5 and all(len(f) == 0 for f in s.frames)
    assert s.frames[0].to_frame(with_mask=True).mask.shape == (24, 32)


# -- metrics ---------------------------------------------------------------------------------

def fb(ids, boxes):
    return FrameBoxes.of(ids, boxes)


A = [0, 0, 10, 20]
B = [50, 0, 60, 20]


def test_perfect_tracking_scores_one():
    """Identical output gives IDF1 = MOTA = 1 and no switch."""
    gt = [fb([1, 2], [A, B])] * 5
    m = evaluate(gt, gt)
    assert m.idf1 == 1.0 and m.mota == 1.0 and m.idsw == 0


def test_swap_counts_two_switches_and_lowers_idf1():
    """Two tracks exchanging their people halfway: 2 switches, IDF1 0.5 (TrackEval values)."""
    gt = [fb([1, 2], [A, B])] * 4
    pr = [fb([7, 8], [A, B])] * 2 + [fb([8, 7], [A, B])] * 2
    m = evaluate(gt, pr)
    assert m.idsw == 2 and m.idsw_per_frame.tolist() == [0, 0, 2, 0]
    assert m.idf1 == pytest.approx(0.5)
    assert m.idsw_events[0][0] == 2


def test_fragment_after_gap_counts_one_switch():
    """A person re-found under a new ID after frames unmatched is one switch."""
    gt = [fb([1], [A])] * 4
    pr = [fb([7], [A]), fb([], []), fb([9], [A]), fb([9], [A])]
    m = evaluate(gt, pr)
    assert m.idsw == 1 and m.fn == 1 and m.tp == 3
    assert m.idf1 == pytest.approx(2 * 2 / (4 + 3))


def test_iou_threshold_decides_matches():
    """A prediction overlapping less than IoU 0.5 is a false positive and a miss."""
    gt = [fb([1], [A])]
    pr = [fb([1], [[5, 0, 15, 20]])]
    assert iou_matrix([A], [[5, 0, 15, 20]])[0, 0] == pytest.approx(1 / 3)
    m = evaluate(gt, pr)
    assert m.tp == 0 and m.fp == 1 and m.fn == 1


def test_length_mismatch_raises():
    """Ground truth and predictions must cover the same frames."""
    with pytest.raises(ValueError, match='frames'):
        evaluate([fb([1], [A])], [])
