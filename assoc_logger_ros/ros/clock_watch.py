"""Notice ``use_sim_time`` without a ``/clock``: the node would otherwise be silent.

Under ``use_sim_time`` the node's timers (join deadlines, diagnostics) run on ROS time, which
stays at zero until the first ``/clock`` message: no join is released, no diagnostics report is
published, and nothing says why. The node asks :class:`SimClockWatch` once a second on a steady
timer; it answers with a warning text once detections have been arriving for ``wait_s`` seconds
and no clock has come, and remembers how long the wait was for the first report after it came.
No ROS import: tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

WAIT_S = 3.0  # grace between the first detection array and the first warning


@dataclass
class SimClockWatch:
    """State of one node's wait for ``/clock`` (times are ``time.monotonic()`` seconds)."""

    wait_s: float = WAIT_S
    first_detection_t: float | None = None
    clock_seen_t: float | None = None
    waited_s: float = 0.0  # how long detections waited for the clock (0: it was there)

    def check(self, now: float, *, detections_seen: bool, clock_seen: bool) -> str | None:
        """A warning text while detections wait for a clock past ``wait_s``, else None."""
        if clock_seen:
            if self.clock_seen_t is None:
                self.clock_seen_t = now
                if self.first_detection_t is not None:
                    self.waited_s = now - self.first_detection_t
            return None
        if not detections_seen:
            return None
        if self.first_detection_t is None:
            self.first_detection_t = now
        waiting = now - self.first_detection_t
        if waiting < self.wait_s:
            return None
        return (f'use_sim_time is true but no /clock has been received in the {waiting:.0f} s '
                'since the first detection array: join deadlines and diagnostics wait for '
                'ROS time. Publish a clock (ros2 bag play --clock) or set use_sim_time:=false.')

    @property
    def waiting(self) -> bool:
        """True while detections have arrived and no clock has."""
        return self.clock_seen_t is None and self.first_detection_t is not None

    def state(self) -> str:
        """Short value for diagnostics: ``ok``, ``waiting`` (no clock yet) or ``idle``."""
        if self.clock_seen_t is not None:
            return 'ok'
        return 'waiting' if self.first_detection_t is not None else 'idle'
