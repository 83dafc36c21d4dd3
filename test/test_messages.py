"""Message conversion without ROS: hand-built objects shaped like vision_msgs / sensor_msgs."""

from __future__ import annotations

from types import SimpleNamespace as Ns

import numpy as np
import pytest

from assoc_logger_ros.messages import convert as m
from assoc_logger_ros.recording.synthetic import outputs_snapshot


def _det(cx, cy, w, h, hyps=(('person', 0.9),), det_id=''):
    results = [Ns(hypothesis=Ns(class_id=c, score=s), pose=None) for c, s in hyps]
    return Ns(header=Ns(stamp=Ns(sec=0, nanosec=0), frame_id='cam'), results=results,
              bbox=Ns(center=Ns(position=Ns(x=cx, y=cy), theta=0.0), size_x=w, size_y=h),
              id=det_id)


def _array(dets, sec=12, nanosec=500):
    return Ns(header=Ns(stamp=Ns(sec=sec, nanosec=nanosec), frame_id='cam'), detections=dets)


def _image(arr, encoding, *, bigendian=False, pad=0):
    arr = np.ascontiguousarray(arr)
    if bigendian:
        arr = arr.astype(arr.dtype.newbyteorder('>'))
    h, w = arr.shape[:2]
    row = arr.reshape(h, -1).view(np.uint8)
    row = np.concatenate([row, np.zeros((h, pad), np.uint8)], axis=1)
    return Ns(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian),
              step=row.shape[1], data=row.tobytes())


def test_center_size_becomes_xyxy_and_stamp_ns():
    """Box center/size converts to corners; the header stamp becomes integer nanoseconds."""
    frame = m.detections_to_frame(_array([_det(50, 40, 20, 10)]), registry=m.ClassRegistry(),
                                  width=640, height=480)
    np.testing.assert_allclose(frame.boxes, [[40, 35, 60, 45]])
    assert frame.stamp_ns == 12_000_000_500
    assert (frame.width, frame.height) == (640, 480)


def test_best_hypothesis_gives_score_and_class():
    """Score and class come from the highest-scoring hypothesis."""
    det = _det(10, 10, 4, 4, hyps=(('car', 0.3), ('7', 0.8), ('bus', 0.5)))
    frame = m.detections_to_frame(_array([det]), registry=m.ClassRegistry())
    assert frame.scores.tolist() == [0.8]
    assert frame.class_ids.tolist() == [7]
    assert frame.class_names == ('7',)


def test_vision_msgs_3_layout_is_accepted():
    """Older vision_msgs (center without position, hypotheses flat with id) still converts."""
    det = Ns(results=[Ns(id='2', score=0.7)],
             bbox=Ns(center=Ns(x=5.0, y=5.0, theta=0.0), size_x=2.0, size_y=2.0))
    frame = m.detections_to_frame(_array([det]), registry=m.ClassRegistry())
    np.testing.assert_allclose(frame.boxes, [[4, 4, 6, 6]])
    assert frame.class_ids.tolist() == [2]


def test_class_registry_is_order_independent():
    """Names map to the same id whatever order they are first seen in; numbers pass through."""
    a, b = m.ClassRegistry(), m.ClassRegistry()
    ids_a = [a.id_of(x) for x in ('person', 'car', '3', '')]
    ids_b = [b.id_of(x) for x in ('', '3', 'car', 'person')][::-1]
    assert ids_a == ids_b
    assert ids_a[2:] == [3, 0]
    assert ids_a[0] != ids_a[1] and min(ids_a[:2]) >= m.NAMED_CLASS_BASE
    assert m.ClassRegistry({'person': 1}).id_of('person') == 1


def test_nan_and_empty_boxes_are_dropped_with_warning():
    """NaN and zero-size boxes are removed by make_frame and reported; source rows kept."""
    dets = [_det(float('nan'), 1, 2, 2), _det(10, 10, 0, 5), _det(20, 20, 4, 4)]
    frame = m.detections_to_frame(_array(dets), registry=m.ClassRegistry())
    assert len(frame) == 1
    assert frame.source_index.tolist() == [2]
    assert len(frame.warnings) == 2


def test_empty_array_gives_empty_frame():
    """A message with no detections is a valid empty frame."""
    frame = m.detections_to_frame(_array([]), registry=m.ClassRegistry())
    assert len(frame) == 0 and frame.boxes.shape == (0, 4)


def test_detection_without_hypothesis_scores_one():
    """A detection with no results is kept with score 1 and class 0."""
    det = _det(10, 10, 4, 4, hyps=())
    frame = m.detections_to_frame(_array([det]), registry=m.ClassRegistry())
    assert frame.scores.tolist() == [1.0] and frame.class_ids.tolist() == [0]


@pytest.mark.parametrize('encoding,dtype', [('mono8', np.uint8), ('mono16', np.uint16),
                                            ('16UC1', np.uint16), ('32SC1', np.int32)])
