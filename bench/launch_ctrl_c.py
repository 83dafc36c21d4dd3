"""Ctrl-C of a real ``ros2 launch`` under load: check that every run takes the orderly path.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group, so the node gets it
once from the terminal and once more from launch, which forwards it. This script starts
``ros2 launch assoc_logger_ros collect.launch.py`` in a process group of its own, streams
Detection2DArray messages (300 detections each, 30 Hz by default) to it from this process,
sends SIGINT to the launch's process group mid-stream (the stream goes on, as a detector's
would), and checks each run:

* orderly: the node logged ``SIGINT: flushing and stopping`` and ``closed: N frames``, exited
  cleanly (launch reports it) and the launch exited 0;
* no loss: every frame the node tracked (``closed: N frames``) after the first, which has no
  tracks yet, has its sample in ``manifest.jsonl`` (distinct published stamps, .npz present).

    .venv/bin/python bench/launch_ctrl_c.py --runs 10            # needs setup.sh --ros-tools

Traffic stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, own ROS_DOMAIN_ID).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(101 + os.getpid() % 100))

CLOSED = re.compile(r'closed: (\d+) frames, (\S+) samples written')


def ros2_command() -> str:
    """The ros2 command beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / 'ros2'
    found = str(beside) if beside.is_file() else shutil.which('ros2')
    if not found:
        raise SystemExit('no ros2 command: run scripts/setup.sh --ros-tools first')
    return found


