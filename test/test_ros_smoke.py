"""ROS smoke tests: the environment scripts/setup.sh builds really runs ROS 2 with vision_msgs.

All traffic stays on this machine (test/conftest.py sets the discovery range and domain id).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.ros

REPO_ROOT = Path(__file__).resolve().parents[1]


def _detections():
    """A Detection2DArray with two detections whose fields can be checked after the trip."""
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    msg = Detection2DArray()
    msg.header.frame_id = 'camera'
    msg.header.stamp.sec = 12
    msg.header.stamp.nanosec = 345
    for i in range(2):
        det = Detection2D()
        det.id = f'det{i}'
        det.bbox.center.position.x = 10.0 + i
        det.bbox.center.position.y = 20.0
        det.bbox.size_x = 4.5
        det.bbox.size_y = 8.25
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = 'person'
        hyp.hypothesis.score = 0.9 - 0.1 * i
        det.results.append(hyp)
        msg.detections.append(det)
    return msg


def test_detection2darray_round_trip(rclpy_context):
    """A node's own Detection2DArray comes back through DDS with every field intact."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from vision_msgs.msg import Detection2DArray

    node = rclpy.create_node('assoc_smoke', context=rclpy_context)
    received = []
    qos = QoSProfile(depth=10)
    topic = f'assoc_smoke_{os.getpid()}'
    node.create_subscription(Detection2DArray, topic, received.append, qos)
    pub = node.create_publisher(Detection2DArray, topic, qos)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    sent = _detections()
    try:
        deadline = time.monotonic() + 20.0
        while not received and time.monotonic() < deadline:
            pub.publish(sent)
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
    assert received, 'no Detection2DArray came back within 20 s'
    got = received[0]
    assert got == sent
    assert got.detections[1].bbox.center.position.x == 11.0
    assert got.detections[0].results[0].hypothesis.class_id == 'person'


def test_child_process_with_marker_but_no_library_path():
    """A child that inherits the wheels' bootstrap marker but not LD_LIBRARY_PATH still imports."""
    if importlib.util.find_spec('ros_wheels_bootstrapper') is None:
        pytest.skip('ROS comes from a sourced installation, not the PyPI wheels')
    env = {k: v for k, v in os.environ.items() if k != 'LD_LIBRARY_PATH'}
    env['_ROS_WHEELS_BOOTSTRAP_COMPLETE'] = '1'
    code = 'import rclpy, vision_msgs.msg; print("ok")'
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'ok'


def test_built_type_hash_matches_rosbags():
    """The built Detection2DArray has the RIHS01 hash rosbags computes from the .msg files.

    Replay writes and reads bags with rosbags; a different hash would make its bags a different
    type for the live node.
    """
    from ament_index_python.packages import get_package_share_directory
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    share = Path(get_package_share_directory('vision_msgs'))
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted((REPO_ROOT / 'third_party' / 'vision_msgs' / 'msg').glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'vision_msgs/msg/{path.stem}'))
    store.register(types)
    for name in ('Detection2DArray', 'Detection2D', 'BoundingBox2D'):
        path = share / 'msg' / f'{name}.json'
        if not path.is_file():
            pytest.skip(f'{path} absent (distros before Iron have no type hashes)')
        desc = json.loads(path.read_text())
        built = {h['type_name']: h['hash_string'] for h in desc['type_hashes']}
        assert built[f'vision_msgs/msg/{name}'] == store.hash_rihs01(f'vision_msgs/msg/{name}')
