"""Contracts of per-detection visibility from instance masks and from boxes."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_logger_ros.tracking.visibility import (
    validate_mask,
    visibility_from_boxes,
    visibility_from_mask,
)


def test_mask_validation_names_the_problem():
    """Wrong size, float type, several channels or a non-array raise a clear ValueError."""
    with pytest.raises(ValueError, match='is 30x20 but the detections are for a 40x20'):
        validate_mask(np.zeros((20, 30), np.uint8), 40, 20)
    with pytest.raises(ValueError, match='integer type'):
        validate_mask(np.zeros((20, 40), np.float32), 40, 20)
    with pytest.raises(ValueError, match='single-channel'):
        validate_mask(np.zeros((20, 40, 3), np.uint8), 40, 20)
    with pytest.raises(ValueError, match='numpy array'):
        validate_mask([[0]], 1, 1)
    assert validate_mask(np.zeros((20, 40, 1), np.uint16), 40, 20).shape == (20, 40)


def test_mask_fully_visible_occluded_and_absent():
    """Own pixels >= fill_ref of the box: 1; half covered by another instance: 0.5; absent: 0."""
    m = np.zeros((100, 100), np.uint16)
    m[0:40, 0:20] = 1                     # detection 0: box 0..20 x 0..40, fully painted
    m[50:90, 0:10] = 2                    # detection 1: box 0..20 x 50..90, left half
    m[50:90, 10:20] = 3                   # detection 2 covers the right half of detection 1
    boxes = [[0, 0, 20, 40], [0, 50, 20, 90], [10, 50, 20, 90], [60, 60, 80, 80]]
    vis = visibility_from_mask(m, boxes, [0, 1, 2, 3], 100, 100)
    np.testing.assert_allclose(vis, [1.0, 0.5, 1.0, 0.0], atol=1e-6)


def test_mask_unlabelled_occluder_lowers_visibility():
    """An occluder that is not an instance lowers visibility through the missing own pixels."""
    m = np.zeros((100, 100), np.uint8)
    m[0:100, 0:10] = 1                     # left 10 of a 40-wide box, the rest hidden by a wall
    vis = visibility_from_mask(m, [[0, 0, 40, 100]], None, 100, 100, fill_ref=0.5)
    assert vis[0] == pytest.approx(1000 / (0.5 * 4000))


def test_mask_labels_follow_source_index():
    """Label k marks source detection k-1: dropped detections leave gaps that are respected."""
    m = np.zeros((50, 50), np.uint16)
    m[0:20, 0:10] = 3                      # source detection 2
    vis = visibility_from_mask(m, [[0, 0, 10, 20]], [2], 50, 50)
    assert vis[0] == pytest.approx(1.0)
    assert visibility_from_mask(m, [[0, 0, 10, 20]], [0], 50, 50)[0] == 0.0


def test_mask_box_partly_outside_image_counts_as_less_visible():
    """The whole box is the reference: a box half outside the image is at most half visible."""
    m = np.zeros((50, 50), np.uint8)
    m[0:20, 40:50] = 1
    vis = visibility_from_mask(m, [[40, 0, 60, 20]], [0], 50, 50, fill_ref=1.0)
    assert vis[0] == pytest.approx(0.5)


def test_mask_empty_detections():
    """No detections give an empty result."""
    assert visibility_from_mask(np.zeros((4, 4), np.uint8), np.zeros((0, 4)), None, 4, 4).size == 0


def test_boxes_front_box_occludes_back_box():
    """The box whose bottom is lower is in front: it hides part of the other, not vice versa."""
    boxes = [[0, 0, 10, 100], [5, 0, 15, 110]]     # second is in front, covers half of first
    vis = visibility_from_boxes(boxes)
    np.testing.assert_allclose(vis, [0.5, 1.0], atol=1e-6)


def test_boxes_equal_bottoms_and_disjoint_boxes_are_visible():
    """Equal bottom edges hide nothing; disjoint boxes are fully visible."""
    vis = visibility_from_boxes([[0, 0, 10, 100], [5, 0, 15, 100], [50, 0, 60, 100]])
    np.testing.assert_allclose(vis, [1.0, 1.0, 1.0])


def test_boxes_two_occluders_combine_as_independent():
    """Two occluders each covering half combine as 1 - (1 - 0.5)(1 - 0.5) hidden."""
    vis = visibility_from_boxes([[0, 0, 10, 100], [0, 0, 5, 120], [5, 0, 10, 130]])
    assert vis[0] == pytest.approx(0.25, abs=1e-6)


def test_boxes_chunked_equals_direct_for_thousands():
    """Above one chunk the result equals a direct computation, and stays in [0, 1]."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (2500, 2))
    wh = rng.uniform(5, 60, (2500, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    vis = visibility_from_boxes(boxes)
    assert vis.shape == (2500,) and (vis >= 0).all() and (vis <= 1).all()
    for i in (0, 1500, 2499):
        b = boxes[i]
        iw = np.clip(np.minimum(b[2], boxes[:, 2]) - np.maximum(b[0], boxes[:, 0]), 0, None)
        ih = np.clip(np.minimum(b[3], boxes[:, 3]) - np.maximum(b[1], boxes[:, 1]), 0, None)
        f = iw * ih / ((b[2] - b[0]) * (b[3] - b[1]))
        expect = np.prod(1 - np.where(boxes[:, 3] > b[3], f, 0.0))
        assert vis[i] == pytest.approx(expect, abs=1e-5)


def test_boxes_degenerate_inputs():
    """Empty input, one box, NaN rows: no exception, visibility in [0, 1]."""
    assert visibility_from_boxes(np.zeros((0, 4))).shape == (0,)
    assert visibility_from_boxes([[0, 0, 1, 1]])[0] == 1.0
    vis = visibility_from_boxes([[0, 0, 10, 10], [np.nan, 0, 5, 20]])
    assert np.isfinite(vis).all() and ((vis >= 0) & (vis <= 1)).all()


def _crowd(n, seed, scale=1.0):
    """``n`` person-like boxes on a 1920x1080 image; some share edges and bottoms exactly."""
    rng = np.random.default_rng(seed)
    foot = np.stack([rng.uniform(0, 1900, n), rng.uniform(100, 1080, n)], axis=1)
    h = rng.uniform(40, 200, n)
    boxes = np.stack([foot[:, 0], foot[:, 1] - h, foot[:, 0] + 0.4 * h, foot[:, 1]], axis=1)
    boxes[: n // 4] = np.round(boxes[: n // 4] / 20) * 20      # exact ties: equal bottoms, edges
    return boxes * scale


@pytest.mark.parametrize('n', [96, 150, 400])
def test_boxes_sweep_equals_all_pairs_bit_for_bit(n):
    """From _SWEEP_MIN boxes on the sweep is used; it gives exactly the all-pairs floats."""
    from assoc_logger_ros.tracking.visibility import _SWEEP_MIN, _visibility_dense

    assert n >= _SWEEP_MIN
    for seed, scale in ((0, 1.0), (1, 1.0), (2, 1e5)):
        boxes = _crowd(n, seed, scale)
        area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
        expect = _visibility_dense(boxes, area, np.ones(n, np.float32))
        got = visibility_from_boxes(boxes)
        assert (expect < 1).sum() > n // 10            # the crowd really occludes
        np.testing.assert_array_equal(got, expect)


def test_boxes_small_path_equals_all_pairs_bit_for_bit():
    """Below _SWEEP_MIN the fused path gives exactly the all-pairs floats, overflow included."""
    from assoc_logger_ros.tracking.visibility import _SWEEP_MIN, _visibility_dense

    rng = np.random.default_rng(7)
    cases = [_crowd(n, seed, scale) for n, seed, scale in ((2, 0, 1.0), (40, 1, 1.0),
                                                           (_SWEEP_MIN - 1, 2, 1e5))]
    tied = _crowd(30, 3, 1.0)
    tied[5] = tied[9]                                  # identical boxes, equal bottoms
    tied[7, 2:] = tied[7, :2]                          # zero area
    huge = rng.uniform(0.0, 1e200, (20, 4))
    huge[:, 2:] += huge[:, :2]                         # finite corners, areas overflow to inf
    for boxes in [*cases, tied, huge]:
        n = boxes.shape[0]
        with np.errstate(over='ignore', invalid='ignore'):
            area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
            expect = _visibility_dense(boxes, area, np.ones(n, np.float32))
            got = visibility_from_boxes(boxes)
        assert np.isfinite(got).all()
        np.testing.assert_array_equal(got.view(np.int32), expect.view(np.int32))
