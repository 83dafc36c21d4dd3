"""Bounds on what one frame may cost the tracker: coordinate sanity and a detection cap.

A detector gone wrong (or a hostile publisher) can send tens of thousands of boxes, or boxes
millions of pixels wide; the tracker must stay real-time anyway. What these bounds remove is
counted per update (:class:`InputDrops`) so the adapters can warn and report it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Larger box coordinates are not pixels (they would overflow the squared Kalman noise).
MAX_COORD_PX = 1e6


@dataclass
class InputDrops:
    """Detections one update (or, summed, a session) did not track, by reason."""

    out_of_range: int = 0    # a coordinate beyond MAX_COORD_PX in magnitude
    over_max_detections: int = 0  # lowest-scoring beyond max_detections
    capped_frames: int = 0   # updates that hit max_detections

    def __bool__(self) -> bool:
        return bool(self.out_of_range or self.over_max_detections)

    def add(self, other: InputDrops) -> None:
        """Accumulate ``other`` into these totals."""
        self.out_of_range += other.out_of_range
        self.over_max_detections += other.over_max_detections
        self.capped_frames += other.capped_frames


def coords_in_range(boxes: NDArray[np.float64]) -> NDArray[np.bool_] | None:
    """Rows whose coordinates are all within :data:`MAX_COORD_PX` (None: every row is)."""
    if not len(boxes):
        return None
    mag = np.abs(boxes)
    if mag.max() <= MAX_COORD_PX:       # the common case: one reduction
        return None
    return mag.max(axis=1) <= MAX_COORD_PX   # NaN rows fail too


def keep_top_scores(rows: NDArray[np.int64], scores: NDArray[np.float64], limit: int
                    ) -> NDArray[np.int64]:
    """The ``limit`` highest-scoring of ``rows`` (ties: earlier row first), in row order."""
    if rows.size <= limit:
        return rows
    top = np.argsort(-scores[rows], kind='stable')[:limit]
    return rows[np.sort(top)]
