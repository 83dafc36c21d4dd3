"""Console-script entry points that hear a stop signal from their first instruction.

Importing rclpy, numpy and the node takes seconds on a loaded machine. A Ctrl-C, or a launch
shutting down (its bag player failed at once), in that window would otherwise end the process
with a KeyboardInterrupt traceback and exit code -2. These entry points install a handler that
only records the signal, import the node, and hand what was recorded to its ``main``, which then
exits 0 without starting.
"""

from __future__ import annotations

import signal
import sys


def _record_stop_signals() -> list[int]:
    received: list[int] = []

    def record(signum: int, _frame: object) -> None:
        received.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, record)
    return received


def tracker_node() -> int:
    """``tracker_node``: the plain node."""
    early = _record_stop_signals()
    from assoc_logger_ros.ros import node

    return node.main(early_signals=early)


def tracker_lifecycle_node() -> int:
    """``tracker_lifecycle_node``: the managed node."""
    early = _record_stop_signals()
    from assoc_logger_ros.ros import lifecycle_node, node

    return node.main(node_class=lifecycle_node.TrackerLifecycleNode, early_signals=early)


if __name__ == '__main__':
    sys.exit(tracker_node())
