"""Join masks and images to detection arrays by header stamp, identically in node and replay.

The release decision is a deterministic function of the sequence of calls and the ``now_ns``
values passed with them, so the live node (``now`` = its ROS clock, sim time under
``use_sim_time``) and the bag replay (``now`` = each message's bag timestamp) join the same
messages the same way.

API (everything in nanoseconds; payloads are opaque to the joiner)::

    joiner = StampJoiner(tolerance_ns, sides=('mask', 'image'), max_queue=30)
    out = joiner.add_detections(stamp_ns, msg, now_ns)      # -> list[Joined]
    out = joiner.add_side('mask', stamp_ns, msg, now_ns)     # -> list[Joined]
    out = joiner.poll(now_ns)                                # timer / clock advance
    out = joiner.flush()                                     # end of input: release all
    joiner.stats()                                           # counters (see JoinStats)

Each :class:`Joined` holds the detection payload, the side payloads it was joined with
(``sides['mask']`` is None when missed) and which sides missed.

Rules:
1. Detection arrays are released in arrival order (never reordered, so stamps stay monotone).
2. The head detection array (stamp ``t``) is released as soon as every wanted side has a
   buffered message with ``|stamp - t| <= tolerance``; among candidates the nearest stamp wins
   (earliest arrival on ties). A candidate nearer to another waiting detection array is left
   for that one, and after a release only side stamps later than the released ``t`` are
   candidates (a late mask of frame n never joins frame n+1), except after stamps jump back.
3. It waits at most ``tolerance``: at ``now >= arrival_now + tolerance`` it is released with
   whatever matched and each missing side is counted as a miss. Every call first expires with
   its ``now``, then adds its message, so a side message arriving after the deadline never
   joins. ``now`` going backwards (a bag loop under ``--clock``) expires everything waiting.
4. Bounded: more than ``max_queue`` waiting detection arrays releases the oldest (miss
   counted); a side buffer holds at most ``max_queue`` messages (oldest dropped, counted).
   A released detection array discards side messages that arrived before it with stamps at or
   before its own (they can never join a later frame).
With no wanted sides every detection array is released immediately.

"now" is each message's ARRIVAL time, never the time its callback happens to run: the node
passes the middleware's receive time (:class:`ArrivalFeed`), the replay the bag's log time
(which is the recorder's receive time). Before the node's join timer expires anything it takes
every message already received on its input subscriptions and feeds them, in receive order,
first; so a mask that arrived in time joins even when the node ran late, and the node and the
replay make the same decisions for the same message sequence.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Joined:
    """One detection array and the side messages joined to it."""

    stamp_ns: int
    detections: Any
    sides: dict[str, Any]
    missed: tuple[str, ...]
    arrival_ns: int
    seq: int


@dataclass
class JoinStats:
    """Counters of the joiner (kept cumulative)."""

    released: int = 0
    joined: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)
    side_dropped: dict[str, int] = field(default_factory=dict)
    overflow_released: int = 0
    clock_jumps: int = 0


@dataclass
class _Item:
    stamp_ns: int
    payload: Any
    arrival_ns: int
    seq: int


class StampJoiner:
    """Stamp joiner with bounded buffers and a bounded wait (see the module docstring)."""

    def __init__(self, tolerance_ns: int, sides: tuple[str, ...] = ('mask',), *,
                 max_queue: int = 30) -> None:
        if tolerance_ns < 0:
            raise ValueError('tolerance_ns must be >= 0')
        if max_queue < 1:
            raise ValueError('max_queue must be >= 1')
        self.tolerance_ns = int(tolerance_ns)
        self.sides = tuple(sides)
        self.max_queue = int(max_queue)
        self._pending: deque[_Item] = deque()
        self._buffers: dict[str, list[_Item]] = {s: [] for s in self.sides}
        self._seq = 0
        self._last_now: int | None = None
        self._last_released: int | None = None
        self.stats_ = JoinStats(joined=dict.fromkeys(self.sides, 0),
                                misses=dict.fromkeys(self.sides, 0),
                                side_dropped=dict.fromkeys(self.sides, 0))

    # ----------------------------------------------------------------------------- input
    def add_detections(self, stamp_ns: int, payload: Any, now_ns: int) -> list[Joined]:
        """Queue a detection array; returns whatever this releases (possibly itself)."""
        out = self._advance(now_ns)
        self._seq += 1
        self._pending.append(_Item(int(stamp_ns), payload, int(now_ns), self._seq))
        while len(self._pending) > self.max_queue:
            self.stats_.overflow_released += 1
            out.append(self._release(self._pending.popleft(), force=True))
        out.extend(self._drain(int(now_ns)))
        return out

    def add_side(self, side: str, stamp_ns: int, payload: Any, now_ns: int) -> list[Joined]:
        """Buffer a mask/image message; returns detection arrays this completes."""
        if side not in self._buffers:
            raise KeyError(f'unknown side {side!r}; this joiner waits for {self.sides}')
        out = self._advance(now_ns)
        self._seq += 1
        buf = self._buffers[side]
        buf.append(_Item(int(stamp_ns), payload, int(now_ns), self._seq))
        if len(buf) > self.max_queue:
            del buf[0]
            self.stats_.side_dropped[side] += 1
        out.extend(self._drain(int(now_ns)))
        return out

    def poll(self, now_ns: int) -> list[Joined]:
        """Release what is complete or has waited ``tolerance`` by ``now_ns``."""
        out = self._advance(now_ns)
        out.extend(self._drain(int(now_ns)))
        return out

    def flush(self) -> list[Joined]:
        """Release every waiting detection array (end of input, shutdown)."""
        return [self._release(self._pending.popleft(), force=True)
                for _ in range(len(self._pending))]

    # ----------------------------------------------------------------------------- state
    @property
    def waiting(self) -> int:
        """Detection arrays currently waiting for a side message."""
        return len(self._pending)

    def next_deadline_ns(self) -> int | None:
        """When the head detection array expires (None when nothing waits)."""
        return self._pending[0].arrival_ns + self.tolerance_ns if self._pending else None

    def stats(self) -> dict[str, Any]:
        """Flat counters: released, <side>_joined, <side>_misses, <side>_dropped, ..."""
        s = self.stats_
        out: dict[str, Any] = {'released': s.released, 'waiting': self.waiting,
                               'overflow_released': s.overflow_released,
                               'clock_jumps': s.clock_jumps}
        for side in self.sides:
            out[f'{side}_joined'] = s.joined[side]
            out[f'{side}_misses'] = s.misses[side]
            out[f'{side}_dropped'] = s.side_dropped[side]
        return out

    # ----------------------------------------------------------------------------- rules
    def _advance(self, now_ns: int) -> list[Joined]:
        """Expire by ``now`` before anything new is added (rule 3)."""
        now_ns = int(now_ns)
        out: list[Joined] = []
        if self._last_now is not None and now_ns < self._last_now:
            self.stats_.clock_jumps += 1
            out.extend(self.flush())
        self._last_now = now_ns
        out.extend(self._drain(now_ns))
        return out

    def _drain(self, now_ns: int) -> list[Joined]:
        out = []
        while self._pending:
            head = self._pending[0]
            complete = all(self._candidate(side, head) is not None for side in self.sides)
            if not complete and now_ns < head.arrival_ns + self.tolerance_ns:
                break
            self._pending.popleft()
            out.append(self._release(head, force=False))
        return out

    def _candidate(self, side: str, det: _Item) -> int | None:
        """Index in the side buffer of the message that joins ``det``, or None."""
        t = det.stamp_ns
        monotone = self._last_released is None or t > self._last_released
        best, best_d = None, None
        for i, item in enumerate(self._buffers[side]):
            d = abs(item.stamp_ns - t)
            if d > self.tolerance_ns:
                continue
            if monotone and self._last_released is not None and \
                    item.stamp_ns <= self._last_released:
                continue
            if best_d is None or d < best_d:
                best, best_d = i, d
        if best is None:
            return None
        stamp = self._buffers[side][best].stamp_ns
        for other in self._pending:
            if other is not det and abs(stamp - other.stamp_ns) < best_d:
                return None  # nearer to another waiting array: leave it for that one
        return best

    def _release(self, det: _Item, *, force: bool) -> Joined:
        sides: dict[str, Any] = {}
        missed = []
        for side in self.sides:
            idx = self._candidate(side, det)
            if idx is None:
                sides[side] = None
                missed.append(side)
                self.stats_.misses[side] += 1
            else:
                sides[side] = self._buffers[side].pop(idx).payload
                self.stats_.joined[side] += 1
            # rule 4: older side messages at or before this stamp can never join later
            self._buffers[side] = [m for m in self._buffers[side]
                                   if not (m.seq < det.seq and m.stamp_ns <= det.stamp_ns)]
        self._last_released = det.stamp_ns
        self.stats_.released += 1
        return Joined(det.stamp_ns, det.payload, sides, tuple(missed), det.arrival_ns, det.seq)


DETECTIONS = 'detections'


class ArrivalFeed:
    """Feeds a :class:`StampJoiner` messages in arrival order with a non-decreasing "now".

    ``feed`` takes a batch of ``(arrival_ns, kind, stamp_ns, payload)`` (``kind`` =
    :data:`DETECTIONS` or a side name), sorts it by arrival (stable) and adds each message with
    its own arrival time as ``now``. Within one kind (one subscription queue) the order is the
    order taken: a message counts as arrived no earlier than its predecessor on that queue (a
    reliable middleware delivers in order, so a message received early behind one that was
    retransmitted late is only available after it; without this, sorting would reorder
    detection arrays). Across queues, messages of a later batch can have earlier receive times
    than ones already fed: "now" never goes back, they count as arriving with the latest.
    Only :meth:`reset` (the node calls it when its ROS clock jumps back, a bag loop under sim
    time) lets "now" go back, which makes the joiner release what waits.
    """

    def __init__(self, joiner: StampJoiner) -> None:
        self.joiner = joiner
        self._last: int | None = None
        self._last_of: dict[str, int] = {}

    def reset(self) -> None:
        """Forget the arrival history: the next "now" may be earlier (clock jumped back)."""
        self._last = None
        self._last_of.clear()

    def now(self, t_ns: int) -> int:
        """``t_ns``, or the latest "now" given when that is later."""
        t_ns = int(t_ns)
        if self._last is not None and t_ns < self._last:
            return self._last
        self._last = t_ns
        return t_ns

    def feed(self, items: Iterable[tuple[int, str, int, Any]]) -> list[Joined]:
        """Add a batch of received messages in arrival order; returns what they release."""
        ordered = []
        for arrival, kind, stamp, payload in items:
            arrival = max(int(arrival), self._last_of.get(kind, arrival))
            self._last_of[kind] = arrival
            ordered.append((arrival, kind, stamp, payload))
        out: list[Joined] = []
        for arrival, kind, stamp, payload in sorted(ordered, key=lambda item: item[0]):
            now = self.now(arrival)
            if kind == DETECTIONS:
                out.extend(self.joiner.add_detections(stamp, payload, now))
            else:
                out.extend(self.joiner.add_side(kind, stamp, payload, now))
        return out

    def poll(self, now_ns: int) -> list[Joined]:
        """Expire by ``now_ns``; call only after feeding everything received before it."""
        return self.joiner.poll(self.now(now_ns))