def make_frames(num_frames: int, num_dets: int, rate_hz: float) -> list[tuple[int, bytes]]:
    """(stamp ns, serialized Detection2DArray) of ``num_dets`` boxes moving right."""
    from rclpy.serialization import serialize_message
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    from assoc_logger_ros.messages import convert as conv

    cols = 20
    i = np.arange(num_dets)
    out = []
    for k in range(num_frames):
        x1 = 5.0 + 40.0 * (i % cols) + 1.5 * k
        y1 = 5.0 + 30.0 * (i // cols)
        boxes = np.stack([x1, y1, x1 + 25.0, y1 + 22.0], axis=1)
        stamp = 10**9 + int(round(k * 1e9 / rate_hz))
        msg = conv.fill_detection_array(Detection2DArray(), Detection2D,
                                        ObjectHypothesisWithPose, stamp, boxes,
                                        np.full(num_dets, 0.9), ['person'] * num_dets)
        out.append((stamp, serialize_message(msg)))
    return out


class Stream:
    """Publisher of ``<ns>/detections`` (raw bytes) in this process's own rclpy context."""

    def __init__(self, ns: str) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from vision_msgs.msg import Detection2DArray

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('ctrl_c_stream', namespace=ns, context=self.context)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = self.node.create_publisher(Detection2DArray, 'detections', qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def wait_for_node(self, timeout_s: float) -> bool:
        """Wait until the node subscribed to the detections."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.pub.get_subscription_count() > 0:
                return True
            self.executor.spin_once(timeout_sec=0.1)
        return False

    def close(self) -> None:
        """Destroy the node and shut the context down."""
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def launch_command(ros2: str, ns: str, log_dir: Path, extra: list[str]) -> list[str]:
    return [ros2, 'launch', 'assoc_logger_ros', 'collect.launch.py', f'namespace:={ns}',
            f'log_dir:={log_dir}', *extra]


def stop_group(proc: subprocess.Popen, timeout_s: float) -> int | None:
    """SIGINT the launch's process group as a terminal would; kill it if it hangs."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def run_once(ros2: str, frames: list[tuple[int, bytes]], work: Path, run: int, *,
             rate_hz: float = 30.0, stream_s: float = 2.0, after_s: float = 0.5,
             start_timeout_s: float = 90.0) -> dict[str, Any]:
    """One launch, stream, Ctrl-C mid-stream; returns what was seen."""
    ns = f'/ctrl_c_{os.getpid()}_{run}'
    log_dir = work / f'run{run}' / 'logs'
    log_dir.parent.mkdir(parents=True)
    out_path = log_dir.parent / 'launch.log'
    stream = Stream(ns)
    published: list[int] = []
    with open(out_path, 'w') as out:
        proc = subprocess.Popen(launch_command(ros2, ns, log_dir, []), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if not stream.wait_for_node(start_timeout_s):
            rc = stop_group(proc, 30)
            return {'run': run, 'error': 'node did not subscribe', 'rc': rc,
                    'log': out_path.read_text()}
        time.sleep(0.3)  # let the node's side of discovery finish
        period = 1.0 / rate_hz
        t0 = time.monotonic()
        sigint_at = t0 + stream_s
        stop_at = sigint_at + after_s
        stopped_t = None
        k = 0
        while time.monotonic() < stop_at and k < len(frames):
            due = t0 + k * period
            while (left := due - time.monotonic()) > 0:
                time.sleep(min(left, 0.005))
            stamp, raw = frames[k]
            stream.pub.publish(raw)
            published.append(stamp)
            k += 1
            if stopped_t is None and time.monotonic() >= sigint_at:
                os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole group
                stopped_t = time.monotonic()
        if stopped_t is None:
            os.killpg(proc.pid, signal.SIGINT)
            stopped_t = time.monotonic()
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rc = stop_group(proc, 10)
        exit_s = time.monotonic() - stopped_t
    finally:
        if proc.poll() is None:
            stop_group(proc, 10)
        stream.close()
    log = out_path.read_text()
    return check_run(run, log, rc, exit_s, published, log_dir)


def check_run(run: int, log: str, rc: int | None, exit_s: float, published: list[int],
              log_dir: Path) -> dict[str, Any]:
    """Orderly path and sample loss of one run, from the launch log and the log folder."""
    closed = CLOSED.search(log)
    frames = int(closed.group(1)) if closed else -1
    manifest = log_dir / 'manifest.jsonl'
    records = ([json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
               if manifest.exists() else [])
    stamps = [int(r['stamp_ns']) for r in records]
    # Every frame the node tracked but the first (no tracks yet: no association problem) has
    # an association problem here, so it must have its sample; the samples' stamps are
    # distinct published stamps. Frames the node never took (published after it stopped, or
    # lost by its keep-last input queue under load) are not "received" and counted apart.
    missing = max(frames - 1, 0) - len(records) if frames >= 0 else -1
    files_ok = (len(set(stamps)) == len(stamps) and set(stamps) <= set(published)
                and all((log_dir / r['npz']).is_file() for r in records))
    orderly = ('SIGINT: flushing and stopping' in log and closed is not None
               and 'process has finished cleanly' in log and rc == 0
               and 'Traceback' not in log)
    return {'run': run, 'rc': rc, 'orderly': orderly, 'published': len(published),
            'frames': frames, 'samples': len(records), 'missing': missing,
            'files_ok': files_ok, 'repeats': 'repeated stop signal' in log,
            'exit_s': round(exit_s, 2), 'log': log}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--detections', type=int, default=300)
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--seconds', type=float, default=2.0, help='stream before Ctrl-C')
    parser.add_argument('--keep', action='store_true', help='keep the work folder')
    args = parser.parse_args(argv)
    ros2 = ros2_command()
    frames = make_frames(int((args.seconds + 1.0) * args.rate) + 5, args.detections, args.rate)
    work = Path(tempfile.mkdtemp(prefix='assoc-ctrl-c-'))
    results = []
    try:
        for run in range(args.runs):
            res = run_once(ros2, frames, work, run, rate_hz=args.rate, stream_s=args.seconds)
            results.append(res)
            print(f'run {run}: orderly={res.get("orderly")} rc={res.get("rc")} '
                  f'published={res.get("published")} frames={res.get("frames")} '
                  f'samples={res.get("samples")} missing={res.get("missing")} '
                  f'files_ok={res.get("files_ok")} '
                  f'repeat_signal_seen={res.get("repeats")} exit={res.get("exit_s")} s',
                  flush=True)
            if not res.get('orderly') or res.get('missing'):
                print(res.get('log', '')[-3000:], flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ok = [r for r in results if r.get('orderly') and r.get('missing') == 0 and r.get('files_ok')]
    exits = [r['exit_s'] for r in results if 'exit_s' in r]
    print()
    print('| runs | orderly | no sample lost | repeated SIGINT seen | median exit s '
          '| max exit s |')
    print('|---:|---:|---:|---:|---:|---:|')
    print(f'| {len(results)} | {sum(bool(r.get("orderly")) for r in results)} | '
          f'{sum(r.get("missing") == 0 for r in results)} | '
          f'{sum(bool(r.get("repeats")) for r in results)} | '
          f'{statistics.median(exits) if exits else float("nan"):.2f} | '
          f'{max(exits) if exits else float("nan"):.2f} |')
    print(f'{args.detections} detections a message at {args.rate:g} Hz, Ctrl-C after '
          f'{args.seconds:g} s: {len(ok)}/{len(results)} runs orderly with no sample lost')
    return 0 if len(ok) == len(results) else 1


if __name__ == '__main__':
    sys.exit(main())
