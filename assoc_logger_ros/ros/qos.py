"""QoS profiles of the tracker node, from the ``qos_*`` settings.

Inputs: keep-last ``qos_depth``, volatile, reliability from ``qos_reliability``. Reliable (the
default) matches ``ros2 bag play`` (it offers reliable unless the bag recorded otherwise) and
lossless pipelines; ``best_effort`` connects to every publisher, including best-effort camera
drivers, which a reliable subscriber would not. Outputs are reliable keep-last ``qos_depth``: a
reliable publisher serves both kinds of subscriber.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from assoc_logger_ros.config import NodeConfig

_RELIABILITY = {'reliable': ReliabilityPolicy.RELIABLE,
                'best_effort': ReliabilityPolicy.BEST_EFFORT}


def input_qos(cfg: NodeConfig) -> QoSProfile:
    """Subscriptions: detections, masks, image."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=cfg.qos_depth,
                      reliability=_RELIABILITY[cfg.qos_reliability],
                      durability=DurabilityPolicy.VOLATILE)


def output_qos(cfg: NodeConfig) -> QoSProfile:
    """Publishers: tracks."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=cfg.qos_depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def camera_info_qos() -> QoSProfile:
    """CameraInfo: best effort (connects to sensor-data and reliable drivers), latest only."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


def diagnostics_qos() -> QoSProfile:
    """/diagnostics, as diagnostic_updater publishes it."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
