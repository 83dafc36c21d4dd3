"""The package under the real ROS 2 tools: ros2 pkg/run/launch/param/topic/lifecycle.

These run the ``ros2`` command that ``scripts/setup.sh --ros-tools`` installs from
``../shared/ros2-cli`` (``scripts/test.sh`` passes it) or a sourced ROS 2 provides; without it
every test here skips with the reason. Nodes are started as a user would (``ros2 run``,
``ros2 launch``) in a process group of their own and stopped with SIGINT to that group, as a
terminal's Ctrl-C does. Traffic stays on this machine (conftest: localhost discovery, this
run's own domain id); every ``ros2`` query runs with ``--no-daemon`` so no daemon is left.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import time
import warnings

from conftest import ros2_command
import pytest

pytestmark = [pytest.mark.ros_tools, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI_TIMEOUT_S = 90.0


def _run_ros2(*args: str, timeout: float = CLI_TIMEOUT_S, retry_s: float = 60.0,
              crash_retries: int = 2) -> tuple[int, str]:
    """Run one ``ros2`` command; its exit status and its stdout and stderr.

    Discovery on a loaded machine can take longer than the CLI's own waits, so a "not found"
    answer is retried for ``retry_s`` seconds. A CLI process killed by a signal (the upstream
    client has been seen to die of SIGSEGV at its own teardown, after it printed its answer;
    not reproduced in 480 calls here) is run again up to ``crash_retries`` times, with a warning.
    """
    end = time.monotonic() + retry_s
    crashes = 0
    while True:
        proc = subprocess.run([ros2_command(), *args], capture_output=True, text=True,
                              timeout=timeout)
        out = proc.stdout + proc.stderr
        if proc.returncode < 0 and crashes < crash_retries:
            crashes += 1
            warnings.warn(f'ros2 {" ".join(args)} died of signal {-proc.returncode}; again',
                          stacklevel=2)
            continue
        if proc.returncode == 0 or 'not found' not in out.lower() or time.monotonic() > end:
            return proc.returncode, out
        time.sleep(0.5)


def _ros2(*args: str, timeout: float = CLI_TIMEOUT_S, check: bool = True,
          retry_s: float = 60.0) -> str:
    """``_run_ros2``'s output; with ``check``, asserts the command exited 0."""
    rc, out = _run_ros2(*args, timeout=timeout, retry_s=retry_s)
    if check:
        assert rc == 0, f'ros2 {" ".join(args)}: exit {rc}: {out}'
    return out


def _param(verb: str, node: str, *rest: str, check: bool = True) -> str:
    """``ros2 param VERB`` without a daemon, waiting up to 30 s for the node."""
    return _ros2('param', verb, '--no-daemon', '--timeout', '30', node, *rest, check=check)