@pytest.mark.parametrize('bigendian', [False, True])
@pytest.mark.parametrize('pad', [0, 3])
def test_label_image_round_trips(encoding, dtype, bigendian, pad):
    """Every accepted mask encoding decodes to the original labels, padding and byte order too."""
    labels = (np.arange(5 * 7).reshape(5, 7) % 250).astype(dtype)
    got = m.decode_label_image(_image(labels, encoding, bigendian=bigendian, pad=pad),
                               use_cv_bridge=False)
    np.testing.assert_array_equal(got, labels)
    assert got.dtype.isnative


def test_label_image_accepts_numpy_and_array_data():
    """Data given as a numpy array (rosbags) or array.array (rclpy) decodes the same."""
    import array
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    msg = _image(labels, 'mono8')
    for data in (np.frombuffer(msg.data, np.uint8), array.array('B', msg.data)):
        msg.data = data
        np.testing.assert_array_equal(m.decode_label_image(msg, use_cv_bridge=False), labels)


def test_unknown_mask_encoding_is_a_clear_error():
    """An unsupported encoding raises ValueError naming it and the accepted ones."""
    msg = _image(np.zeros((2, 2), np.float32), '32FC1')
    with pytest.raises(ValueError, match="'32FC1'.*mono16"):
        m.decode_label_image(msg)


def test_short_mask_data_is_a_clear_error():
    """Data shorter than height x step raises ValueError instead of reading garbage."""
    msg = _image(np.zeros((4, 4), np.uint8), 'mono8')
    msg.data = msg.data[:-3]
    with pytest.raises(ValueError, match='data bytes'):
        m.decode_label_image(msg)


def test_color_image_bgr_and_mono_become_rgb():
    """bgr8 is flipped to RGB and mono8 replicated to three channels."""
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(m.decode_color_image(_image(rgb, 'rgb8')), rgb)
    np.testing.assert_array_equal(m.decode_color_image(_image(rgb[:, :, ::-1], 'bgr8')), rgb)
    mono = m.decode_color_image(_image(rgb[:, :, 0], 'mono8'))
    assert mono.shape == (4, 5, 3) and (mono[:, :, 2] == rgb[:, :, 0]).all()


def test_frame_size_prefers_mask_then_configured_then_fallback():
    """Frame size comes from the mask, else the configured size, else a fixed fallback."""
    boxes = np.array([[0, 0, 99.5, 50.0]])
    assert m.frame_size(boxes, mask=np.zeros((20, 30))) == (30, 20)
    assert m.frame_size(boxes, width=640, height=480) == (640, 480)
    assert m.frame_size(boxes) == m.FALLBACK_SIZE      # never the box extent
    assert m.frame_size_source()[2] == 'fallback'




def test_tracks_message_carries_ids_and_source_boxes():
    """Each output detection is the source detection's box/hypotheses with id = track ID."""
    msg = _array([_det(1, 1, 0, 0), _det(10, 10, 4, 4, det_id='x'),
                  _det(30, 30, 6, 6, hyps=(('car', 0.4),))])
    snap = outputs_snapshot(out_ids=[7, 3], out_det=[1, 0], src=[1, 2])  # D rows -> message rows
    factory = m.TrackMessageFactory(lambda: Ns(), lambda: Ns())
    out = m.snapshot_to_tracks(snap, msg, factory)
    assert out.header is msg.header
    assert [d.id for d in out.detections] == ['7', '3']
    assert out.detections[0].bbox is msg.detections[2].bbox
    assert out.detections[0].results[0].hypothesis.class_id == 'car'
    assert out.detections[1].bbox is msg.detections[1].bbox


def test_label_frame_matches_gt_by_iou_after_dropped_detections():
    """Ground truth labels follow the kept detections; IoU < 0.5 and bad ids give -1."""
    dets = _array([_det(10, 10, 10, 10), _det(float('nan'), 5, 4, 4), _det(50, 50, 10, 10),
                   _det(90, 90, 10, 10)])
    gt = _array([_det(10.5, 10, 10, 10, det_id='7'), _det(50, 50, 10, 10, det_id='x'),
                 _det(95, 95, 10, 10, det_id='9')])
    boxes, ids = m.gt_labels(gt)
    assert ids.tolist() == [7, -1, 9]
    frame = m.detections_to_frame(dets, registry=m.ClassRegistry())
    assert frame.source_index.tolist() == [0, 2, 3]          # the NaN box was dropped
    labelled = m.label_frame(frame, m.detection_arrays(dets)[0], boxes, ids)
    # det 0 <-> gt 7 (IoU 0.9); det 2 <-> the gt with a non-numeric id; det 3 IoU 0.14 < 0.5
    assert labelled.gt_ids.tolist() == [7, -1, -1]
