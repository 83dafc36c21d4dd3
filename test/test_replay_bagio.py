"""Bag I/O without ROS: vision_msgs types, writing and reading mcap and sqlite3 bags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assoc_logger_ros.bag import bagio
from assoc_logger_ros.bag.vision_msgs_defs import DEFINITIONS, strip_msg

MSG_DIR = Path(__file__).resolve().parents[1] / 'third_party' / 'vision_msgs' / 'msg'


@pytest.mark.parametrize('name', sorted(DEFINITIONS))
def test_embedded_definitions_equal_the_msg_files(name):
    """The embedded definitions are the third_party .msg files without comments."""
    path = MSG_DIR / f'{name.rsplit("/", 1)[1]}.msg'
    if not path.is_file():
        pytest.skip(f'{path} not in this checkout')
    assert DEFINITIONS[name] == strip_msg(path.read_text(encoding='utf-8'))


def test_strip_msg_drops_comments_and_blank_lines():
    """Comments, blank lines and repeated spaces do not count (they do not change the hash)."""
    assert strip_msg('# doc\n\nfloat64  x   # the x\n  float64 y\n') == 'float64 x\nfloat64 y\n'


@pytest.mark.ros
def test_type_hash_equals_the_ros_build():
    """Rosbags' hash of Detection2DArray equals the one rosidl generated for vision_msgs."""
    from ament_index_python.packages import get_package_share_directory

    path = Path(get_package_share_directory('vision_msgs')) / 'msg' / 'Detection2DArray.json'
    hashes = {h['type_name']: h['hash_string']
              for h in json.loads(path.read_text())['type_hashes']}
    assert hashes[bagio.DETECTION_ARRAY] == bagio.detection_array_hash()


@pytest.mark.parametrize('storage', bagio.STORAGES)
def test_round_trip_of_every_topic_kind(tmp_path, storage):
    """Detections, ground truth, a mask and an image read back with their values and times."""
    boxes = np.array([[10.0, 20.0, 30.0, 60.0], [100.5, 0.0, 140.0, 80.25]])
    mask = np.zeros((48, 64), np.uint16)
    mask[20:60, 10:30] = 1
    rgb = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    path = tmp_path / 'bag'
    with bagio.BagWriter(path, storage=storage) as bag:
        bag.write_gt(1_000, boxes, [7, 12])
        bag.write_detections(1_000, boxes, [0.9, 0.4], ['person', '3'])
        bag.write_image(bagio.TOPIC_MASKS, 1_000, mask, 'mono16')
        bag.write_image(bagio.TOPIC_IMAGE, 1_000, rgb, 'rgb8')
    got = {topic: (t, msg) for topic, t, msg in bagio.read_messages(path)}
    assert set(got) == {'/gt', '/detections', '/masks', '/image'}
    assert all(t == 1_000 for t, _ in got.values())
    det = got['/detections'][1]
    assert [d.results[0].hypothesis.class_id for d in det.detections] == ['person', '3']
    assert det.detections[1].bbox.center.position.x == pytest.approx(120.25)
    gt_boxes, gt_ids = bagio.gt_arrays(got['/gt'][1])
    np.testing.assert_allclose(gt_boxes, boxes)
    assert gt_ids.tolist() == [7, 12]
    img = got['/masks'][1]
    assert (img.height, img.width, img.encoding, img.step) == (48, 64, 'mono16', 128)
    np.testing.assert_array_equal(img.data.view('<u2').reshape(48, 64), mask)


def test_writer_refuses_to_overwrite(tmp_path):
    """An existing bag is never overwritten."""
    path = tmp_path / 'bag'
    path.mkdir()
    with pytest.raises(Exception, match='exists'):
        bagio.BagWriter(path)


def test_image_rejects_mismatched_encoding():
    """An array that does not fit the encoding is refused with a message naming both."""
    with pytest.raises(ValueError, match='rgb8'):
        bagio.image(0, np.zeros((4, 4), np.uint8), 'rgb8')


def test_topic_names_are_made_absolute():
    """Node-relative topic names map to the absolute names stored in bags."""
    assert bagio.topic_name('detections') == '/detections'
    assert bagio.topic_name('/ns/masks') == '/ns/masks'
