"""The replay's numpy CDR decoder reads Detection2DArray bytes exactly as rosbags does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from assoc_logger_ros.bag import bagio
from assoc_logger_ros.messages.cdr import CdrError, decode_detection_array, detection_arrays_of
from assoc_logger_ros.messages.convert import detection_arrays

_text = st.text(alphabet=st.sampled_from('ab0123é_'), max_size=6)


def _message(dets: list[dict], frame_id: str = 'cam', stamp: int = 1_234_567_890_123):
    """A Detection2DArray object with per-detection strings and hypothesis lists."""
    boxes = np.array([[d['x'], d['y'], d['x'] + d['w'], d['y'] + d['h']] for d in dets],
                     np.float64).reshape(-1, 4)
    msg = bagio.detection_array(stamp, boxes, None, None, [d['id'] for d in dets],
                                frame_id=frame_id)
    for det, spec in zip(msg.detections, dets):
        template = det.results[0]
        det.header = type(det.header)(stamp=det.header.stamp, frame_id=spec['frame'])
        det.results = [type(template)(
            hypothesis=type(template.hypothesis)(class_id=c, score=s), pose=template.pose)
            for c, s in spec['hyps']]
    return msg


def _assert_same(raw: bytes) -> None:
    ref = bagio.deserialize(raw, bagio.DETECTION_ARRAY)
    got = decode_detection_array(raw)
    assert got.stamp_ns == bagio.stamp_ns(ref)
    assert got.frame_id == ref.header.frame_id
    assert len(got) == len(ref.detections)
    want_bbox = np.array([[d.bbox.center.position.x, d.bbox.center.position.y,
                           d.bbox.center.theta, d.bbox.size_x, d.bbox.size_y]
                          for d in ref.detections], np.float64).reshape(-1, 5)
    np.testing.assert_array_equal(got.bbox, want_bbox)
    assert got.ids.tolist() == [d.id for d in ref.detections]
    assert got.result_counts.tolist() == [len(d.results) for d in ref.detections]
    assert got.result_class_ids.tolist() == [r.hypothesis.class_id for d in ref.detections
                                             for r in d.results]
    np.testing.assert_array_equal(got.result_scores, [r.hypothesis.score
                                                      for d in ref.detections
                                                      for r in d.results])
    # and the tracker input built from it equals the node's message path
    b1, s1, c1 = detection_arrays_of(got)
    b2, s2, c2 = detection_arrays(ref)
    np.testing.assert_array_equal(b1, b2)
    np.testing.assert_array_equal(s1, s2)
    assert c1 == c2


_det = st.fixed_dictionaries({
    'x': st.floats(-1e4, 1e4), 'y': st.floats(-1e4, 1e4), 'w': st.floats(0, 500),
    'h': st.floats(0, 500), 'id': _text, 'frame': _text,
    'hyps': st.lists(st.tuples(_text, st.floats(allow_nan=True, allow_infinity=True)),
                     max_size=3)})


@settings(max_examples=150, deadline=None)
@given(st.lists(_det, max_size=12), _text)
def test_random_layouts_decode_like_rosbags(dets, frame_id):
    """Any mix of string lengths and hypothesis counts decodes to rosbags' values."""
    _assert_same(bagio.serialize(_message(dets, frame_id)))


@pytest.mark.parametrize('frame_id', ['', 'c', 'cam', 'camera_1'])
@pytest.mark.parametrize('class_id', ['', '0', 'person'])
@pytest.mark.parametrize('det_id', ['', '7', '12345'])
def test_uniform_messages_take_the_vectorised_path_correctly(frame_id, class_id, det_id):
    """Detector-style messages (same layout per detection) decode like rosbags, all paddings."""
    rng = np.random.default_rng(len(frame_id) * 100 + len(class_id) * 10 + len(det_id))
    xy = rng.uniform(0, 600, (57, 2))
    boxes = np.hstack([xy, xy + rng.uniform(1, 80, (57, 2))])
    msg = bagio.detection_array(99, boxes, rng.uniform(0, 1, 57), [class_id] * 57,
                                [det_id] * 57, frame_id=frame_id)
    _assert_same(bagio.serialize(msg))


def test_empty_array_decodes():
    """A message without detections gives empty arrays and its stamp."""
    raw = bagio.serialize(bagio.detection_array(5, np.zeros((0, 4))))
    got = decode_detection_array(raw)
    assert len(got) == 0 and got.stamp_ns == 5 and got.bbox.shape == (0, 5)


@pytest.mark.parametrize('cut', [3, 20, 100, -9])
def test_truncated_bytes_raise_cdr_error(cut):
    """Bytes cut short are reported as CdrError, never decoded into garbage."""
    rng = np.random.default_rng(0)
    boxes = np.hstack([rng.uniform(0, 9, (4, 2)), rng.uniform(10, 20, (4, 2))])
    raw = bagio.serialize(bagio.detection_array(1, boxes))
    with pytest.raises(CdrError):
        decode_detection_array(raw[:cut])


def test_big_endian_payload_is_refused():
    """Only little-endian CDR (what ROS 2 writes on every supported platform) is accepted."""
    raw = bytearray(bagio.serialize(bagio.detection_array(1, np.zeros((0, 4)))))
    raw[1] = 0  # encapsulation 0x0000 = CDR big endian
    with pytest.raises(CdrError, match='little-endian'):
        decode_detection_array(bytes(raw))


@pytest.mark.ros
def test_rclpy_bytes_decode_like_rclpy_messages():
    """Bytes serialized by a ROS build (rclpy) decode to the values rclpy put in."""
    from rclpy.serialization import serialize_message
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    msg = Detection2DArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 3, 500
    for i in range(5):
        det = Detection2D()
        det.id = str(i * 11)
        det.bbox.center.position.x, det.bbox.center.position.y = 10.0 * i, 5.0
        det.bbox.size_x, det.bbox.size_y = 4.0, 8.0
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = 'person', 0.5 + i / 10
        det.results.append(hyp)
        msg.detections.append(det)
    raw = serialize_message(msg)
    got = decode_detection_array(raw)
    assert got.stamp_ns == 3_000_000_500
    assert got.ids.tolist() == ['0', '11', '22', '33', '44']
    np.testing.assert_array_equal(got.result_scores, [0.5, 0.6, 0.7, 0.8, 0.9])
    # and rosbags (the typestore the bags embed) reads the same bytes identically
    _assert_same(bytes(raw))
