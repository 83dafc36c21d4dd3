"""The node's raw-CDR fast path agrees with rclpy's own (de)serialization."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_logger_ros.recording.synthetic import outputs_snapshot

pytestmark = pytest.mark.ros




def _message(rng, n):
    """A Detection2DArray whose detections differ in layout (string lengths, hypotheses)."""
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    msg = Detection2DArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 7, 123
    msg.header.frame_id = 'cam'
    for i in range(n):
        det = Detection2D()
        det.header.frame_id = 'x' * int(rng.integers(0, 6))
        det.header.stamp.sec = i
        det.id = 'd' * int(rng.integers(0, 5))
        det.bbox.center.position.x = float(rng.uniform(0, 100))
        det.bbox.center.position.y = float(rng.uniform(0, 100))
        det.bbox.center.theta = 0.25
        det.bbox.size_x = float(rng.uniform(1, 9))
        det.bbox.size_y = float(rng.uniform(1, 9))
        for _ in range(int(rng.integers(0, 4))):
            hyp = ObjectHypothesisWithPose()
            hyp.hypothesis.class_id = ['person', 'car', '3', ''][int(rng.integers(0, 4))]
            hyp.hypothesis.score = float(rng.uniform(0, 1))
            hyp.pose.pose.position.x = float(rng.uniform())
            hyp.pose.covariance[5] = float(rng.uniform())
            det.results.append(hyp)
        msg.detections.append(det)
    return msg


@pytest.mark.parametrize('seed', range(5))
def test_parse_matches_attribute_conversion(seed):
    """Boxes, best scores and classes from raw bytes equal those from the decoded message."""
    from rclpy.serialization import serialize_message

    from assoc_logger_ros.messages import convert as m

    msg = _message(np.random.default_rng(seed), 12)
    parsed = m.parse_detection_cdr(serialize_message(msg))
    boxes, scores, classes = m.detection_arrays(msg)
    np.testing.assert_array_equal(parsed.boxes, boxes)
    np.testing.assert_array_equal(parsed.scores, scores)
    assert parsed.classes == classes
    assert parsed.stamp_ns == 7_000_000_123


@pytest.mark.parametrize('seed', range(5))
def test_encoded_tracks_equal_rclpy_serialization(seed):
    """encode_tracks_cdr decodes (rclpy) to exactly snapshot_to_tracks' message, same length.

    Padding bytes are not compared: rclpy's serializer leaves them uninitialised.
    """
    from rclpy.serialization import deserialize_message, serialize_message
    from vision_msgs.msg import Detection2D, Detection2DArray

    from assoc_logger_ros.messages import convert as m

    rng = np.random.default_rng(100 + seed)
    msg = _message(rng, 15)
    raw = serialize_message(msg)
    src = rng.permutation(15)[:10]                       # D rows -> message rows
    out_det = rng.permutation(10)[:7]                    # published tracks -> D rows
    snap = outputs_snapshot(out_ids=rng.integers(1, 10**6, 7), out_det=out_det, src=src)
    expected = m.snapshot_to_tracks(
        snap, msg, m.TrackMessageFactory(Detection2DArray, Detection2D))
    got = m.encode_tracks_cdr(snap, m.parse_detection_cdr(raw))
    assert len(got) == len(serialize_message(expected))
    assert deserialize_message(got, Detection2DArray) == expected
    assert [d.id for d in expected.detections] == [str(t) for t in snap.output_track_ids]


def test_empty_message_round_trips():
    """An empty array parses to zero detections and encodes an empty tracks message."""
    from rclpy.serialization import deserialize_message, serialize_message
    from vision_msgs.msg import Detection2DArray

    from assoc_logger_ros.messages import convert as m

    parsed = m.parse_detection_cdr(serialize_message(Detection2DArray()))
    assert len(parsed) == 0 and parsed.boxes.shape == (0, 4)
    out = m.encode_tracks_cdr(outputs_snapshot([], [], []), parsed)
    assert len(deserialize_message(out, Detection2DArray).detections) == 0


def test_truncated_bytes_are_a_clear_error():
    """Cut-off bytes raise CdrFormatError rather than returning garbage."""
    from rclpy.serialization import serialize_message

    from assoc_logger_ros.messages import convert as m

    raw = serialize_message(_message(np.random.default_rng(0), 3))
    with pytest.raises(m.CdrFormatError):
        m.parse_detection_cdr(raw[:-20])
    with pytest.raises(m.CdrFormatError):
        m.parse_detection_cdr(b'\x01\x00' + raw[2:])
