"""The ``tracker_lifecycle_node`` console script: ``assoc_tracker`` as a managed (lifecycle) node.

The convention of the ROS 2 perception nodes users run beside ours (yolo_ros's are lifecycle
nodes): a lifecycle manager or ``ros2 lifecycle set`` drives the transitions. The logic is the
plain node's (:class:`~.node.TrackerNode`); the transitions only call its start-up steps:

* configure: declare/read the parameters, create the publishers, the pipeline and its writer
  (an invalid parameter fails the transition with the schema's message; the node stays
  unconfigured);
* activate: subscriptions and timers; messages are tracked and logged;
* deactivate: subscriptions and timers go; frames still waiting for a mask are tracked and
  every queued sample is flushed to disk (the writer stays open);
* cleanup: the writer is closed and the pipeline dropped (configure starts a new session);
* shutdown (or Ctrl-C / SIGTERM in any state): as cleanup.

Parameters are declared at the first configure, so ``ros2 param`` sees them from then on.
``launch/collect.launch.py lifecycle:=true`` starts this node instead of the plain one.
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from assoc_logger_ros import config
from assoc_logger_ros.recording.writer import RecorderError
from assoc_logger_ros.ros import node as plain

FLUSH_TIMEOUT_S = 30.0


class TrackerLifecycleNode(plain.TrackerNode, LifecycleNode):
    """:class:`TrackerNode` whose start-up steps run from lifecycle transitions."""

    _start_on_init = False

    def __init__(self, **kwargs: Any) -> None:
        self._configured = False
        super().__init__(**kwargs)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Parameters, publishers, pipeline and writer."""
        try:
            self._configure()
        except (config.ConfigError, ValueError, RecorderError) as err:
            self.get_logger().error(f'configure failed: {err}')
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._closed = False
        self._configured = True
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscriptions and timers: tracking and logging run."""
        self._start_io()
        self.get_logger().info('active: tracking')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop taking messages; track what waits for a mask; flush the queued samples."""
        self._drain_and_stop()
        self.get_logger().info(f'inactive: {self.frames_processed} frames tracked so far, '
                               'samples flushed')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close the writer and drop the pipeline."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """From any state: as deactivate + cleanup."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: close what is open; the node can be configured again."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _drain_and_stop(self) -> None:
        if self._io:
            released = self._feed(self._take_received(self._clock_offset_ns()))
            self._stop_io()
            for joined in released + self.joiner.flush():
                self._process(joined)
        writer = self.pipeline.writer if self.pipeline is not None else None
        if writer is not None and not writer.flush(timeout=FLUSH_TIMEOUT_S):
            self.get_logger().warning(f'writer flush did not finish in {FLUSH_TIMEOUT_S:g} s')

    def _release(self) -> None:
        """Deactivate if needed, close the pipeline (flushing the writer), drop publishers."""
        if self._io:
            self._stop_io()
        if self._configured:
            self.close()
            for pub in (getattr(self, '_pub', None), getattr(self, '_diag_pub', None)):
                if pub is not None:
                    self.destroy_publisher(pub)
            self._pub = self._diag_pub = None
        self.pipeline = None
        self._configured = False

    def close(self, *, publish: bool = False) -> None:
        """Flush and close only when configured (an unconfigured node has no pipeline)."""
        if self._configured:
            super().close(publish=publish and bool(self._io))

    def destroy_node(self) -> None:
        """Close the pipeline (as shutdown) before the node goes away."""
        self._release()
        LifecycleNode.destroy_node(self)


def main(args: list[str] | None = None) -> int:
    """Console script ``tracker_lifecycle_node``: starts unconfigured; Ctrl-C flushes, exit 0."""
    return plain.main(args, node_class=TrackerLifecycleNode)


if __name__ == '__main__':
    sys.exit(main())
