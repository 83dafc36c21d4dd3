"""Per-track bookkeeping and the shared bank of Kalman states.

A :class:`Track` holds the scalars ByteTrack needs (ID, class, life-cycle state, when it started
and was last seen); its filter state lives in one row (``slot``) of a :class:`StateBank`, so the
tracker predicts and updates all tracks with a few array operations instead of a loop.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.tracking.snapshot import TrackState


class Track:
    """One identity.

    Times are kept twice: as update counts (``start_frame``, ``frame_id``: the reference's frame
    mode) and as stamps in nanoseconds (``start_ns``, ``last_ns``: time mode).
    """

    __slots__ = (
        'track_id', 'class_id', 'state', 'is_activated', 'slot', 'score', 'visibility',
        'start_frame', 'frame_id', 'start_ns', 'last_ns', 'state_ns', 'tracklet_len',
        'removed_at', 'det_index')

    def __init__(self, track_id: int, class_id: int, slot: int, score: float,
                 frame_id: int, stamp_ns: int, det_index: int, activated: bool) -> None:
        self.track_id = track_id
        self.class_id = class_id
        self.state = TrackState.TRACKED
        self.is_activated = activated
        self.slot = slot
        self.score = score
        self.visibility = 1.0
        self.start_frame = frame_id
        self.frame_id = frame_id        # update count of the last matched detection
        self.start_ns = stamp_ns
        self.last_ns = stamp_ns         # stamp of the last matched detection
        self.state_ns = stamp_ns        # stamp the Kalman state refers to
        self.tracklet_len = 0
        self.removed_at = -1            # update count when first marked removed (-1: never)
        self.det_index = det_index      # row of the detection matched in this update, else -1

    def __repr__(self) -> str:
        return (f'Track(id={self.track_id}, class={self.class_id}, '
                f'state={TrackState(self.state).name}, activated={self.is_activated})')


class StateBank:
    """Contiguous Kalman states with a free list.

    ``mean`` (cap, 8), ``cov`` (cap, 8, 8) and ``clock`` (cap,) int64: the time each state
    refers to (update count in frame mode, stamp in ns otherwise).
    """

    def __init__(self, capacity: int = 64) -> None:
        self.mean: NDArray[np.float64] = np.zeros((capacity, 8))
        self.cov: NDArray[np.float64] = np.zeros((capacity, 8, 8))
        self.clock: NDArray[np.int64] = np.zeros(capacity, np.int64)
        self._free: list[int] = list(range(capacity - 1, -1, -1))

    def alloc(self, n: int) -> NDArray[np.int64]:
        """Reserve ``n`` rows (growing the arrays when full) and return their indices."""
        if n > len(self._free):
            old = self.mean.shape[0]
            new = max(2 * old, old + n)
            self.mean = np.concatenate([self.mean, np.zeros((new - old, 8))])
            self.cov = np.concatenate([self.cov, np.zeros((new - old, 8, 8))])
            self.clock = np.concatenate([self.clock, np.zeros(new - old, np.int64)])
            self._free[:0] = range(new - 1, old - 1, -1)
        out = [self._free.pop() for _ in range(n)]
        return np.asarray(out, dtype=np.int64)

    def release(self, slots: list[int]) -> None:
        """Give rows back for reuse."""
        self._free.extend(slots)

    def clear(self) -> None:
        """Release every row."""
        cap = self.mean.shape[0]
        self._free = list(range(cap - 1, -1, -1))
