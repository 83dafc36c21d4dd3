"""launch_testing integration test of ``launch/collect.launch.py`` (how ROS packages test launch).

Run by ``launch_test test/launch/collect_launch_testing.py`` (launch_testing's own runner, as
``add_launch_test`` does in a colcon build); ``test/test_ros_tools.py`` runs it that way. The
file name keeps pytest from collecting it: launch_testing's pytest plugin predates pytest 9
(pytest.ini disables it). The launch file is included with ``lifecycle:=true autostart:=true``,
so this also covers the launch's own configure/activate sequence; a peer in the test publishes
detections and waits for the tracks; after the launch shuts down, the node must have exited 0
and flushed a sample per tracked frame (after the first).
"""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import tempfile
import time
import unittest

from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
import launch_testing
import launch_testing.actions
import launch_testing.asserts
import numpy as np
import pytest

import launch

LAUNCH_FILE = Path(__file__).resolve().parents[2] / 'launch' / 'collect.launch.py'
NS = f'lt_{os.getpid()}'
FRAMES = 8


@pytest.mark.launch_test
def generate_test_description():
    """The launch file with the managed node, configured and activated by the launch itself."""
    log_dir = tempfile.mkdtemp(prefix='assoc-launch-test-')
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={'namespace': NS, 'log_dir': f'{log_dir}/logs', 'lifecycle': 'true',
                          'autostart': 'true', 'log_sync_period_s': '100.0'}.items())
    return (launch.LaunchDescription([include, launch_testing.actions.ReadyToTest()]),
            {'log_dir': Path(log_dir)})


class TestTracking(unittest.TestCase):
    """While the launch runs: the node becomes active and answers detections with tracks."""

    def test_active_node_tracks_detections(self, proc_output):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile
        from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

        from assoc_logger_ros.messages import convert as conv

        proc_output.assertWaitFor('active: tracking', timeout=90)
        context = Context()
        rclpy.init(context=context)
        node = rclpy.create_node('launch_test_peer', namespace=NS, context=context)
        tracks: list = []
        pub = node.create_publisher(Detection2DArray, 'detections', QoSProfile(depth=50))
        node.create_subscription(Detection2DArray, 'tracks', tracks.append,
                                 QoSProfile(depth=50))
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)

        def spin_until(pred, what):
            end = time.monotonic() + 60
            while not pred():
                self.assertLess(time.monotonic(), end, f'timed out waiting for {what}')
                executor.spin_once(timeout_sec=0.05)

        try:
            spin_until(lambda: pub.get_subscription_count() > 0, 'the node to subscribe')
            for k in range(FRAMES):
                x1 = 10.0 + 3.0 * k + 40.0 * np.arange(3)
                boxes = np.stack([x1, np.full(3, 10.0), x1 + 30.0, np.full(3, 55.0)], axis=1)
                pub.publish(conv.fill_detection_array(
                    Detection2DArray(), Detection2D, ObjectHypothesisWithPose,
                    10**9 + k * 33_333_333, boxes, np.full(3, 0.9), ['person'] * 3))
                spin_until(lambda k=k: len(tracks) > k, 'tracks')
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.shutdown(context=context)
        self.assertEqual(len(tracks), FRAMES)
        self.assertEqual({d.id for d in tracks[-1].detections}, {'1', '2', '3'})


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """After the launch shut down: clean exit, every sample on disk."""

    def test_exit_code_and_flush(self, proc_info, proc_output, log_dir):
        try:
            launch_testing.asserts.assertExitCodes(proc_info)
            text = ''.join(line.text.decode(errors='replace') for line in proc_output)
            self.assertIn(f'closed: {FRAMES} frames', text)
            manifest = log_dir / 'logs' / 'manifest.jsonl'
            lines = [ln for ln in manifest.read_text().splitlines() if ln.strip()]
            self.assertEqual(len(lines), FRAMES - 1)
        finally:
            shutil.rmtree(log_dir, ignore_errors=True)
