"""Repeated stop signals are one request; use_sim_time without /clock is reported, not silent."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from conftest import slow_node_script
import numpy as np
import pytest

from assoc_logger_ros.ros.clock_watch import SimClockWatch

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_clock_watch_warns_only_after_grace_and_remembers_the_wait():
    """No warning before detections or within wait_s; then one per check; waited_s after."""
    w = SimClockWatch(wait_s=3.0)
    assert w.check(0.0, detections_seen=False, clock_seen=False) is None
    assert w.state() == 'idle'
    assert w.check(1.0, detections_seen=True, clock_seen=False) is None  # first detection
    assert w.check(3.5, detections_seen=True, clock_seen=False) is None
    assert w.waiting and w.state() == 'waiting'
    text = w.check(4.2, detections_seen=True, clock_seen=False)
    assert text is not None and 'no /clock' in text and 'use_sim_time' in text
    assert w.check(9.0, detections_seen=True, clock_seen=True) is None
    assert not w.waiting and w.state() == 'ok' and w.waited_s == pytest.approx(8.0)
    assert w.check(20.0, detections_seen=True, clock_seen=True) is None


def test_clock_present_from_the_start_never_warns():
    """A clock before the first detection: no warning, no wait recorded."""
    w = SimClockWatch(wait_s=0.0)
    assert w.check(0.0, detections_seen=False, clock_seen=True) is None
    assert w.check(10.0, detections_seen=True, clock_seen=True) is None
    assert w.waited_s == 0.0 and w.state() == 'ok'


@pytest.mark.ros
def test_sim_time_without_clock_warns_and_publishes_warn_diagnostics(rclpy_context, tmp_path):
    """use_sim_time, detections, no /clock: a throttled warning and a WARN diagnostics status.

    Then a /clock arrives: the regular diagnostics (on ROS time) report how long it waited.
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    from assoc_logger_ros.messages import convert as conv
    from assoc_logger_ros.ros.node import TrackerNode

    ns = f'/assoc_clock_{os.getpid()}'
    node = TrackerNode(context=rclpy_context, namespace=ns, parameter_overrides=[
        Parameter('use_sim_time', value=True), Parameter('log_dir', value=''),
        Parameter('diagnostics_period_s', value=0.5), Parameter('warn_throttle_s', value=0.0)])
    node.clock_watch.wait_s = 1.0
    peer = rclpy.create_node('peer', namespace=ns, context=rclpy_context)
    status_name = f'{node.get_fully_qualified_name()}: tracking'
    diags: list = []
    peer.create_subscription(DiagnosticArray, '/diagnostics',
                             lambda m: diags.extend(s for s in m.status
                                                    if s.name == status_name), 10)
    pub = peer.create_publisher(Detection2DArray, 'detections', QoSProfile(depth=10))
    clock_pub = peer.create_publisher(Clock, '/clock', 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    executor.add_node(peer)
    warnings: list[str] = []
    original_warn = node.warn
    node.warn = lambda kind, text: (warnings.append(kind), original_warn(kind, text))

    def spin_until(pred, timeout=20.0):
        end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < end, 'timed out'
            executor.spin_once(timeout_sec=0.05)

    try:
        spin_until(lambda: pub.get_subscription_count() > 0)
        boxes = np.array([[10.0, 10.0, 40.0, 60.0]])
        pub.publish(conv.fill_detection_array(Detection2DArray(), Detection2D,
                                              ObjectHypothesisWithPose, 10**9, boxes,
                                              np.full(1, 0.9), ['person']))
        spin_until(lambda: node.frames_in == 1)
        spin_until(lambda: 'clock' in warnings and diags)
        first = diags[-1]
        assert first.level == DiagnosticStatus.WARN
        assert 'no /clock' in first.message
        values = {kv.key: kv.value for kv in first.values}
        assert values['sim_clock'] == 'waiting'
        seen = len(diags)
        msg = Clock()
        msg.clock.sec = 100
        deadline = time.monotonic() + 20
        while node.get_clock().now().nanoseconds == 0:
            assert time.monotonic() < deadline
            clock_pub.publish(msg)
            executor.spin_once(timeout_sec=0.05)
        spin_until(lambda: node.clock_watch.state() == 'ok')
        for sec in range(101, 140):  # ROS time moves: the regular report runs
            msg.clock.sec = sec
            clock_pub.publish(msg)
            executor.spin_once(timeout_sec=0.05)
            if any('/clock arrived after' in s.message for s in diags[seen:]):
                break
        later = [s for s in diags[seen:] if '/clock arrived after' in s.message]
        assert later, [s.message for s in diags[seen:]]
        values = {kv.key: kv.value for kv in later[0].values}
        assert values['sim_clock'] == 'ok' and float(values['sim_clock_waited_s']) >= 1.0
    finally:
        executor.shutdown()
        node.destroy_node()
        peer.destroy_node()


# The node's tracker update sleeps 0.3 s per frame and says when it starts the first one.
_SLOW_MAIN = slow_node_script(0.3)


@pytest.mark.ros
def test_repeated_sigint_is_one_request_and_the_flush_completes(rclpy_context, tmp_path):
    """SIGINT twice (terminal + launch's forward), then SIGTERM: one orderly stop, all kept.

    The node is in a slowed tracker update with frames queued behind it; the repeats arrive
    within the grace period, so they neither abort the flush nor start a second one.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    from assoc_logger_ros.messages import convert as conv

    ns = f'/assoc_sigint2_{os.getpid()}'
    log_dir = tmp_path / 'logs'
    peer = rclpy.create_node('peer', namespace=ns, context=rclpy_context)
    pub = peer.create_publisher(Detection2DArray, 'detections', QoSProfile(depth=50))
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(peer)
    proc = subprocess.Popen(
        [sys.executable, '-c', _SLOW_MAIN, '--ros-args', '-r', f'__ns:={ns}', '-p',
         f'log_dir:={log_dir}'], cwd=REPO_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 30
        while pub.get_subscription_count() == 0:
            assert time.monotonic() < end, 'node did not subscribe'
            executor.spin_once(timeout_sec=0.05)
        for k in range(6):
            x1 = 10.0 + 3.0 * k + 40.0 * np.arange(3)
            boxes = np.stack([x1, np.full(3, 10.0), x1 + 30.0, np.full(3, 55.0)], axis=1)
            pub.publish(conv.fill_detection_array(
                Detection2DArray(), Detection2D, ObjectHypothesisWithPose,
                10**9 + k * 33_333_333, boxes, np.full(3, 0.9), ['person'] * 3))
        assert proc.stdout.readline().strip() == 'BUSY'
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # launch's forward of the same Ctrl-C
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)  # launch's escalation while the flush runs
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        executor.shutdown()
        peer.destroy_node()
    assert proc.returncode == 0, err
    assert 'Traceback' not in err and 'aborting the flush' not in err, err
    assert err.count('flushing and stopping') == 1
    assert 'closed: 6 frames' in err, err
    assert '2 repeated stop signal(s)' in err, err
    lines = [ln for ln in (log_dir / 'manifest.jsonl').read_text().splitlines() if ln.strip()]
    assert len(lines) == 5 == len(list(log_dir.glob('sample_*.npz')))


def test_sigint_after_the_grace_period_aborts():
    """A deliberate second Ctrl-C (after the grace period) still interrupts a hung flush."""
    from conftest import ros_missing_reason

    if ros_missing_reason():
        pytest.skip(ros_missing_reason())
    from assoc_logger_ros.ros.node import _StopSignals

    stop = _StopSignals(grace_s=0.05)
    stop._handle(signal.SIGINT, None)
    assert stop.received == 'SIGINT'
    stop._handle(signal.SIGINT, None)  # within the grace period: the same request
    stop._handle(signal.SIGTERM, None)
    assert stop.repeats == 2
    time.sleep(0.1)
    stop._handle(signal.SIGTERM, None)  # SIGTERM never aborts
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signal.SIGINT, None)
