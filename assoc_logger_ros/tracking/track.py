"""Per-track state of one tracker instance, stored column-wise.

ByteTrack needs, per track, a Kalman state, an ID, a class, a life-cycle state and when it started
and was last seen. :class:`TrackTable` keeps each of these as one array indexed by a *slot*, so the
tracker predicts, updates and filters whole track lists with a few array operations and no
per-track Python loop; :class:`TrackInfo` is a frozen copy of one row for inspection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.tracking.snapshot import TrackState

_COLUMNS: dict[str, tuple[type, tuple[int, ...]]] = {
    'mean': (np.float64, (8,)), 'cov': (np.float64, (3, 4)),
    'clock': (np.int64, ()), 'track_id': (np.int64, ()), 'class_id': (np.int64, ()),
    'state': (np.int8, ()), 'activated': (np.bool_, ()), 'score': (np.float64, ()),
    'visibility': (np.float64, ()), 'start_frame': (np.int64, ()), 'frame_id': (np.int64, ()),
    'start_ns': (np.int64, ()), 'last_ns': (np.int64, ()), 'tracklet_len': (np.int64, ()),
    'removed_at': (np.int64, ()), 'det_index': (np.int64, ()),
    # state right after the last matched detection, and that detection (xyah): OC-SORT ORU
    'obs_mean': (np.float64, (8,)), 'obs_cov': (np.float64, (3, 4)), 'obs_z': (np.float64, (4,)),
    # last matched centres, oldest first, and how many are real: OCM direction (ocm_weight)
    'dir_hist': (np.float64, (3, 2)), 'dir_n': (np.int64, ()),
}


@dataclass(frozen=True)
class TrackInfo:
    """A copy of one track's state, for inspection and tests."""

    track_id: int
    class_id: int
    state: TrackState
    activated: bool
    box: tuple[float, float, float, float]
    score: float
    start_frame: int
    frame_id: int


class TrackTable:
    """Every track's state in slot-indexed arrays (one row per track), with a free list.

    Columns: ``mean`` (cap, 8) and ``cov`` (cap, 3, 4) Kalman state (the covariance in the block
    form of :func:`~assoc_logger_ros.tracking.kalman.predict_blocks`); ``clock`` the time the state
    refers to (update count in frame mode, stamp in ns otherwise); ``track_id``, ``class_id``,
    ``state`` (:class:`TrackState`), ``activated`` (confirmed), ``score`` and ``visibility`` of the
    last matched detection, ``start_frame``/``frame_id`` (update counts: first and last match),
    ``start_ns``/``last_ns`` (the same as stamps), ``tracklet_len``, ``removed_at`` (update count
    when first marked removed, -1 never), ``det_index`` (detection matched in this update, -1)
    and ``obs_mean``/``obs_cov``/``obs_z`` (state after, and xyah of, the last matched detection;
    kept only with ``oc_reupdate``).
    The tracker keeps ordered arrays of slots for its tracked and lost lists, so a whole list is
    read or written with one fancy index.
    """

    mean: NDArray[np.float64]
    cov: NDArray[np.float64]
    clock: NDArray[np.int64]
    track_id: NDArray[np.int64]
    class_id: NDArray[np.int64]
    state: NDArray[np.int8]
    activated: NDArray[np.bool_]
    score: NDArray[np.float64]
    visibility: NDArray[np.float64]
    start_frame: NDArray[np.int64]
    frame_id: NDArray[np.int64]
    start_ns: NDArray[np.int64]
    last_ns: NDArray[np.int64]
    tracklet_len: NDArray[np.int64]
    removed_at: NDArray[np.int64]
    det_index: NDArray[np.int64]
    obs_mean: NDArray[np.float64]
    obs_cov: NDArray[np.float64]
    obs_z: NDArray[np.float64]
    dir_hist: NDArray[np.float64]
    dir_n: NDArray[np.int64]

    def __init__(self, capacity: int = 64) -> None:
        self._cap = 0
        self._free: list[int] = []
        for name, (dtype, shape) in _COLUMNS.items():
            setattr(self, name, np.zeros((0, *shape), dtype))
        self._grow(capacity)

    @property
    def capacity(self) -> int:
        """Rows allocated (used or free)."""
        return self._cap

    def _grow(self, new_cap: int) -> None:
        old = self._cap
        for name, (dtype, shape) in _COLUMNS.items():
            arr = getattr(self, name)
            ext = np.zeros((new_cap - old, *shape), dtype)
            setattr(self, name, np.concatenate([arr, ext]))
        self._free[:0] = range(new_cap - 1, old - 1, -1)
        self._cap = new_cap

    def alloc(self, n: int) -> NDArray[np.int64]:
        """Reserve ``n`` rows (growing the arrays when full) and return their indices."""
        if n > len(self._free):
            self._grow(max(2 * self._cap, self._cap + n))
        out = self._free[len(self._free) - n:][::-1]
        del self._free[len(self._free) - n:]
        return np.asarray(out, dtype=np.int64)

    def release(self, slots: NDArray[np.int64]) -> None:
        """Give rows back for reuse."""
        self._free.extend(np.asarray(slots, np.int64).tolist())

    def clear(self) -> None:
        """Release every row."""
        self._free = list(range(self._cap - 1, -1, -1))

    def info(self, slot: int, wh: bool = False) -> TrackInfo:
        """A frozen copy of one row (``wh``: the mean is xywh, ``kalman_state: xywh``)."""
        m = self.mean[slot]
        w, h = (m[2] if wh else m[2] * m[3]), m[3]
        x1, y1 = m[0] - w / 2, m[1] - h / 2
        return TrackInfo(int(self.track_id[slot]), int(self.class_id[slot]),
                         TrackState(int(self.state[slot])), bool(self.activated[slot]),
                         (float(x1), float(y1), float(x1 + w), float(y1 + h)),
                         float(self.score[slot]), int(self.start_frame[slot]),
                         int(self.frame_id[slot]))
