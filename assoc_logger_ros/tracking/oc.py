"""OC-SORT's observation-centric re-update (ORU) on the block-form Kalman filter.

A track that was lost for ``k`` frames drifted on its last velocity with nothing to correct it;
when it is matched again the plain update pulls its position to the detection but keeps the
velocity it had while drifting. ORU (Cao et al., "Observation-Centric SORT", CVPR 2023) instead
goes back to the state saved at the track's last detection and replays the gap: ``k`` predict
steps, each followed by an update with a virtual observation on the straight line from the last
detection to the new one (the last one is the real detection). The velocity then reflects where
the object actually went.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.tracking import kalman

MAX_REPLAY_STEPS = 300      # longer gaps are replayed in fewer, longer steps

_F64 = NDArray[np.float64]


def reupdate(obs_mean: _F64, obs_cov: _F64, obs_z: _F64, new_z: _F64, gap: _F64,
             noise_scale: _F64 | None = None, wh: bool = False) -> tuple[_F64, _F64]:
    """Replay a gap of ``gap`` nominal frames per track from its last observed state.

    Args:
        obs_mean, obs_cov: (N, 8) mean and (N, 3, 4) block covariance right after the track's
            last matched detection.
        obs_z: (N, 4) that detection (xyah); ``new_z`` (N, 4) the detection matched now.
        gap: (N,) nominal frames between the two (>= 1 in practice).
        noise_scale: (N,) measurement-noise factor for the real detection (NSA), or None;
            virtual observations use the reference noise.
        wh: xywh states (``kalman_state: xywh``); ``obs_z``/``new_z`` are then xywh too.

    Returns:
        the new mean (N, 8) and block covariance (N, 3, 4).
    """
    gap = np.maximum(np.asarray(gap, np.float64), 1e-9)
    steps = np.clip(np.rint(gap), 1, MAX_REPLAY_STEPS).astype(np.int64)
    dt = gap / steps
    mean, cov = obs_mean.copy(), obs_cov.copy()
    for i in range(1, int(steps.max(initial=0)) + 1):
        rows = (steps >= i).nonzero()[0]
        m, c = kalman.predict_blocks(mean[rows], cov[rows], dt[rows], wh)
        frac = (i / steps[rows])[:, None]
        z = obs_z[rows] + (new_z[rows] - obs_z[rows]) * frac
        scale = None
        if noise_scale is not None:
            scale = np.where(steps[rows] == i, noise_scale[rows], 1.0)
        mean[rows], cov[rows] = kalman.update_blocks(m, c, z, scale, wh)
    return mean, cov
