"""The node's mask join does not depend on when its callbacks run (real rclpy, in-process).

"now" for the joiner is each message's receive time, and the join timer first takes every
message already received, so a node that runs late makes the decisions the replay makes from the
bag's receive (log) times. Each test publishes from a peer node in the same executor.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_node import Harness, walk

pytestmark = pytest.mark.ros
T0 = 10**9


def _harness(context, tmp_path, tolerance_s: float) -> Harness:
    return Harness(context, {'log_dir': str(tmp_path / 'logs'), 'seg_enable': True,
                             'embedding_source': 'none', 'mask_tolerance_s': tolerance_s,
                             'diagnostics_period_s': 10.0, 'warn_throttle_s': 0.0})


def _publish_mask(h: Harness, stamp_ns: int, boxes: np.ndarray) -> None:
    from sensor_msgs.msg import Image
    from test_node import render

    from assoc_logger_ros.messages import convert as conv

    h.pub_mask.publish(conv.fill_image(Image(), stamp_ns, render(boxes)[1], 'mono16'))


def test_mask_after_detections_within_tolerance_joins(rclpy_context, tmp_path):
    """A mask published after its detection array, within the tolerance, is joined to it."""
    h = _harness(rclpy_context, tmp_path, 0.5)
    try:
        h.send(T0, walk(0), mask=None, image=None, expect_output=False)
        h.spin_until(lambda: h.node.joiner.waiting == 1)
        assert h.tracks == []
        _publish_mask(h, T0, walk(0))
        h.spin_until(lambda: len(h.tracks) == 1)
        stats = h.node.joiner.stats()
        assert (stats['mask_joined'], stats['mask_misses']) == (1, 0)
    finally:
        h.close()


def test_busy_node_still_joins_mask_received_in_time(rclpy_context, tmp_path):
    """A mask received before the deadline joins even if its callback runs after the deadline.

    The detection array waits for its mask; then a slow callback of the node (a timer that
    sleeps, standing in for a long tracker update) holds the executor past the deadline while
    the mask is received. The join timer, served before subscriptions, must still join it.
    """
    tolerance = 0.5
    h = _harness(rclpy_context, tmp_path, tolerance)
    slow_calls = []

    def slow_callback() -> None:
        if slow_calls:
            return
        slow_calls.append(time.monotonic())
        _publish_mask(h, T0, walk(0))        # received now, well within the tolerance
        time.sleep(tolerance + 0.4)          # ... but its callback cannot run until later

    try:
        h.send(T0, walk(0), mask=None, image=None, expect_output=False)
        h.spin_until(lambda: h.node.joiner.waiting == 1)
        h.node.create_timer(0.001, slow_callback)
        h.spin_until(lambda: len(h.tracks) == 1)
        assert slow_calls
        stats = h.node.joiner.stats()
        assert (stats['mask_joined'], stats['mask_misses']) == (1, 0)
    finally:
        h.close()


def test_missing_mask_released_after_tolerance_counts_miss(rclpy_context, tmp_path):
    """Without a mask the detection array is tracked once the tolerance has passed, not before.

    The miss is counted, the frame is tracked (tracks published, sample written) and a mask
    that shows up later does not join anything.
    """
    tolerance = 0.3
    h = _harness(rclpy_context, tmp_path, tolerance)
    try:
        t_pub = time.time_ns()
        h.send(T0, walk(0), mask=None, image=None, expect_output=False)
        h.spin_until(lambda: len(h.tracks) == 1)
        released_after = time.time_ns() - t_pub
        assert released_after >= tolerance * 1e9
        _publish_mask(h, T0, walk(0))
        h.send(T0 + 33_333_333, walk(1), mask=None, image=None, expect_output=False)
        h.spin_until(lambda: len(h.tracks) == 2)
        stats = h.node.joiner.stats()
        assert stats['mask_joined'] == 0 and stats['mask_misses'] == 2
        h.node.close()
        assert h.node.pipeline.stats()['frames'] == 2
    finally:
        h.close()
