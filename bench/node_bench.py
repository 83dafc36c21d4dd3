"""Drive the tracker node from another process at increasing rates; compare with bare rclpy.

    nice .venv/bin/python bench/node_bench.py [--detections 100] [--seconds 3]

For each target (a bare rclpy Detection2DArray subscriber, the tracker node with logging off,
the tracker node with logging on, the same with ``fast_cdr`` off) this script starts the target
as its own process, publishes pre-serialized ``Detection2DArray`` messages of ``--detections``
smoothly moving boxes at each rate of ``--rates`` for ``--seconds``, and asks the target how
many it handled. A rate is sustained when every message was handled and (logging on) no sample
was dropped. It prints, per target, the highest sustained rate, the callback latency (median,
p99) and CPU per message at that rate, and the ratio to the bare subscriber measured in the
same run.

QoS on both sides is the node's default (reliable, keep-last 20). The bare subscriber's callback
latency does not include rclpy's message decoding (it happens before the callback); the node's
does include its CDR parsing (``fast_cdr``), so its latencies are the fuller measure.
All ROS traffic stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, own domain id).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import struct
import subprocess
import sys
import tempfile
import time

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(101 + os.getpid() % 100))

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

CTL, REPORT = 'bench_ctl', 'bench_report'


# ----------------------------------------------------------------------------- target side
def run_target(role: str, log_dir: str, fast_cdr: bool) -> int:
    """A target process: 'bare' subscriber or the tracker 'node'; answers report requests."""
    import rclpy
    from rclpy.qos import QoSProfile
    from std_msgs.msg import String
    from vision_msgs.msg import Detection2DArray

    log_value = log_dir or "''"  # an empty value must be written as YAML ''
    ros_args = ['--ros-args', '-p', f'log_dir:={log_value}', '-p', 'diagnostics_period_s:=3600.0',
                '-p', 'image_width:=1920', '-p', 'image_height:=1080',
                '-p', f'fast_cdr:={str(fast_cdr).lower()}']
    with rclpy.init(args=ros_args):
        latencies: list[float] = []
        count = [0]
        if role == 'bare':
            node = rclpy.create_node('bare_sub')

            def on_msg(msg: Detection2DArray) -> None:
                t0 = time.perf_counter()
                count[0] += 1
                latencies.append(time.perf_counter() - t0)

            node.create_subscription(Detection2DArray, 'detections', on_msg, QoSProfile(depth=20))
        else:
            from assoc_logger_ros.ros.node import TrackerNode

            node = TrackerNode()
            node._latencies = latencies  # unbounded; diagnostics (which clear it) are off
        pub = node.create_publisher(String, REPORT, QoSProfile(depth=10))
        state = {'cpu': time.process_time(), 'done': False}

        def on_ctl(msg: String) -> None:
            if msg.data == 'quit':
                state['done'] = True
                return
            frames = count[0] if role == 'bare' else node.frames_in
            lat = np.asarray(latencies) * 1e3
            cpu = time.process_time()
            stats = {} if role == 'bare' else node.pipeline.stats()
            pub.publish(String(data=json.dumps({
                'frames': frames, 'n_lat': int(lat.size),
                'samples_dropped': int(stats.get('writer_dropped_queue_full', 0)),
                'median_ms': float(np.median(lat)) if lat.size else 0.0,
                'p99_ms': float(np.percentile(lat, 99)) if lat.size else 0.0,
                'cpu_s': cpu - state['cpu']})))
            state['cpu'] = cpu
            latencies.clear()
            count[0] = 0
            if role != 'bare':
                node.frames_in = 0

        node.create_subscription(String, CTL, on_ctl, QoSProfile(depth=10))
        while rclpy.ok() and not state['done']:
            rclpy.spin_once(node, timeout_sec=0.1)
        if role != 'bare':
            node.destroy_node()
    return 0


# ----------------------------------------------------------------------------- driver side
def make_pool(n_det: int, n_frames: int) -> list[bytearray]:
    """Serialized Detection2DArray messages of boxes moving on closed loops (seamless repeat)."""
    from rclpy.serialization import serialize_message
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    from assoc_logger_ros.messages import convert as conv

    rng = np.random.default_rng(0)
    centre = np.stack([rng.uniform(100, 1800, n_det), rng.uniform(100, 950, n_det)], 1)
    radius = rng.uniform(5, 40, n_det)[:, None]
    phase = rng.uniform(0, 2 * np.pi, n_det)
    size = np.stack([rng.uniform(20, 60, n_det), rng.uniform(50, 150, n_det)], 1)
    pool = []
    for k in range(n_frames):
        a = phase + 2 * np.pi * k / n_frames
        xy = centre + radius * np.stack([np.cos(a), np.sin(a)], 1)
        boxes = np.concatenate([xy - size / 2, xy + size / 2], 1)
        msg = conv.fill_detection_array(Detection2DArray(), Detection2D, ObjectHypothesisWithPose,
                                        0, boxes, rng.uniform(0.5, 1.0, n_det),
                                        ['person'] * n_det)
        pool.append(bytearray(serialize_message(msg)))
    return pool


class Driver:
    """Publishes the pool at a rate and talks to the target through the control topics."""

    def __init__(self, pool: list[bytearray]) -> None:
        import rclpy
        from rclpy.qos import QoSProfile
        from std_msgs.msg import String
        from vision_msgs.msg import Detection2DArray

        self.node = rclpy.create_node('bench_driver')
        self.pool = pool
        self.pub = self.node.create_publisher(Detection2DArray, 'detections', QoSProfile(depth=20))
        self.ctl = self.node.create_publisher(String, CTL, QoSProfile(depth=10))
        self.reports: list[dict] = []
        self.node.create_subscription(String, REPORT,
                                      lambda m: self.reports.append(json.loads(m.data)),
                                      QoSProfile(depth=10))
        self.k = 0
        self.t_ns = 10**9

    def spin(self, seconds: float) -> None:
        """Handle the driver's callbacks for ``seconds``."""
        import rclpy
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.01)

    def wait_connected(self, timeout: float = 20.0) -> None:
        """Wait until the target subscribed to detections and control, and reports."""
        end = time.monotonic() + timeout
        while (self.pub.get_subscription_count() < 1 or self.ctl.get_subscription_count() < 1
               or self.node.count_publishers(REPORT) < 1):
            if time.monotonic() > end:
                raise RuntimeError('target did not connect')
            self.spin(0.05)
        self.spin(0.5)

    def send(self, rate: float, count: int) -> None:
        """Publish ``count`` messages paced at ``rate``, stamps continuing at 30 Hz."""
        period = 1.0 / rate
        start = time.perf_counter()
        for i in range(count):
            buf = self.pool[self.k % len(self.pool)]
            self.k += 1
            self.t_ns += 33_333_333
            struct.pack_into('<iI', buf, 4, *divmod(self.t_ns, 10**9))
            self.pub.publish(bytes(buf))
            delay = start + (i + 1) * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def report(self) -> dict:
        """Ask the target for its counters since the last report."""
        from std_msgs.msg import String
        before = len(self.reports)
        self.ctl.publish(String(data='report'))
        end = time.monotonic() + 10
        while len(self.reports) == before:
            if time.monotonic() > end:
                raise RuntimeError('target did not report')
            self.spin(0.02)
        return self.reports[-1]

    def drained(self, sent: int, timeout: float = 3.0) -> dict:
        """Report once the target caught up (or stopped making progress)."""
        time.sleep(0.3)
        rep = self.report()
        total = rep['frames']
        merged = dict(rep)
        lat_parts = [rep]
        end = time.monotonic() + timeout
        while total < sent and time.monotonic() < end:
            time.sleep(0.3)
            more = self.report()
            if more['frames'] == 0:
                break
            total += more['frames']
            lat_parts.append(more)
            merged['cpu_s'] += more['cpu_s']
            merged['samples_dropped'] = more['samples_dropped']  # cumulative counter
        merged['frames'] = total
        return merged


