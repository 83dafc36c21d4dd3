"""The built-in colour descriptor and the ReID plugin hook (assoc_logger_ros.appearance)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from assoc_logger_ros import appearance as ap


def _scene():
    img = np.zeros((100, 200, 3), np.uint8)
    img[10:50, 10:40] = (200, 30, 30)      # person A: red top
    img[50:90, 10:40] = (30, 30, 200)      # blue bottom
    img[10:50, 110:140] = (30, 200, 30)    # person B: green top
    img[50:90, 110:140] = (30, 30, 200)
    return img


def test_same_clothes_near_different_far():
    """Two crops of the same colours are closer (cosine) than crops of different colours."""
    img = _scene()
    boxes = np.array([[10, 10, 40, 90], [12, 12, 38, 88], [110, 10, 140, 90]], float)
    emb, valid = ap.color_histogram(img, boxes)
    assert emb.shape == (3, ap.COLOR_HIST_DIM) and valid.all()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert emb[0] @ emb[1] > 0.99
    assert emb[0] @ emb[2] < 0.9


def test_upper_lower_halves_are_distinguished():
    """Swapping top and bottom colours changes the descriptor."""
    img = _scene()
    flipped = img[::-1].copy()
    box = np.array([[10, 10, 40, 90]], float)
    a, _ = ap.color_histogram(img, box)
    b, _ = ap.color_histogram(flipped, box)
    assert float(a[0] @ b[0]) < 0.5


def test_mask_excludes_background():
    """With a mask only the detection's own pixels count."""
    img = _scene()
    box = np.array([[0, 0, 60, 100]], float)  # loose box: lots of black background
    mask = np.zeros(img.shape[:2], np.int32)
    mask[10:90, 10:40] = 1
    tight, _ = ap.color_histogram(img, np.array([[10, 10, 40, 90]], float))
    loose, _ = ap.color_histogram(img, box)
    masked, _ = ap.color_histogram(img, box, mask)
    assert masked[0] @ tight[0] > loose[0] @ tight[0]
    assert masked[0] @ tight[0] > 0.95


def test_invalid_boxes_are_zero_and_flagged():
    """NaN and out-of-image boxes give zero rows flagged invalid; no image gives all invalid."""
    img = _scene()
    boxes = np.array([[np.nan, 0, 5, 5], [300, 300, 400, 400], [10, 10, 40, 90]], float)
    emb, valid = ap.color_histogram(img, boxes)
    assert valid.tolist() == [False, False, True]
    assert not emb[:2].any()
    emb, valid = ap.color_histogram(None, boxes)
    assert not valid.any()


class _Model:
    def embed(self, image, boxes, mask):
        return np.column_stack([boxes[:, 0] + 1.0, np.ones(len(boxes))])


def test_plugin_loaded_by_module_callable(monkeypatch):
    """'module:callable' is imported and called; the descriptor wraps its embed()."""
    mod = types.ModuleType('fake_reid_plugin')
    mod.load = _Model
    monkeypatch.setitem(sys.modules, 'fake_reid_plugin', mod)
    desc = ap.make_descriptor('plugin', 'fake_reid_plugin:load')
    emb, valid = desc(np.zeros((10, 10, 3), np.uint8),
                      np.array([[1, 1, 3, 3], [np.nan, 0, 1, 1]], float))
    assert valid.tolist() == [True, False]
    assert emb.tolist() == [[2.0, 1.0], [0.0, 0.0]]
    assert isinstance(desc.model, ap.EmbeddingModel)


def test_plugin_spec_errors_are_clear():
    """A malformed or missing plugin gives a ValueError naming the spec."""
    with pytest.raises(ValueError, match='module:callable'):
        ap.load_embedding_model('no_colon')
    with pytest.raises(ValueError, match='cannot be loaded'):
        ap.load_embedding_model('no_such_module_xyz:load')
    with pytest.raises(ValueError, match='embedding_plugin is empty'):
        ap.make_descriptor('plugin', '')


def test_plugin_wrong_shape_is_an_error():
    """A plugin returning the wrong number of rows raises instead of misaligning."""
    class Bad:
        def embed(self, image, boxes, mask):
            return np.zeros((len(boxes) + 1, 4))

    with pytest.raises(ValueError, match='shape'):
        ap.PluginDescriptor(Bad())(np.zeros((4, 4, 3), np.uint8), np.array([[0, 0, 2, 2.0]]))
