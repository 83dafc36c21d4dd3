"""Publish a bag's messages into a running ROS graph with rclpy, paced by bag time.

Used by the demo (a ``tracker_node`` subprocess) and by the test that compares the node's samples
with the replay's. The CDR bytes are published as they are stored (``publish`` of raw bytes), so
the node receives exactly the bag's messages. A subscription to ``tracks`` counts the frames the
node has processed, which is how :meth:`BagPlayer.wait_drained` knows the node is done.

``ros2 bag play`` is not needed (and not installable here); unlike it, this player waits until
the node's subscriptions are matched before the first message, so nothing is lost at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
import time
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from assoc_logger_ros.bag import bagio

Spin = Callable[[float], None]


def _qos(depth: int = 100) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


class BagPlayer:
    """Publishes the detections/masks/image topics of a bag and counts ``tracks`` replies.

    Args:
        node: the rclpy node to publish from (spun by the caller's ``spin`` function).
        topics: bag topic -> topic to publish on (default: the same names).
        tracks_topic: the tracker's output topic, counted in :attr:`tracks_received`.
    """

    def __init__(self, node: Node, topics: dict[str, str] | None = None,
                 tracks_topic: str = '/tracks') -> None:
        self.node = node
        self.topics = dict(topics or {bagio.TOPIC_DETECTIONS: bagio.TOPIC_DETECTIONS,
                                      bagio.TOPIC_MASKS: bagio.TOPIC_MASKS,
                                      bagio.TOPIC_IMAGE: bagio.TOPIC_IMAGE})
        self._pubs: dict[str, Any] = {}
        self.tracks_received = 0
        self.published = 0
        self.published_detections = 0
        self._sub = node.create_subscription(Detection2DArray, tracks_topic, self._on_tracks,
                                             _qos())

    def _on_tracks(self, _msg: Any) -> None:
        self.tracks_received += 1

    def _publisher(self, bag_topic: str, msgtype: str) -> Any:
        pub = self._pubs.get(bag_topic)
        if pub is None:
            cls = Detection2DArray if msgtype == bagio.DETECTION_ARRAY else Image
            pub = self._pubs[bag_topic] = self.node.create_publisher(
                cls, self.topics[bag_topic], _qos())
        return pub

    def wait_for_subscribers(self, bag: str | Path, spin: Spin, timeout_s: float = 30.0,
                             topics: Sequence[str] | None = None) -> bool:
        """Create the publishers and wait until each of ``topics`` has a subscriber."""
        with bagio.open_reader(bag) as reader:
            for conn in reader.connections:
                if conn.topic in self.topics:
                    self._publisher(conn.topic, conn.msgtype)
        wanted = [t for t in (topics or list(self._pubs)) if t in self._pubs]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self._pubs[t].get_subscription_count() > 0 for t in wanted):
                # and the node sees us (its subscription matched): give discovery a moment
                spin(0.2)
                return True
            spin(0.05)
        return False

    def play(self, bag: str | Path, spin: Spin, *, rate: float = 1.0, max_in_flight: int = 8,
             stall_s: float = 5.0, on_message: Callable[[int], None] | None = None) -> int:
        """Publish every message of the mapped topics at ``rate`` x bag time; returns count.

        Closed loop: a detection array is not published while ``max_in_flight`` earlier ones
        have no ``tracks`` reply yet (the node's input queues are bounded, keep-last, so an
        open-loop player would lose messages whenever the node falls behind); the schedule is
        shifted by the time waited, so the spacing between messages stays as recorded. After
        ``stall_s`` without a reply it publishes anyway (a skipped frame has no reply).
        """
        t0_wall = time.monotonic()
        t0_bag: int | None = None
        with bagio.open_reader(bag) as reader:
            conns = [c for c in reader.connections if c.topic in self.topics]
            for conn, log_ns, raw in reader.messages(connections=conns):
                if t0_bag is None:
                    t0_bag = log_ns
                is_det = conn.topic == bagio.TOPIC_DETECTIONS  # not /gt, the same type
                if is_det and max_in_flight > 0:
                    waited = self._wait_in_flight(spin, max_in_flight, stall_s)
                    t0_wall += waited
                due = t0_wall + (log_ns - t0_bag) / 1e9 / rate
                while (left := due - time.monotonic()) > 0:
                    spin(min(left, 0.01))
                self._publisher(conn.topic, conn.msgtype).publish(bytes(raw))
                self.published += 1
                if is_det:
                    self.published_detections += 1
                if on_message is not None:
                    on_message(self.published)
                spin(0.0)
        return self.published

    def _wait_in_flight(self, spin: Spin, limit: int, stall_s: float) -> float:
        start = time.monotonic()
        last, last_change = self.tracks_received, start
        while self.published_detections - self.tracks_received >= limit:
            spin(0.005)
            now = time.monotonic()
            if self.tracks_received != last:
                last, last_change = self.tracks_received, now
            elif now - last_change > stall_s:
                break
        return time.monotonic() - start

    def wait_drained(self, spin: Spin, expected: int, idle_s: float = 5.0,
                     timeout_s: float = 120.0) -> bool:
        """Spin until ``expected`` tracks messages arrived, or none for ``idle_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        last_count, last_change = self.tracks_received, time.monotonic()
        while self.tracks_received < expected and time.monotonic() < deadline:
            spin(0.05)
            if self.tracks_received != last_count:
                last_count, last_change = self.tracks_received, time.monotonic()
            elif time.monotonic() - last_change > idle_s:
                return False
        return self.tracks_received >= expected