def bench_target(target: str, rates: list[float], seconds: float, pool, log_dir: str) -> dict:
    """Run one target through the rates; returns per-rate results."""
    role = 'bare' if target == 'bare' else 'node'
    fast = '0' if target.endswith('-rclpy') else '1'
    cmd = [sys.executable, __file__, '--role', role, '--log-dir', log_dir, '--fast-cdr', fast]
    proc = subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    driver = Driver(pool)
    results = {}
    try:
        driver.wait_connected()
        driver.send(30.0, 30)  # warm-up, not reported
        dropped = driver.drained(30)['samples_dropped']
        for rate in rates:
            sent = int(rate * seconds)
            driver.send(rate, sent)
            rep = driver.drained(sent)
            rep['sent'] = sent
            rep['lost'] = sent - rep['frames']
            rep['samples_dropped'], dropped = rep['samples_dropped'] - dropped, rep[
                'samples_dropped']
            rep['cpu_ms_per_msg'] = 1e3 * rep['cpu_s'] / max(rep['frames'], 1)
            results[rate] = rep
            print(f'  {target:12s} {rate:5.0f} Hz: {rep["frames"]}/{sent} handled, callback '
                  f'median {rep["median_ms"]:.2f} ms p99 {rep["p99_ms"]:.2f} ms, '
                  f'{rep["cpu_ms_per_msg"]:.2f} ms CPU/msg, samples dropped '
                  f'{rep["samples_dropped"]}', flush=True)
            if rep['lost'] > 0 or rep['samples_dropped'] > 0:
                break
    finally:
        from std_msgs.msg import String
        driver.ctl.publish(String(data='quit'))
        driver.spin(0.3)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=10)
        driver.node.destroy_node()
        if proc.returncode not in (0, None):
            print(proc.stderr.read()[-2000:], file=sys.stderr)
    return results


