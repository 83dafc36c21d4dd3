"""Replay and the live node write the same samples for the same bag (real rclpy, in-process).

The bag's messages are published into a TrackerNode in this process with rclpy (the bag's raw
CDR bytes, :class:`~assoc_logger_ros.ros.bag_player.BagPlayer`), closed loop: the next frame
is published only after the node's ``tracks`` reply, and each frame's mask and image are stored
1 ms before its detections, so the node joins them on arrival whatever its clock and load.
The node gets the replay's session id as its ``session_id`` parameter. Compared: every manifest
record except ``bytes``, and every array of every sample except ``metadata`` (it names the
source: ``ros`` and the node name vs ``replay`` and the bag name; so the compressed file sizes,
``bytes``, differ too).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
import time

import numpy as np
import pytest

from assoc_logger_ros.bag import bagio
from assoc_logger_ros.recording.npzfile import load
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

pytestmark = pytest.mark.ros
MS = 1_000_000
_NS = itertools.count(1)


def _run_node(context, bag: Path, params: dict) -> tuple[int, int]:
    """Feed ``bag`` to an in-process TrackerNode; returns (published, tracks received)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from assoc_logger_ros.ros.bag_player import BagPlayer
    from assoc_logger_ros.ros.node import TrackerNode

    ns = f'/replay_eq_{os.getpid()}_{next(_NS)}'
    node = TrackerNode(context=context, namespace=ns,
                       parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    peer = rclpy.create_node('player', namespace=ns, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(peer)
    try:
        def spin(timeout: float) -> None:
            executor.spin_once(timeout_sec=timeout)

        topics = {t: f'{ns}{t}' for t in (bagio.TOPIC_DETECTIONS, bagio.TOPIC_MASKS,
                                          bagio.TOPIC_IMAGE, bagio.TOPIC_GT)}
        player = BagPlayer(peer, topics, tracks_topic=f'{ns}/tracks')
        assert player.wait_for_subscribers(bag, spin, timeout_s=20.0)
        # and the node has discovered each of our publishers (else a first message could be lost)
        deadline = time.monotonic() + 20.0
        while not all(node.count_publishers(t) > 0 for t in topics.values()):
            assert time.monotonic() < deadline, 'node did not see the player'
            spin(0.05)
        player.play(bag, spin, rate=50.0, max_in_flight=1)
        player.wait_drained(spin, player.published_detections, idle_s=5.0)
        return player.published_detections, player.tracks_received
    finally:
        executor.remove_node(node)
        executor.remove_node(peer)
        node.destroy_node()  # flushes the writer
        peer.destroy_node()
        executor.shutdown()


def _manifest(directory: Path) -> list[dict]:
    """Manifest records without ``bytes`` (the file size follows the metadata's length)."""
    lines = (directory / 'manifest.jsonl').read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != 'bytes'} for line in lines]


def test_replay_samples_equal_node_samples(rclpy_context, tmp_path):
    """Same bag, same settings: identical manifests and identical sample arrays.

    The bag carries ground truth on ``/gt``; the node reads it (``gt_topic``) as the replay
    does, so ``det_gt_ids`` are compared too.
    """
    from assoc_logger_ros.bag.replay import replay_bag, session_id_for
    from assoc_logger_ros.config import resolve

    scene = generate_scene(SceneConfig(seed=5, num_frames=30, width=320, height=240,
                                       num_walkers=6))
    bag = tmp_path / 'eq_bag'
    bagio.write_scene(scene, bag, gt=True, side_delay_ns=-MS)
    with bagio.open_reader(bag) as reader:
        sid = session_id_for(bag, reader.start_time)
    common = {'seg_enable': True, 'embedding_source': 'color_hist', 'mask_tolerance_s': 0.5}

    published, received = _run_node(rclpy_context, bag, {
        **common, 'log_dir': str(tmp_path / 'node'), 'session_id': sid, 'gt_topic': 'gt'})
    assert (published, received) == (30, 30)
    result = replay_bag(bag, resolve({**common, 'log_dir': str(tmp_path / 'replay')}))
    assert result.session_id == sid

    node_recs = _manifest(tmp_path / 'node')
    replay_recs = _manifest(tmp_path / 'replay')
    assert len(node_recs) == result.samples_written > 20
    assert node_recs == replay_recs
    for name in sorted(p.name for p in (tmp_path / 'node').glob('sample_*.npz')):
        a = load(tmp_path / 'node' / name)
        b = load(tmp_path / 'replay' / name)
        assert a.keys() == b.keys() and 'det_gt_ids' in a  # ground truth read by both
        for key in a:
            if key != 'metadata':
                np.testing.assert_array_equal(a[key], b[key], err_msg=f'{name}:{key}')
