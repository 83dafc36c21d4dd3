"""The tracker node with real rclpy: one executor runs the node and a test peer in-process.

The peer publishes a generated walk (detections, instance masks, images) and listens to
``tracks`` and ``/diagnostics``. Each test runs in its own namespace and rclpy context.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
import time

from conftest import slow_node_script
import numpy as np
import pytest

pytestmark = pytest.mark.ros

W, H = 320, 240
COLORS = np.array([[220, 40, 40], [40, 200, 40], [40, 60, 220], [230, 200, 30]], np.uint8)
_NS = itertools.count(1)


def walk(k: int, n: int = 4) -> np.ndarray:
    """(n, 4) xyxy boxes of n walkers moving right on separate rows (no crossings)."""
    i = np.arange(n)
    x1 = 10.0 + 3.0 * k + 20.0 * i
    y1 = 10.0 + 55.0 * i
    return np.stack([x1, y1, x1 + 30.0, y1 + 45.0], axis=1)


def render(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB image with each walker's colour and the matching instance label image."""
    img = np.full((H, W, 3), 90, np.uint8)
    mask = np.zeros((H, W), np.uint16)
    for j, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        img[y1:y2, x1:x2] = COLORS[j % len(COLORS)]
        mask[y1:y2, x1:x2] = j + 1
    return img, mask


