"""Constant-velocity Kalman filter over ``(cx, cy, a, h)`` boxes, batched and stateless.

The state is ``[cx, cy, a, h, vcx, vcy, va, vh]`` (box centre, aspect ratio w/h, height and their
velocities); only the first four are measured. Every function takes arrays for N tracks at once
(``mean`` (N, 8), ``cov`` (N, 8, 8)) and returns new arrays, so the tracker keeps one contiguous
bank of states and no per-track Python work is needed.

Noise follows the ByteTrack / DeepSORT reference: standard deviations proportional to the box
height with weights 1/20 (position) and 1/160 (velocity), fixed small values for the aspect ratio.

Time: ``dt`` is measured in *nominal frames* (elapsed seconds x nominal frame rate), so velocities
are pixels per nominal frame. With ``dt = 1`` every function reproduces the reference exactly. For
other steps the process noise is that of two independent random walks (position and velocity):
its variance grows linearly with ``dt``, so two half steps add up to the same uncertainty as one
full step, and a dropped frame costs exactly what two predictions would.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

STD_WEIGHT_POSITION = 1.0 / 20.0
STD_WEIGHT_VELOCITY = 1.0 / 160.0

_F64 = NDArray[np.float64]


def xyxy_to_xyah(boxes: ArrayLike) -> _F64:
    """(N, 4) corners -> (N, 4) ``cx, cy, w/h, h``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w / h, h], axis=1)


def xyah_to_xyxy(xyah: ArrayLike) -> _F64:
    """(N, >=4) ``cx, cy, a, h`` (e.g. Kalman means) -> (N, 4) corners."""
    m = np.asarray(xyah, dtype=np.float64)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    h = m[:, 3]
    w = m[:, 2] * h
    x1 = m[:, 0] - 0.5 * w
    y1 = m[:, 1] - 0.5 * h
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def initiate(measurement: ArrayLike) -> tuple[_F64, _F64]:
    """Start tracks from (N, 4) xyah measurements: zero velocity, height-scaled uncertainty.

    Returns:
        mean (N, 8) and covariance (N, 8, 8).
    """
    z = np.asarray(measurement, dtype=np.float64).reshape(-1, 4)
    n = z.shape[0]
    mean = np.zeros((n, 8))
    mean[:, :4] = z
    h = z[:, 3]
    std = np.empty((n, 8))
    std[:, [0, 1, 3]] = (2.0 * STD_WEIGHT_POSITION * h)[:, None]
    std[:, 2] = 1e-2
    std[:, [4, 5, 7]] = (10.0 * STD_WEIGHT_VELOCITY * h)[:, None]
    std[:, 6] = 1e-5
    cov = np.zeros((n, 8, 8))
    idx = np.arange(8)
    cov[:, idx, idx] = std * std
    return mean, cov


def predict(mean: ArrayLike, cov: ArrayLike, dt: ArrayLike = 1.0) -> tuple[_F64, _F64]:
    """Advance N states by ``dt`` nominal frames each (scalar or (N,)).

    ``x' = F x`` with ``F = [[I, dt I], [0, I]]``; ``P' = F P F^T + dt Q`` where ``Q`` is the
    reference per-frame process noise computed from the heights *before* the step.
    """
    m = np.asarray(mean, dtype=np.float64).reshape(-1, 8)
    p = np.asarray(cov, dtype=np.float64).reshape(-1, 8, 8)
    n = m.shape[0]
    d = np.broadcast_to(np.asarray(dt, dtype=np.float64), (n,))
    h = m[:, 3]
    q = np.empty((n, 8))
    q[:, [0, 1, 3]] = (STD_WEIGHT_POSITION * h)[:, None]
    q[:, 2] = 1e-2
    q[:, [4, 5, 7]] = (STD_WEIGHT_VELOCITY * h)[:, None]
    q[:, 6] = 1e-5
    q *= q
    q *= d[:, None]

    new_mean = m.copy()
    new_mean[:, :4] += d[:, None] * m[:, 4:]
    # Block form of F P F^T with P = [[A, B], [B^T, C]]: cheaper than two batched 8x8 products.
    a = p[:, :4, :4]
    b = p[:, :4, 4:]
    c = p[:, 4:, 4:]
    d3 = d[:, None, None]
    b_new = b + d3 * c
    new_cov = np.empty_like(p)
    new_cov[:, :4, :4] = a + d3 * (b + np.swapaxes(b, 1, 2)) + (d3 * d3) * c
    new_cov[:, :4, 4:] = b_new
    new_cov[:, 4:, :4] = np.swapaxes(b_new, 1, 2)
    new_cov[:, 4:, 4:] = c
    idx = np.arange(8)
    new_cov[:, idx, idx] += q
    return new_mean, new_cov


def project(mean: ArrayLike, cov: ArrayLike) -> tuple[_F64, _F64]:
    """Measurement-space (N, 4) mean and (N, 4, 4) innovation covariance."""
    m = np.asarray(mean, dtype=np.float64).reshape(-1, 8)
    p = np.asarray(cov, dtype=np.float64).reshape(-1, 8, 8)
    h = m[:, 3]
    r = np.empty((m.shape[0], 4))
    r[:, [0, 1, 3]] = (STD_WEIGHT_POSITION * h)[:, None]
    r[:, 2] = 1e-1
    s = p[:, :4, :4].copy()
    idx = np.arange(4)
    s[:, idx, idx] += r * r
    return m[:, :4].copy(), s


def update(mean: ArrayLike, cov: ArrayLike, measurement: ArrayLike) -> tuple[_F64, _F64]:
    """Correct N states with (N, 4) xyah measurements (standard Kalman update, batched)."""
    m = np.asarray(mean, dtype=np.float64).reshape(-1, 8)
    p = np.asarray(cov, dtype=np.float64).reshape(-1, 8, 8)
    z = np.asarray(measurement, dtype=np.float64).reshape(-1, 4)
    if m.shape[0] == 0:
        return m.copy(), p.copy()
    proj_mean, s = project(m, p)
    # K = P H^T S^-1; H selects the first four states, so P H^T = P[:, :, :4].
    gain_t = np.linalg.solve(s, p[:, :4, :])          # (N, 4, 8) = K^T (S is symmetric)
    innovation = z - proj_mean
    new_mean = m + np.einsum('ni,nij->nj', innovation, gain_t)
    new_cov = p - np.swapaxes(gain_t, 1, 2) @ s @ gain_t
    return new_mean, new_cov
