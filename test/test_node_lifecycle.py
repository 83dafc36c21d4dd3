"""The managed node (ros/lifecycle_node.py) driven through its transitions in-process.

The real ``ros2 lifecycle set/get`` round trip is in test_ros_tools.py (needs the real tools);
here the same transitions are triggered on the node object, with a peer publishing detections
in the same executor, so the behaviour of each state is checked without the CLI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros


class LifecycleHarness:
    """TrackerLifecycleNode + a peer (detections out, tracks in) in one executor."""

    def __init__(self, context, params: dict) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile
        from vision_msgs.msg import Detection2DArray

        from assoc_logger_ros.ros.lifecycle_node import TrackerLifecycleNode

        ns = f'/assoc_lc_{os.getpid()}_{time.monotonic_ns() % 10**6}'
        self.node = TrackerLifecycleNode(
            context=context, namespace=ns,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.peer = rclpy.create_node('peer', namespace=ns, context=context)
        self.pub = self.peer.create_publisher(Detection2DArray, 'detections',
                                              QoSProfile(depth=50))
        self.tracks: list = []
        self.peer.create_subscription(Detection2DArray, 'tracks', self.tracks.append,
                                      QoSProfile(depth=50))
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)

    def spin_until(self, pred, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < end, 'timed out'
            self.executor.spin_once(timeout_sec=0.02)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def publish(self, k: int) -> None:
        from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

        from assoc_logger_ros.messages import convert as conv

        x1 = 10.0 + 3.0 * k + 40.0 * np.arange(3)
        boxes = np.stack([x1, np.full(3, 10.0), x1 + 30.0, np.full(3, 55.0)], axis=1)
        self.pub.publish(conv.fill_detection_array(
            Detection2DArray(), Detection2D, ObjectHypothesisWithPose, 10**9 + k * 33_333_333,
            boxes, np.full(3, 0.9), ['person'] * 3))

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.executor.remove_node(self.peer)
        self.node.destroy_node()
        self.peer.destroy_node()
        self.executor.shutdown()


def _records(log_dir: Path) -> list[dict]:
    path = log_dir / 'manifest.jsonl'
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_transitions_configure_activate_deactivate_cleanup(rclpy_context, tmp_path):
    """Unconfigured: nothing; active: tracks; deactivate: samples flushed; cleanup: closed."""
    from rclpy.lifecycle import TransitionCallbackReturn

    log_dir = tmp_path / 'logs'
    h = LifecycleHarness(rclpy_context, {'log_dir': str(log_dir), 'log_sync_period_s': 100.0})
    try:
        assert not h.node.has_parameter('log_dir')  # declared at configure
        assert h.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert h.node.get_parameter('log_dir').value == str(log_dir)
        assert h.pub.get_subscription_count() == 0  # inactive: no subscriptions yet
        assert h.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        h.spin_until(lambda: h.pub.get_subscription_count() > 0)
        h.spin_until(lambda: h.node._pub.get_subscription_count() > 0)
        for k in range(6):
            h.publish(k)
            h.spin_until(lambda k=k: len(h.tracks) == k + 1)
        assert h.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert len(_records(log_dir)) == 5  # flushed although the sync period is 100 s
        h.spin_until(lambda: h.pub.get_subscription_count() == 0)
        h.publish(6)
        h.spin_for(0.3)
        assert h.node.frames_in == 6 and len(h.tracks) == 6  # inactive: not taken
        assert h.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        h.spin_until(lambda: h.pub.get_subscription_count() > 0)
        h.publish(7)
        h.spin_until(lambda: len(h.tracks) == 7)
        assert h.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert h.node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert h.node.pipeline is None
        assert len(_records(log_dir)) == 6
        assert h.node.trigger_configure() == TransitionCallbackReturn.SUCCESS  # again
        assert h.node.pipeline is not None and h.node.pipeline.writer is not None
        assert h.node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS
        assert h.node.pipeline is None
    finally:
        h.close()


def test_invalid_parameter_fails_configure_and_stays_unconfigured(rclpy_context, tmp_path):
    """A value the schema rejects: configure FAILURE with the message; the node survives."""
    from rclpy.lifecycle import TransitionCallbackReturn

    h = LifecycleHarness(rclpy_context, {'confidence_threshold': 5.0})
    try:
        assert h.node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert h.node.pipeline is None
        state = h.node._state_machine.current_state
        assert state[1] == 'unconfigured'
    finally:
        h.close()