class Harness:
    """TrackerNode + a peer node sharing one executor in the test's context."""

    def __init__(self, context, params: dict, cli_args: list[str] | None = None,
                 pub_qos=None, connect_timeout: float = 10.0) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray

        from assoc_logger_ros.ros.node import TrackerNode

        ns = f'/assoc_test_{os.getpid()}_{next(_NS)}'
        self.node = TrackerNode(
            context=context, namespace=ns, cli_args=cli_args,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.peer = rclpy.create_node('peer', namespace=ns, context=context)
        qos = QoSProfile(depth=50)
        self.pub_det = self.peer.create_publisher(Detection2DArray, 'detections',
                                                  pub_qos or qos)
        self.pub_mask = self.peer.create_publisher(Image, 'masks', qos)
        self.pub_img = self.peer.create_publisher(Image, 'image', qos)
        self.tracks: list = []
        self.diags: list = []
        self.peer.create_subscription(Detection2DArray, 'tracks', self.tracks.append, qos)
        status_name = f'{self.node.get_fully_qualified_name()}: tracking'
        self.peer.create_subscription(
            DiagnosticArray, '/diagnostics',
            lambda m: self.diags.extend(s for s in m.status if s.name == status_name), qos)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)
        self.spin_until(lambda: self.pub_det.get_subscription_count() > 0
                        and self.node._pub.get_subscription_count() > 0, connect_timeout)

    def spin_until(self, pred, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                raise AssertionError('timed out waiting for the node')
            self.executor.spin_once(timeout_sec=0.02)

    def send(self, stamp_ns: int, boxes: np.ndarray, *, scores=None, mask='mono16',
             image='rgb8', mask_array=None, expect_output: bool = True) -> None:
        """Publish one frame (mask and image first) and wait for its tracks message."""
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

        from assoc_logger_ros.messages import convert as conv

        img, labels = render(np.nan_to_num(boxes))
        if mask_array is not None:
            labels = mask_array
        if mask:
            self.pub_mask.publish(conv.fill_image(Image(), stamp_ns, labels, mask)
                                  if mask != '32FC1' else _float_mask(stamp_ns))
        if image:
            self.pub_img.publish(conv.fill_image(Image(), stamp_ns, img, image))
        scores = np.full(len(boxes), 0.9) if scores is None else scores
        msg = conv.fill_detection_array(Detection2DArray(), Detection2D,
                                        ObjectHypothesisWithPose, stamp_ns, boxes, scores,
                                        ['person'] * len(boxes))
        before = len(self.tracks)
        self.pub_det.publish(msg)
        if expect_output:
            self.spin_until(lambda: len(self.tracks) > before)

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.executor.remove_node(self.peer)
        self.node.destroy_node()
        self.peer.destroy_node()
        self.executor.shutdown()


def _float_mask(stamp_ns: int):
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    msg.height, msg.width, msg.encoding, msg.step = H, W, '32FC1', W * 4
    msg.data = bytes(H * W * 4)
    return msg


@pytest.fixture
def harness_factory(rclpy_context, tmp_path):
    made = []

    def make(extra: dict | None = None, cli_args=None) -> Harness:
        params = {'log_dir': str(tmp_path / 'logs'), 'seg_enable': True,
                  'embedding_source': 'color_hist', 'mask_tolerance_s': 0.5,
                  'diagnostics_period_s': 0.1, 'warn_throttle_s': 0.0, **(extra or {})}
        h = Harness(rclpy_context, params, cli_args)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def _ids_by_row(tracks_msg) -> dict[int, str]:
    """Walker row (from the box's y) -> track id in one tracks message."""
    return {int(round((d.bbox.center.position.y - 32.5) / 55.0)): d.id
            for d in tracks_msg.detections}


def _manifest(log_dir: Path) -> list[dict]:
    import json
    path = log_dir / 'manifest.jsonl'
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize('fast_cdr', [True, False])
def test_stable_ids_samples_and_diagnostics(harness_factory, tmp_path, fast_cdr):
    """A clean walk keeps one ID per walker; samples are valid; diagnostics are published.

    Run with both input paths: raw CDR parsing and rclpy message objects.
    """
    from assoc_logger_ros.recording.validate import validate

    h = harness_factory({'fast_cdr': fast_cdr})
    for k in range(25):
        h.send(10**9 + k * 33_333_333, walk(k))
    final = _ids_by_row(h.tracks[-1])
    assert sorted(final) == [0, 1, 2, 3]
    assert len(set(final.values())) == 4
    for msg in h.tracks[5:]:
        assert _ids_by_row(msg) == final
    out = h.tracks[-1]
    assert out.header.stamp.sec == 1 and out.detections[0].results[0].hypothesis.class_id \
        == 'person'
    h.spin_until(lambda: len(h.diags) > 0)
    keys = {kv.key for kv in h.diags[-1].values}
    assert {'input_rate_hz', 'callback_latency_median_ms', 'callback_latency_p99_ms',
            'est_id_switches', 'mask_join_misses', 'writer_queue', 'samples_written',
            'samples_dropped', 'free_disk_mb', 'session_id'} <= keys
    assert h.node.joiner.stats()['mask_joined'] == 25
    assert h.node.joiner.stats()['image_joined'] == 25
    h.node.close()
    log_dir = tmp_path / 'logs'
    records = _manifest(log_dir)
    assert len(records) >= 20
    samples = sorted(log_dir.glob('sample_*.npz'))
    assert len(samples) == len(records)
    for path in samples[::5]:
        assert validate(path) == []
    with np.load(samples[-1]) as data:
        emb = data['det_embeddings']
        assert emb.shape[0] == 4 and np.abs(emb).sum(axis=1).min() > 0


def test_parameter_precedence(harness_factory, tmp_path, monkeypatch):
    """Explicit > params YAML > environment variable > schema default, per setting."""
    monkeypatch.setenv('CONFIDENCE_THRESHOLD', '0.21')       # env only
    monkeypatch.setenv('TRANSFORMER_LOG_EMBED_DIM', '32')    # env, YAML overrides
    monkeypatch.setenv('ASSOC_TRACK_THRESH', '0.41')         # env, YAML and explicit
    params = tmp_path / 'params.yaml'
    params.write_text('/**/assoc_tracker:\n  ros__parameters:\n'
                      '    log_embed_dim: 64\n    track_thresh: 0.52\n')
    h = harness_factory(cli_args=['--ros-args', '--params-file', str(params),
                                  '-p', 'track_thresh:=0.63'])
    get = h.node.get_parameter
    assert get('confidence_threshold').value == pytest.approx(0.21)
    assert get('log_embed_dim').value == 64
    assert get('track_thresh').value == pytest.approx(0.63)
    assert get('match_thresh').value == pytest.approx(0.9)       # default
    s = h.node.settings
    assert (s.tracker.confidence_threshold, s.recorder.log_embed_dim,
            s.tracker.track_thresh) == (pytest.approx(0.21), 64, pytest.approx(0.63))


def test_parameters_are_described_with_ranges(harness_factory):
    """Each schema setting is declared with a description, its range and read-only flag."""
    from assoc_logger_ros import config

    h = harness_factory()
    for s in config.all_specs():
        d = h.node.describe_parameter(s.name)
        assert d.description.startswith(s.description[:20])
        assert d.read_only == (not s.runtime)
    d = h.node.describe_parameter('confidence_threshold')
    assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (0, 1)
    assert h.node.describe_parameter('qos_depth').integer_range[0].to_value == 10000


def test_pause_and_resume_logging(harness_factory, tmp_path):
    """Setting log_enabled false stops new samples; true resumes; bad values are refused."""
    from rclpy.parameter import Parameter

    h = harness_factory()
    queued = lambda: h.node.pipeline.stats()['writer_queued']  # noqa: E731
    for k in range(5):
        h.send(10**9 + k * 33_333_333, walk(k))
    before = queued()
    assert before > 0
    assert h.node.set_parameters([Parameter('log_enabled', value=False)])[0].successful
    for k in range(5, 10):
        h.send(10**9 + k * 33_333_333, walk(k))
    assert queued() == before
    assert h.node.set_parameters([Parameter('log_enabled', value=True)])[0].successful
    for k in range(10, 13):
        h.send(10**9 + k * 33_333_333, walk(k))
    assert queued() == before + 3
    refused = h.node.set_parameters([Parameter('confidence_threshold', value=0.5)])[0]
    assert not refused.successful


def test_backwards_stamp_starts_new_session(harness_factory, tmp_path):
    """A stamp jump back resets the tracker and the manifest gets a second session."""
    h = harness_factory()
    for k in range(6):
        h.send(50 * 10**9 + k * 33_333_333, walk(k))
    first = h.node.pipeline.session_id
    for k in range(6):
        h.send(1 * 10**9 + k * 33_333_333, walk(k))
    assert h.node.pipeline.session_id != first
    assert any('new session' in w for w in h.node.recent_warnings)
    h.node.close()
    sessions = {r.get('session_id') or r.get('session') for r in _manifest(tmp_path / 'logs')}
    assert len(sessions) == 2


def test_bad_messages_are_survived_with_warnings(harness_factory):
    """NaN boxes, wrong-size/unknown-encoding masks, garbage bytes warn; tracking continues."""
    h = harness_factory()
    t = lambda k: 10**9 + k * 33_333_333  # noqa: E731
    for k in range(4):
        h.send(t(k), walk(k))
    nan_boxes = walk(4)
    nan_boxes[1, 0] = np.nan
    h.send(t(4), nan_boxes)
    h.send(t(5), walk(5), mask_array=np.zeros((10, 10), np.uint16))
    h.send(t(6), walk(6), mask='32FC1')
    h.send(t(7), np.zeros((0, 4)))
    bad_before = h.node.bad_messages
    h.pub_det.publish(b'\x00\x01\x00\x00' + b'\xff' * 40)   # undecodable CDR bytes
    h.spin_until(lambda: h.node.bad_messages > bad_before)
    for k in range(8, 12):
        h.send(t(k), walk(k))
    text = '\n'.join(h.node.recent_warnings)
    assert 'NaN' in text
    assert 'mask is 10x10' in text
    assert "'32FC1'" in text
    assert 'undecodable detection array' in text
    assert h.node.bad_messages >= 2
    assert len(h.tracks[-1].detections) == 4
    assert len(h.tracks[7].detections) == 0


def test_missing_mask_released_after_tolerance_on_sim_time(harness_factory):
    """Under use_sim_time a detection array waits for its mask until /clock passes tolerance."""
    from rosgraph_msgs.msg import Clock

    h = harness_factory({'use_sim_time': True, 'embedding_source': 'none',
                         'mask_tolerance_s': 0.5})
    clock_pub = h.peer.create_publisher(Clock, '/clock', 10)

    def set_clock(sec: float) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = int(sec), int(round((sec % 1) * 1e9))
        clock_pub.publish(msg)
        h.spin_until(lambda: abs(h.node.get_clock().now().nanoseconds - sec * 1e9) < 1e3)

    h.spin_until(lambda: clock_pub.get_subscription_count() > 0)
    set_clock(100.0)
    h.send(100 * 10**9, walk(0), mask=None, expect_output=False)
    h.spin_until(lambda: h.node.frames_in == 1)
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        h.executor.spin_once(timeout_sec=0.02)
    assert h.tracks == [] and h.node.joiner.waiting == 1   # sim time has not moved
    set_clock(100.3)
    h.executor.spin_once(timeout_sec=0.05)
    assert h.tracks == []
    set_clock(100.6)
    h.spin_until(lambda: len(h.tracks) == 1)
    assert h.node.joiner.stats()['mask_misses'] == 1


_MAIN = 'import sys; from assoc_logger_ros.ros.node import main; sys.exit(main())'


def _run_node_process(tmp_path, env_extra, ros_args, action, *, code: str = _MAIN,
                      stop_signal=None):
    """Start tracker_node's main() in a subprocess, run ``action(proc)``, return (rc, stderr)."""
    import signal
    import subprocess
    import sys

    env = {**os.environ, **env_extra}
    proc = subprocess.Popen([sys.executable, '-c', code, '--ros-args', *ros_args],
                            cwd=Path(__file__).resolve().parents[1], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        action(proc)
        if proc.poll() is None:
            proc.send_signal(stop_signal or signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_bad_environment_value_fails_clearly(tmp_path):
    """An out-of-range environment variable stops start-up with exit 2 and names the variable."""
    from conftest import ros_missing_reason

    if ros_missing_reason():
        pytest.skip(ros_missing_reason())
    rc, err = _run_node_process(tmp_path, {'CONFIDENCE_THRESHOLD': '5'}, [],
                                lambda p: p.wait(timeout=30))
    assert rc == 2, err
    assert 'CONFIDENCE_THRESHOLD' in err and 'out of range' in err


class _Peer:
    """Publisher of ``detections`` and listener of ``tracks`` in the test's own context."""

    def __init__(self, context, ns: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile
        from vision_msgs.msg import Detection2DArray

        self.ns = ns
        self.node = rclpy.create_node('peer', namespace=ns, context=context)
        self.pub = self.node.create_publisher(Detection2DArray, 'detections', QoSProfile(depth=50))
        self.got: list = []
        self.node.create_subscription(Detection2DArray, 'tracks', self.got.append,
                                      QoSProfile(depth=50))
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def spin_until(self, pred, timeout=20.0):
        end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < end, 'timed out'
            self.executor.spin_once(timeout_sec=0.05)

    def wait_for_node(self):
        self.spin_until(lambda: self.pub.get_subscription_count() > 0
                        and self.node.count_publishers(f'{self.ns}/tracks') > 0)

    def publish(self, k: int) -> None:
        from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

        from assoc_logger_ros.messages import convert as conv

        self.pub.publish(conv.fill_detection_array(
            Detection2DArray(), Detection2D, ObjectHypothesisWithPose, 10**9 + k * 33_333_333,
            walk(k), np.full(4, 0.9), ['person'] * 4))

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def test_sigint_flushes_samples(rclpy_context, tmp_path):
    """Ctrl-C on the console script exits 0 after every queued sample reached the manifest."""
    ns = f'/assoc_sigint_{os.getpid()}'
    log_dir = tmp_path / 'logs'
    peer = _Peer(rclpy_context, ns)

    def action(proc):
        peer.wait_for_node()
        for k in range(15):
            peer.publish(k)
        peer.spin_until(lambda: len(peer.got) == 15)

    rc, err = _run_node_process(tmp_path, {}, ['-r', f'__ns:={ns}', '-p', f'log_dir:={log_dir}',
                                               '-p', 'log_sync_period_s:=100.0'], action)
    peer.close()
    assert rc == 0, err
    assert 'Traceback' not in err
    records = _manifest(log_dir)
    assert len(records) == len(list(log_dir.glob('sample_*.npz'))) >= 13
    assert 'closed: 15 frames' in err


# The node's tracker update sleeps 0.5 s per frame and says when it starts the first one.
_SLOW_MAIN = slow_node_script(0.5)


@pytest.mark.parametrize('signame', ['SIGINT', 'SIGTERM'])
def test_signal_while_busy_exits_cleanly(rclpy_context, tmp_path, signame):
    """A signal arriving inside a callback: exit 0, no traceback, everything received is kept.

    The node is in its first (slowed) tracker update when the signal arrives; the frames
    already received behind it are still tracked, their samples written, and the process exits
    0 without an RCLError from a context shut down under its feet.
    """
    import signal

    ns = f'/assoc_{signame.lower()}_{os.getpid()}'
    log_dir = tmp_path / 'logs'
    peer = _Peer(rclpy_context, ns)

    def action(proc):
        peer.wait_for_node()
        for k in range(4):
            peer.publish(k)
        assert proc.stdout.readline().strip() == 'BUSY'
        time.sleep(0.1)  # the remaining frames reach the node's queue meanwhile

    rc, err = _run_node_process(tmp_path, {}, ['-r', f'__ns:={ns}', '-p', f'log_dir:={log_dir}'],
                                action, code=_SLOW_MAIN, stop_signal=getattr(signal, signame))
    peer.close()
    assert rc == 0, err
    assert 'Traceback' not in err and 'RCLError' not in err, err
    assert f'{signame}: flushing' in err
    assert 'closed: 4 frames' in err
    records = _manifest(log_dir)
    assert len(records) == len(list(log_dir.glob('sample_*.npz'))) >= 3


def _messages(scene_frame):
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    from assoc_logger_ros.messages import convert as conv
    from assoc_logger_ros.sim.scene import CLASS_NAMES

    f = scene_frame
    mask, image = f.render()
    det = conv.fill_detection_array(Detection2DArray(), Detection2D, ObjectHypothesisWithPose,
                                    f.stamp_ns, f.det_boxes, f.det_scores,
                                    [CLASS_NAMES[c] for c in f.det_classes])
    return (det, conv.fill_image(Image(), f.stamp_ns, mask, 'mono16'),
            conv.fill_image(Image(), f.stamp_ns, image, 'rgb8'))


def test_node_tracks_equal_library_pipeline(rclpy_context, tmp_path):
    """On a generated scene with crossings, published IDs equal Pipeline's on the same messages.

    The same messages go through ROS to the node and straight into ``Pipeline`` with the same
    conversion functions: the contract the bag replay relies on ("the same samples as the live
    node").
    """
    from assoc_logger_ros import config
    from assoc_logger_ros.appearance import color_histogram
    from assoc_logger_ros.messages import convert as conv
    from assoc_logger_ros.pipeline import Pipeline
    from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

    scene = generate_scene(SceneConfig(seed=3, num_frames=45, num_walkers=6))
    params = {'log_dir': '', 'seg_enable': True, 'embedding_source': 'color_hist',
              'mask_tolerance_s': 1.0}
    h = Harness(rclpy_context, params)
    try:
        msgs = [_messages(f) for f in scene.frames]
        for det, mask, image in msgs:
            before = len(h.tracks)
            h.pub_mask.publish(mask)
            h.pub_img.publish(image)
            h.pub_det.publish(det)
            h.spin_until(lambda before=before: len(h.tracks) > before)
        online = [[(d.id, d.bbox.center.position.x) for d in m.detections] for m in h.tracks]
        assert h.node.joiner.stats()['mask_misses'] == 0
    finally:
        h.close()

    pipe = Pipeline(config.resolve(explicit=params, env={}))
    registry = conv.ClassRegistry()
    offline = []
    for k, (det, mask_msg, image_msg) in enumerate(msgs):
        mask = conv.decode_label_image(mask_msg)
        image = conv.decode_color_image(image_msg)
        frame = conv.detections_to_frame(
            det, registry=registry, frame_idx=k, mask=mask, image=image,
            embed=lambda boxes, image=image, mask=mask: color_histogram(image, boxes, mask))
        snap = pipe.process(frame)
        out = conv.snapshot_to_tracks(snap, det, conv.TrackMessageFactory(
            type(det), type(det.detections[0]) if det.detections else object))
        offline.append([(d.id, d.bbox.center.position.x) for d in out.detections])
    pipe.close()
    assert online == offline
    ids = {i for frame in online for i, _ in frame}
    assert 3 <= len(ids) < 3 * scene.num_identities
    assert np.mean([len(f) for f in online]) > 2


@pytest.mark.parametrize('reliability,expect', [('best_effort', True), ('reliable', False)])
def test_best_effort_publisher_needs_best_effort_qos(rclpy_context, reliability, expect):
    """qos_reliability=best_effort connects to a best-effort publisher; reliable does not."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    pub_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    params = {'log_dir': '', 'qos_reliability': reliability}
    if expect:
        h = Harness(rclpy_context, params, pub_qos=pub_qos)
        try:
            h.send(10**9, walk(0), mask=None, image=None)
            assert len(h.tracks) == 1
        finally:
            h.close()
    else:
        with pytest.raises(AssertionError, match='timed out'):
            Harness(rclpy_context, params, pub_qos=pub_qos, connect_timeout=2.0)



def test_node_runs_the_learned_model(harness_factory, tiny_model, tmp_path):
    """transformer_assoc_* parameters: the node runs the exported model; samples carry both costs.

    A missing model is a clear error at start, naming the file.
    """
    from assoc_logger_ros.tracking.learned_cost import LearnedCostError

    model_dir, _ = tiny_model
    h = harness_factory({'transformer_assoc_enable': True,
                         'transformer_assoc_weights': str(model_dir),
                         'transformer_assoc_weight': 0.5, 'embedding_source': 'none'})
    for k in range(8):
        h.send(10**9 + k * 33_333_333, walk(k), mask=None, image=None)
    lc = h.node.pipeline.tracker.learned_cost
    assert lc is not None and lc.calls >= 6 and lc.failures == 0
    last = [sorted(d.id for d in m.detections) for m in h.tracks[-3:]]
    assert last == [['1', '2', '3', '4']] * 3
    h.node.close()
    with np.load(sorted((tmp_path / 'logs').glob('sample_*.npz'))[-1]) as z:
        assert z['assoc_prob'].shape == z['classical_cost_matrix'].shape == z['cost_matrix'].shape
        assert (z['assoc_prob'] > 0).any()
    with pytest.raises(LearnedCostError, match='gone/model.json: model card not found'):
        harness_factory({'transformer_assoc_enable': True,
                         'transformer_assoc_weights': str(tmp_path / 'gone')})
