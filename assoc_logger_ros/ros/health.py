"""What the node failed to do in time, made visible: slow callbacks, lost and skipped input.

A tracker that silently falls behind looks healthy on ``/diagnostics`` while most messages never
produce tracks. :class:`NodeHealth` counts

* callbacks that ran over their budget (one nominal frame, ``1 / frame_rate``),
* input messages the middleware reports lost (the subscription's ``message_lost`` QoS event,
  where the RMW supports it),
* detection arrays that never reached the subscription, estimated from stamp gaps against the
  measured input interval (a KEEP_LAST queue overwrites silently; a publisher pausing shows up
  here too, hence "estimated"),
* detection arrays received but never tracked (skipped),

and warns about each through the node's throttled ``warn``. Nothing here touches the tracker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from assoc_logger_ros.frame import Frame

Warn = Callable[[str, str], None]   # (kind, text): the node's throttled warning

_GAP_FACTOR = 1.5      # a stamp gap over this many measured intervals lost messages
_MIN_INTERVALS = 8     # intervals measured before gaps are judged


class NodeHealth:
    """Counters for stalls and drops; :meth:`values` goes into ``/diagnostics``."""

    def __init__(self, budget_s: float, warn: Warn) -> None:
        self.budget_s = float(budget_s)
        self._warn = warn
        self.over_budget = 0
        self.worst_callback_ms = 0.0
        self.messages_lost = 0          # reported by the middleware
        self.gap_lost_estimate = 0      # from stamp gaps
        self.frames_skipped = 0
        self.loss_events = False        # the RMW reports message_lost on the detections
        self._last_stamp: int | None = None
        self._intervals: deque[int] = deque(maxlen=64)

    def callback_done(self, seconds: float, frames: int) -> None:
        """One input callback took ``seconds`` and tracked ``frames`` detection arrays."""
        ms = seconds * 1e3
        self.worst_callback_ms = max(self.worst_callback_ms, ms)
        if frames and seconds > self.budget_s:
            self.over_budget += 1
            self._warn('stall', f'callback took {ms:.0f} ms for {frames} frame(s), over the '
                       f'{self.budget_s * 1e3:.0f} ms budget (1 / frame_rate): input queues '
                       f'may overflow ({self.over_budget} slow callbacks so far)')

    def message_lost(self, topic: str, info: Any) -> None:
        """Rclpy ``message_lost`` event callback (``QoSMessageLostInfo``)."""
        n = int(getattr(info, 'total_count_change', 0) or 0)
        if n <= 0:
            return
        self.messages_lost += n
        self._warn('lost', f'{n} message(s) on {topic} lost before the node could take them '
                   f'({self.messages_lost} so far)')

    def detection_stamp(self, stamp_ns: int) -> None:
        """A detection array arrived: judge the stamp gap since the previous one."""
        last, self._last_stamp = self._last_stamp, int(stamp_ns)
        if last is None:
            return
        gap = int(stamp_ns) - last
        if gap <= 0:                    # repeated or backwards (bag loop): start measuring anew
            if gap < 0:
                self._intervals.clear()
            return
        if len(self._intervals) >= _MIN_INTERVALS:
            step = float(np.median(self._intervals))
            if gap > _GAP_FACTOR * step:
                missing = int(round(gap / step)) - 1
                if missing > 0:
                    self.gap_lost_estimate += missing
                    self._warn('gap', f'detection stamps jumped {gap / 1e6:.0f} ms (input '
                               f'interval {step / 1e6:.1f} ms): about {missing} array(s) never '
                               f'arrived ({self.gap_lost_estimate} so far; queue overflow '
                               'while the node was busy, or the publisher paused)')
                    return      # a gap is not an interval
        self._intervals.append(gap)

    def skipped(self, received: int, processed: int, waiting: int) -> None:
        """Detection arrays received but neither tracked nor still waiting for a join."""
        self.frames_skipped = max(received - processed - waiting, 0)

    def values(self) -> dict[str, Any]:
        """Flat counters for ``/diagnostics``."""
        worst, self.worst_callback_ms = self.worst_callback_ms, 0.0
        return {
            'callbacks_over_budget': self.over_budget,
            'callback_worst_ms': round(worst, 1),
            'messages_lost': self.messages_lost,
            'message_lost_events': self.loss_events,
            'input_gap_lost_estimate': self.gap_lost_estimate,
            'frames_skipped': self.frames_skipped,
        }


#: Diagnostics counters whose increase since the last report makes the level WARN.
WARN_ON_INCREASE = ('callbacks_over_budget', 'messages_lost', 'input_gap_lost_estimate',
                    'frames_skipped', 'max_detections_dropped', 'out_of_range_dropped')


def has_non_finite(frame: Frame) -> bool:
    """True when :func:`~assoc_logger_ros.frame.make_frame` dropped NaN/inf detections."""
    return any('NaN/inf' in line for line in frame.warnings)


def subscribe_counting_losses(node: Any, health: NodeHealth, msg_type: Any, topic: str,
                              callback: Any, qos: Any, **kwargs: Any) -> Any:
    """``node.create_subscription`` with a ``message_lost`` event counted in ``health``.

    An RMW without that event (rclpy raises UnsupportedEventTypeError for it) gets a plain
    subscription; the stamp-gap estimate still sees the losses.
    """
    events = message_lost_callbacks(health, topic)
    if events is not None:
        try:
            sub = node.create_subscription(msg_type, topic, callback, qos,
                                           event_callbacks=events, **kwargs)
        except Exception as err:  # noqa: BLE001 - UnsupportedEventTypeError (a C type)
            if 'Unsupported' not in type(err).__name__:
                raise
        else:
            health.loss_events = True
            return sub
    return node.create_subscription(msg_type, topic, callback, qos, **kwargs)


def message_lost_callbacks(health: NodeHealth, topic: str) -> Any:
    """``event_callbacks`` for a subscription, or None when this rclpy has no such event."""
    try:
        from rclpy.event_handler import SubscriptionEventCallbacks
    except ImportError:  # older rclpy
        try:
            from rclpy.qos_event import SubscriptionEventCallbacks
        except ImportError:
            return None
    try:
        return SubscriptionEventCallbacks(
            message_lost=lambda info: health.message_lost(topic, info))
    except TypeError:   # no message_lost in this version
        return None
