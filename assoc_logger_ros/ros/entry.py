"""Console-script entry points that hear a stop signal from their first instruction.

Importing rclpy, numpy and the node takes seconds on a loaded machine. A Ctrl-C, or a launch
shutting down (its bag player failed at once), in that window would otherwise end the process
with a KeyboardInterrupt traceback and exit code -2. These entry points install a handler that
only records the signal, import the node, and hand what was recorded to its ``main``, which then
exits 0 without starting; and they exit right after ``main`` (see :func:`_exit_now`).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn


def _record_stop_signals() -> list[int]:
    received: list[int] = []

    def record(signum: int, _frame: object) -> None:
        received.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, record)
    return received


def _exit_now(rc: int) -> NoReturn:
    """Exit as soon as ``main`` is done: the samples are on disk and the node left the graph.

    Interpreter finalization (module teardown of rclpy, numpy, scipy...) took a further 1-3 s
    on a loaded machine, long enough for ``ros2 launch`` to escalate to SIGTERM (5 s after its
    SIGINT) and report the node as died. The stop-signal recorder stays installed until then,
    so a late SIGTERM cannot kill the process either.
    """
    import gc

    gc.collect()  # the closed writer's queues and locks: their finalizers release semaphores
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def tracker_node() -> NoReturn:
    """``tracker_node``: the plain node."""
    early = _record_stop_signals()
    from assoc_logger_ros.ros import node

    _exit_now(node.main(early_signals=early))


def tracker_lifecycle_node() -> NoReturn:
    """``tracker_lifecycle_node``: the managed node."""
    early = _record_stop_signals()
    from assoc_logger_ros.ros import lifecycle_node, node

    _exit_now(node.main(node_class=lifecycle_node.TrackerLifecycleNode, early_signals=early))


if __name__ == '__main__':
    tracker_node()