def best(results: dict) -> tuple[float, dict | None]:
    """Highest rate with no lost frame and no dropped sample, and its results."""
    ok = [r for r, rep in results.items() if rep['lost'] == 0 and rep['samples_dropped'] == 0]
    return (max(ok), results[max(ok)]) if ok else (0.0, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--role', choices=('driver', 'bare', 'node'), default='driver')
    parser.add_argument('--log-dir', default='')
    parser.add_argument('--detections', type=int, default=100)
    parser.add_argument('--seconds', type=float, default=3.0)
    parser.add_argument('--rates', default='30,60,90,120,150,180,210,240,270,300,350,400')
    parser.add_argument('--fast-cdr', type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument('--targets', default='bare,node-log-off,node-log-on,node-log-on-rclpy',
                        help='node-*-rclpy: fast_cdr off (rclpy message objects)')
    args = parser.parse_args()
    if args.role != 'driver':
        return run_target(args.role, args.log_dir, bool(args.fast_cdr))

    import rclpy
    rates = [float(r) for r in args.rates.split(',')]
    rclpy.init()
    pool = make_pool(args.detections, 300)
    print(f'{args.detections} detections/message ({len(pool[0])} bytes), {args.seconds:g} s '
          f'per rate, domain {os.environ["ROS_DOMAIN_ID"]}', flush=True)
    table = {}
    with tempfile.TemporaryDirectory(prefix='node_bench_') as tmp:
        for target in args.targets.split(','):
            log_dir = str(Path(tmp) / target) if target.startswith('node-log-on') else ''
            table[target] = bench_target(target, rates, args.seconds, pool, log_dir)
            if log_dir:
                samples = len(list(Path(log_dir).glob('sample_*.npz')))
                print(f'  {target}: {samples} samples written', flush=True)
    rclpy.shutdown()

    bare_rate = best(table.get('bare', {}))[0]
    print('\nmax rate = highest rate with every frame handled and no sample dropped')
    print('\n| target | max rate, zero loss | callback median | callback p99 | CPU/msg '
          '| vs bare |\n|---|---|---|---|---|---|')
    for target, results in table.items():
        rate, rep = best(results)
        if rep is None:
            print(f'| {target} | none | | | | |')
            continue
        ratio = f'{rate / bare_rate:.0%}' if bare_rate else 'n/a'
        print(f'| {target} | {rate:.0f} Hz | {rep["median_ms"]:.2f} ms | {rep["p99_ms"]:.2f} ms '
              f'| {rep["cpu_ms_per_msg"]:.2f} ms | {ratio} |')
    at30 = table.get('node-log-on', {}).get(30.0)
    if at30 is not None:
        print(f'\nnode, logging on, 30 Hz: {at30["frames"]}/{at30["sent"]} handled, callback '
              f'median {at30["median_ms"]:.2f} ms, p99 {at30["p99_ms"]:.2f} ms')
    return 0


if __name__ == '__main__':
    sys.exit(main())
