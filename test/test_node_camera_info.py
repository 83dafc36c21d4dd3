"""The node's image size: the setting, else the latest sensor_msgs/CameraInfo, else fallback.

Real rclpy, in-process, a peer node publishing (as in test_node.py). The size normalises the
features and is recorded in every sample's metadata with its ``size_source``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_node import Harness, walk

pytestmark = pytest.mark.ros
T0 = 10**9


def _harness(context, tmp_path: Path, **extra) -> Harness:
    return Harness(context, {'log_dir': str(tmp_path / 'logs'), 'seg_enable': False,
                             'embedding_source': 'none', 'diagnostics_period_s': 10.0,
                             'warn_throttle_s': 0.0, **extra})


def _sizes(log_dir: Path) -> set[tuple[int, int, str]]:
    out = set()
    for path in sorted(log_dir.glob('sample_*.npz')):
        with np.load(path) as data:
            meta = json.loads(str(data['metadata']))
        out.add((meta['width'], meta['height'], meta.get('size_source', '')))
    return out


def _publish_info(h: Harness, width: int, height: int, topic: str = 'camera_info') -> None:
    from sensor_msgs.msg import CameraInfo

    pub = h.peer.create_publisher(CameraInfo, topic, 10)
    h.spin_until(lambda: pub.get_subscription_count() > 0)
    pub.publish(CameraInfo(width=width, height=height))


def test_size_comes_from_camera_info(rclpy_context, tmp_path):
    """No mask, image or setting: the samples carry CameraInfo's size, source camera_info."""
    h = _harness(rclpy_context, tmp_path)
    try:
        _publish_info(h, 0, 0)                       # a bad one is warned about, survived
        h.spin_until(lambda: h.node.bad_messages == 1)
        _publish_info(h, 640, 480)
        h.spin_until(lambda: getattr(h.node, '_info_size', None) == (640, 480))
        for k in range(6):
            h.send(T0 + k * 33_333_333, walk(k), mask=None, image=None)
        h.node.close()
        assert _sizes(tmp_path / 'logs') == {(640, 480, 'camera_info')}
    finally:
        h.close()


def test_setting_wins_and_fallback_is_recorded(rclpy_context, tmp_path):
    """image_width/height set: CameraInfo is not read; without any size: the fallback."""
    from assoc_logger_ros.messages.convert import FALLBACK_SIZE

    h = _harness(rclpy_context, tmp_path / 'set', image_width=800, image_height=600)
    try:
        assert h.node.count_subscribers(h.node.get_namespace() + '/camera_info') == 0
        for k in range(4):
            h.send(T0 + k * 33_333_333, walk(k), mask=None, image=None)
        h.node.close()
        assert _sizes(tmp_path / 'set' / 'logs') == {(800, 600, 'setting')}
    finally:
        h.close()
    h = _harness(rclpy_context, tmp_path / 'none', camera_info_topic='')
    try:
        for k in range(4):
            h.send(T0 + k * 33_333_333, walk(k), mask=None, image=None)
        h.node.close()
        assert _sizes(tmp_path / 'none' / 'logs') == {(*FALLBACK_SIZE, 'fallback')}
    finally:
        h.close()