class Started:
    """A ``ros2 run``/``ros2 launch`` process group with its output in a file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        with open(log, 'w') as out:
            self.proc = subprocess.Popen([ros2_command(), *args], stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text()

    def wait_for_output(self, text: str, timeout: float = 90.0) -> None:
        end = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, f'exited {self.proc.returncode}:\n{self.output()}'
            assert time.monotonic() < end, f'no {text!r} within {timeout} s:\n{self.output()}'
            time.sleep(0.2)

    def ctrl_c(self, timeout: float = 60.0) -> int:
        """SIGINT to the whole group (a terminal's Ctrl-C); the exit status."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def started(tmp_path):
    """Factory of started process groups; whatever still runs at the end is killed."""
    procs: list[Started] = []

    def start(*args: str) -> Started:
        s = Started(list(args), tmp_path / f'proc{len(procs)}.log')
        procs.append(s)
        return s

    yield start
    for s in procs:
        s.kill()


class Peer:
    """Publishes detections and counts tracks from the test process (own rclpy context)."""

    def __init__(self, context, det_topic: str, tracks_topic: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile
        from vision_msgs.msg import Detection2DArray

        self.node = rclpy.create_node(f'peer_{os.getpid()}', context=context)
        self.pub = self.node.create_publisher(Detection2DArray, det_topic, QoSProfile(depth=50))
        self.tracks: list = []
        self.node.create_subscription(Detection2DArray, tracks_topic, self.tracks.append,
                                      QoSProfile(depth=50))
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def spin_until(self, pred, timeout: float = 60.0, what: str = 'condition') -> None:
        end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < end, f'timed out waiting for {what}'
            self.executor.spin_once(timeout_sec=0.05)

    def publish(self, k: int, n: int = 4) -> None:
        import numpy as np
        from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

        from assoc_logger_ros.messages import convert as conv

        i = np.arange(n)
        x1 = 10.0 + 3.0 * k + 40.0 * i
        boxes = np.stack([x1, 10.0 + 0 * i, x1 + 30.0, 55.0 + 0 * i], axis=1)
        self.pub.publish(conv.fill_detection_array(
            Detection2DArray(), Detection2D, ObjectHypothesisWithPose, 10**9 + k * 33_333_333,
            boxes, np.full(n, 0.9), ['person'] * n))

    def stream(self, frames: int) -> None:
        """Publish ``frames`` arrays, one after the other's tracks came back."""
        start = len(self.tracks)
        for k in range(frames):
            self.publish(k)
            self.spin_until(lambda k=k: len(self.tracks) >= start + k + 1, what='tracks')

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _manifest_count(log_dir: Path) -> int:
    path = log_dir / 'manifest.jsonl'
    return sum(1 for line in path.read_text().splitlines() if line.strip()) if path.exists() else 0


@pytest.fixture(scope='module', autouse=True)
def _no_daemon_left():
    """Stop a ros2 daemon of this domain if any command started one."""
    yield
    if ros2_command() is not None:
        subprocess.run([ros2_command(), 'daemon', 'stop'], capture_output=True, timeout=60)


def test_pkg_executables_and_launch_arguments():
    """``ros2 pkg executables`` lists the node executables; ``--show-args`` the arguments."""
    out = _ros2('pkg', 'executables', 'assoc_logger_ros')
    lines = set(out.split('\n'))
    assert {'assoc_logger_ros tracker_node', 'assoc_logger_ros tracker_lifecycle_node'} <= lines
    prefix = _ros2('pkg', 'prefix', 'assoc_logger_ros').strip()
    assert (Path(prefix) / 'lib' / 'assoc_logger_ros' / 'tracker_node').is_file()
    out = _ros2('launch', 'assoc_logger_ros', 'collect.launch.py', '--show-args')
    for name in ('log_dir', 'params_file', 'namespace', 'bag', 'lifecycle', 'autostart',
                 'detections'):
        assert f"'{name}'" in out, out


def test_ros2_run_params_diagnostics_and_ctrl_c(started, tmp_path):
    """``ros2 run``; ``ros2 param describe/get/set``; ``ros2 topic echo /diagnostics --once``."""
    ns = f'/run_{os.getpid()}'
    node = f'{ns}/assoc_tracker'
    log_dir = tmp_path / 'logs'
    proc = started('run', 'assoc_logger_ros', 'tracker_node', '--ros-args', '-r',
                   f'__ns:={ns}', '-p', f'log_dir:={log_dir}', '-p', 'diagnostics_period_s:=0.5')
    proc.wait_for_output('session ')
    out = _param('describe', node, 'confidence_threshold')
    assert 'Type: double' in out and 'Read only: true' in out
    assert 'Min value: 0.0' in out and 'Max value: 1.0' in out, out
    assert 'Boolean value is: True' in _param('get', node, 'log_enabled')
    assert 'successful' in _param('set', node, 'log_enabled', 'false')
    out = _param('set', node, 'confidence_threshold', '0.3', check=False)
    assert 'Setting parameter failed' in out or 'failed' in out.lower(), out
    assert 'read-only' in out or 'read only' in out.lower(), out
    proc.wait_for_output('sample logging paused')
    out = _ros2('topic', 'echo', '--no-daemon', '--once', '--timeout', '60', '/diagnostics',
                'diagnostic_msgs/msg/DiagnosticArray')
    assert 'tracking' in out and 'logging_enabled' in out, out
    assert proc.ctrl_c() == 0, proc.output()
    out = proc.output()
    assert 'SIGINT: flushing and stopping' in out and 'closed: 0 frames' in out, out
    assert 'Traceback' not in out


def test_ros2_launch_arguments_params_file_remaps_namespace(started, tmp_path, rclpy_context):
    """Launch arguments beat the params file, which beats defaults; remaps and namespace apply.

    Then Ctrl-C of the launch's process group: the node takes the orderly path once (the
    repeated SIGINT is the same request) and every tracked frame but the first has its sample.
    """
    ns = f'launch_{os.getpid()}'
    log_dir = tmp_path / 'logs'
    params = tmp_path / 'params.yaml'
    params.write_text('/**/assoc_tracker:\n  ros__parameters:\n'
                      '    confidence_threshold: 0.35\n    join_queue_size: 45\n'
                      '    diagnostics_period_s: 0.5\n')
    proc = started('launch', 'assoc_logger_ros', 'collect.launch.py', f'namespace:={ns}',
                   f'params_file:={params}', 'confidence_threshold:=0.45',
                   f'log_dir:={log_dir}', f'detections:=/cam_{os.getpid()}/dets')
    proc.wait_for_output('session ')
    node = f'/{ns}/assoc_tracker'
    assert 'Double value is: 0.45' in _param('get', node,
                                             'confidence_threshold')
    assert 'Integer value is: 45' in _param('get', node, 'join_queue_size')
    peer = Peer(rclpy_context, f'/cam_{os.getpid()}/dets', f'/{ns}/tracks')
    try:
        peer.spin_until(lambda: peer.pub.get_subscription_count() > 0, what='the remapped sub')
        peer.stream(12)
    finally:
        peer.close()
    assert proc.ctrl_c() == 0, proc.output()
    out = proc.output()
    assert out.count('SIGINT: flushing and stopping') == 1, out
    assert 'closed: 12 frames' in out and 'process has finished cleanly' in out, out
    assert _manifest_count(log_dir) == 11


def test_launch_shuts_down_when_the_bag_player_exits(started, tmp_path):
    """A player that exits stops the launch with a message; the node flushes and exits 0.

    Without rosbag2 (``ros2 bag`` is not installable here) the player fails at once; on an
    installation that has it, the decoy bag below is unreadable and the player fails too.
    """
    bag = tmp_path / 'decoy_bag'
    bag.mkdir()
    (bag / 'metadata.yaml').write_text('rosbag2_bagfile_information: {version: 0}\n')
    proc = started('launch', 'assoc_logger_ros', 'collect.launch.py', f'bag:={bag}',
                   f'namespace:=bag_{os.getpid()}', f'log_dir:={tmp_path / "logs"}')
    rc = proc.proc.wait(timeout=120)
    out = proc.output()
    assert 'ros2 bag play failed (exit code' in out and 'shutting the launch down' in out, out
    # the node is stopped while starting or while idle; either way cleanly
    assert 'closed: 0 frames' in out or 'SIGINT during start-up: exiting' in out, out
    assert 'process has finished cleanly' in out and 'Traceback' not in out, out
    assert rc == 0, out

    missing = started('launch', 'assoc_logger_ros', 'collect.launch.py',
                      f'bag:={tmp_path / "no_such_bag"}')
    assert missing.proc.wait(timeout=120) != 0
    out = missing.output()
    assert 'no such file or folder' in out and 'process started' not in out, out


def _lifecycle_state(node: str) -> str:
    return _ros2('lifecycle', 'get', '--no-daemon', '--spin-time', '1', node).strip()


def _lifecycle_set(node: str, transition: str, goal: str) -> None:
    """``ros2 lifecycle set NODE TRANSITION`` succeeds and leaves the node in state ``goal``.

    A transition is not idempotent, so a CLI that dies of a signal is not run again: it passes
    only where it had printed the node's "Transitioning successful" and ``ros2 lifecycle get``
    then shows ``goal``.
    """
    args = ('lifecycle', 'set', '--no-daemon', '--spin-time', '1', node, transition)
    rc, out = _run_ros2(*args, crash_retries=0)
    if rc < 0 and 'Transitioning successful' in out:
        warnings.warn(f'ros2 {" ".join(args)} answered, then died of signal {-rc}',
                      stacklevel=2)
    else:
        assert rc == 0 and 'Transitioning successful' in out, f'exit {rc}: {out}'
    assert _lifecycle_state(node).startswith(goal), transition


def test_managed_node_with_ros2_lifecycle(started, tmp_path, rclpy_context):
    """``lifecycle:=true`` + ``ros2 lifecycle``: configure, activate, deactivate (flush)."""
    ns = f'lc_{os.getpid()}'
    node = f'/{ns}/assoc_tracker'
    log_dir = tmp_path / 'logs'
    proc = started('launch', 'assoc_logger_ros', 'collect.launch.py', 'lifecycle:=true',
                   f'namespace:={ns}', f'log_dir:={log_dir}', 'log_sync_period_s:=100.0')
    proc.wait_for_output('tracker_lifecycle_node')
    end = time.monotonic() + 60
    while not _lifecycle_state(node).startswith('unconfigured'):
        assert time.monotonic() < end and proc.proc.poll() is None, proc.output()
        time.sleep(0.5)
    _lifecycle_set(node, 'configure', 'inactive')
    _lifecycle_set(node, 'activate', 'active')
    peer = Peer(rclpy_context, f'/{ns}/detections', f'/{ns}/tracks')
    try:
        peer.spin_until(lambda: peer.pub.get_subscription_count() > 0, what='the subscription')
        peer.stream(10)
    finally:
        peer.close()
    _lifecycle_set(node, 'deactivate', 'inactive')
    assert _manifest_count(log_dir) == 9  # flushed at deactivate (sync period is 100 s)
    assert proc.ctrl_c() == 0, proc.output()  # inactive -> closed (cleanup: in-process test)
    out = proc.output()
    assert 'closed: 10 frames' in out and 'Traceback' not in out, out


def test_launch_testing_integration_test_passes(tmp_path):
    """test/launch/collect_launch_testing.py passes under launch_testing's ``launch_test``."""
    launch_test = Path(ros2_command()).parent / 'launch_test'
    if not launch_test.is_file():
        import shutil

        launch_test = Path(shutil.which('launch_test') or launch_test)
    assert launch_test.is_file(), 'launch_testing installs the launch_test command'
    proc = subprocess.run(
        [str(launch_test), str(REPO_ROOT / 'test' / 'launch' / 'collect_launch_testing.py')],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert 'test_active_node_tracks_detections' in out and 'test_exit_code_and_flush' in out



def test_ctrl_c_of_ros2_launch_under_load_is_orderly(tmp_path):
    """bench/launch_ctrl_c.py, 2 runs: 300 detections at 30 Hz, Ctrl-C of the launch's group.

    Each run must take the orderly path (one ``flushing and stopping``, the node finished
    cleanly, launch exit 0) with a sample for every tracked frame after the first; the bench
    itself does 10 runs.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location('launch_ctrl_c',
                                                  REPO_ROOT / 'bench' / 'launch_ctrl_c.py')
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    frames = bench.make_frames(60, 300, 30.0)
    for run in range(2):
        res = bench.run_once(ros2_command(), frames, tmp_path, run, stream_s=1.0)
        assert res.get('orderly') and res['missing'] == 0 and res['files_ok'], res
        assert res['frames'] > 10 and res['samples'] == res['frames'] - 1, res
