"""vision_msgs 4.x 2D message definitions, embedded so rosbags can use them without ROS.

The single source of these definitions is ``third_party/vision_msgs/msg/*.msg`` in the
repository; this module carries the same field lists so that an installed package (where the
repository files are not present) can still register the types. ``test/test_replay_bagio.py``
checks, field by field, that the text below equals the ``.msg`` files with comments stripped.
Field names and types must match upstream exactly: they decide the RIHS01 type hash, and a
bag or peer with a different hash is a different type.
"""

from __future__ import annotations

# Type name -> definition (comments and blank lines stripped), dependency order.
DEFINITIONS: dict[str, str] = {
    'vision_msgs/msg/Point2D': 'float64 x\nfloat64 y\n',
    'vision_msgs/msg/Pose2D': 'vision_msgs/Point2D position\nfloat64 theta\n',
    'vision_msgs/msg/BoundingBox2D': (
        'vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n'),
    'vision_msgs/msg/ObjectHypothesis': 'string class_id\nfloat64 score\n',
    'vision_msgs/msg/ObjectHypothesisWithPose': (
        'vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n'),
    'vision_msgs/msg/Detection2D': (
        'std_msgs/Header header\nObjectHypothesisWithPose[] results\nBoundingBox2D bbox\n'
        'string id\n'),
    'vision_msgs/msg/Detection2DArray': 'std_msgs/Header header\nDetection2D[] detections\n',
}


def strip_msg(text: str) -> str:
    """A ``.msg`` text without comments, blank lines or surplus spaces (for comparison)."""
    lines = []
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            lines.append(' '.join(line.split()))
    return ''.join(f'{line}\n' for line in lines)
