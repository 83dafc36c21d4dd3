"""OC-SORT's velocity-direction consistency (OCM) as a small stage-1 cost term.

A person keeps walking the same way for a few frames; a detection that lies in the direction the
track has been moving is a likelier match than one behind it, which matters when two people
cross and their boxes overlap alike. OC-SORT (Cao et al., CVPR 2023) adds to the IoU the angle
agreement between the track's direction (over its last observations) and the direction from an
earlier observation to the candidate detection, weighted by the detection score. Here each
track keeps its last ``HISTORY`` matched centres; with at least that many, the direction
``c[-1] - c[0]`` is compared with ``det - c[1]`` (the same number of steps), and the stage-1
cost of an overlapping pair drops by ``weight * score * (pi/2 - angle) / pi`` (it rises for a
detection behind the track). Pairs without overlap stay at cost 1 (never eligible).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

HISTORY = 3          # matched centres kept per track
MIN_MOVE = 0.05      # a direction only from a move of at least this times the box height

_F64 = NDArray[np.float64]


def centres(boxes: _F64) -> _F64:
    """(N, 2) centres of (N, 4) xyxy boxes."""
    return 0.5 * (boxes[:, 0:2] + boxes[:, 2:4])


def direction_term(hist: _F64, n_obs: NDArray[np.int64], det_centre: _F64,
                   det_score: _F64, weight: float, det_height: _F64 | None = None) -> _F64:
    """Per pair (aligned arrays): the OCM cost change (negative: the direction agrees).

    Args:
        hist: (P, HISTORY, 2) the pair's track's last matched centres, oldest first.
        n_obs: (P,) how many of them are real (fewer than HISTORY: no term).
        det_centre: (P, 2) the pair's detection centre; ``det_score`` (P,) its score.
        det_height: (P,) its height: tracks that moved less than ``MIN_MOVE`` of it over their
            history (standing people: the direction is jitter) get no term; None: no floor.
    """
    v = hist[:, -1] - hist[:, 0]
    u = det_centre - hist[:, 1]
    nv = np.hypot(v[:, 0], v[:, 1])
    nu = np.hypot(u[:, 0], u[:, 1])
    ok = (n_obs >= HISTORY) & (nv > 1e-6) & (nu > 1e-6)
    if det_height is not None:
        ok &= nv >= MIN_MOVE * det_height
    cos = np.where(ok, (v[:, 0] * u[:, 0] + v[:, 1] * u[:, 1]) / np.maximum(nv * nu, 1e-12),
                   0.0)
    agree = (0.5 * np.pi - np.arccos(np.clip(cos, -1.0, 1.0))) / np.pi
    return np.where(ok, -weight * det_score * agree, 0.0)


def add_direction_term(cost: _F64, hist: _F64, n_obs: NDArray[np.int64], det_box: _F64,
                       det_score: _F64, weight: float) -> _F64:
    """``cost`` (aligned pairs) plus the term where the pair overlaps (cost below 1)."""
    term = direction_term(hist, n_obs, centres(det_box), det_score, weight,
                          det_box[:, 3] - det_box[:, 1])
    return np.where(cost < 1.0, cost + term, cost)


def push(hist: _F64, n_obs: NDArray[np.int64], centre: _F64) -> tuple[_F64, NDArray[np.int64]]:
    """The histories after one more matched centre per row."""
    out = np.concatenate([hist[:, 1:], centre[:, None, :]], axis=1)
    return out, np.minimum(n_obs + 1, HISTORY)
