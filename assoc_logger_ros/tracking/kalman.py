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
_VEL_ROWS = np.arange(4)
_VEL_COLS = np.arange(4, 8)
_DIAG = np.arange(8)
_FLAT_DIAG = np.arange(8) * 9          # diagonal of an 8x8 matrix in its flattened form
_KRON_CACHE: dict[float, NDArray[np.float64]] = {}


def _kron_f(dt: float) -> NDArray[np.float64]:
    """``F kron F`` (64, 64) for the transition with step ``dt`` (cached: dt is usually 1)."""
    k = _KRON_CACHE.get(dt)
    if k is None:
        f = np.eye(8)
        f[_VEL_ROWS, _VEL_COLS] = dt
        k = np.kron(f, f)
        if len(_KRON_CACHE) < 64:
            _KRON_CACHE[dt] = k
    return k


def xyxy_to_xyah(boxes: ArrayLike) -> _F64:
    """(N, 4) corners -> (N, 4) ``cx, cy, w/h, h``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty_like(b)
    wh = b[:, 2:4] - b[:, 0:2]
    out[:, 0:2] = b[:, 0:2] + 0.5 * wh
    out[:, 2] = wh[:, 0] / wh[:, 1]
    out[:, 3] = wh[:, 1]
    return out


def xyah_to_xyxy(xyah: ArrayLike) -> _F64:
    """(N, >=4) ``cx, cy, a, h`` (e.g. Kalman means) -> (N, 4) corners."""
    m = np.asarray(xyah, dtype=np.float64)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    out = np.empty((m.shape[0], 4))
    out[:, 3] = m[:, 3]
    out[:, 2] = m[:, 2] * m[:, 3]             # width
    out[:, 0:2] = m[:, 0:2] - 0.5 * out[:, 2:4]
    out[:, 2:4] += out[:, 0:2]
    return out


def xyxy_to_xywh(boxes: ArrayLike) -> _F64:
    """(N, 4) corners -> (N, 4) ``cx, cy, w, h`` (the BoT-SORT state's measured part)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty_like(b)
    wh = b[:, 2:4] - b[:, 0:2]
    out[:, 0:2] = b[:, 0:2] + 0.5 * wh
    out[:, 2:4] = wh
    return out


def xywh_to_xyxy(xywh: ArrayLike) -> _F64:
    """(N, >=4) ``cx, cy, w, h`` (e.g. xywh Kalman means) -> (N, 4) corners."""
    m = np.asarray(xywh, dtype=np.float64)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    out = np.empty((m.shape[0], 4))
    out[:, 0:2] = m[:, 0:2] - 0.5 * m[:, 2:4]
    out[:, 2:4] = out[:, 0:2] + m[:, 2:4]
    return out


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
    if n and np.all(d == d[0]):
        # one F for every track (the usual case): vec(F P F^T) = (F kron F) vec(P), one GEMM
        new_cov = (p.reshape(n, 64) @ _kron_f(float(d[0])).T).reshape(n, 8, 8)
    else:
        # block form with P = [[A, B], [B^T, C]] and a per-track dt
        d3 = d[:, None, None]
        a = p[:, :4, :4]
        b = p[:, :4, 4:]
        c = p[:, 4:, 4:]
        b_new = b + d3 * c
        new_cov = np.empty_like(p)
        new_cov[:, :4, :4] = a + d3 * (b + np.swapaxes(b, 1, 2)) + (d3 * d3) * c
        new_cov[:, :4, 4:] = b_new
        new_cov[:, 4:, :4] = np.swapaxes(b_new, 1, 2)
        new_cov[:, 4:, 4:] = c
    new_cov.reshape(n, 64)[:, _FLAT_DIAG] += q
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
    # K = P H^T S^-1; H selects the first four states, so P H^T = P[:, :, :4] and
    # K S K^T = P H^T K^T: one batched product instead of two.
    gain_t = np.linalg.solve(s, p[:, :4, :])          # (N, 4, 8) = K^T (S is symmetric)
    innovation = z - proj_mean
    new_mean = m + (innovation[:, None, :] @ gain_t)[:, 0, :]
    new_cov = p - p[:, :, :4] @ gain_t
    return new_mean, new_cov


# -- the same filter in block form ----------------------------------------------------------
# per-coordinate noise std = height * weight + constant (the aspect ratio has a fixed std)
_W_POS = np.array([STD_WEIGHT_POSITION, STD_WEIGHT_POSITION, 0.0, STD_WEIGHT_POSITION])
_W_VEL = np.array([STD_WEIGHT_VELOCITY, STD_WEIGHT_VELOCITY, 0.0, STD_WEIGHT_VELOCITY])
_C_POS = np.array([0.0, 0.0, 1e-2, 0.0])
_C_VEL = np.array([0.0, 0.0, 1e-5, 0.0])
_C_MEAS = np.array([0.0, 0.0, 1e-1, 0.0])

# F couples each measured coordinate only with its own velocity, and Q, R and the initial
# covariance are diagonal, so the covariance stays made of four independent 2x2 blocks
# [[pp, pv], [pv, vv]] (coordinate i with velocity i); every other entry is exactly zero. The
# tracker therefore keeps ``blocks`` (N, 3, 4) = (pp, pv, vv) per coordinate and runs four scalar
# filters side by side: the same numbers as the 8x8 form, at a fraction of the cost.

# BoT-SORT's state (``wh=True``): ``[cx, cy, w, h, vcx, vcy, vw, vh]``, every noise std
# proportional to the box width (x, w) or height (y, h), no constants.
_W_POS_WH = np.full(4, STD_WEIGHT_POSITION)
_W_VEL_WH = np.full(4, STD_WEIGHT_VELOCITY)


def _wh_scale(m: _F64) -> _F64:
    """(N, 4) ``w, h, w, h`` of xywh means: what each coordinate's noise is proportional to."""
    return m[:, [2, 3, 2, 3]]


def initiate_blocks(measurement: ArrayLike, wh: bool = False) -> tuple[_F64, _F64]:
    """:func:`initiate` with the covariance as (N, 3, 4) blocks ``pp, pv, vv``.

    ``wh``: the measurement is xywh and the noise BoT-SORT's (see :func:`predict_blocks`).
    """
    if not wh:
        mean, cov = initiate(measurement)
        return mean, to_blocks(cov)
    z = np.asarray(measurement, dtype=np.float64).reshape(-1, 4)
    mean = np.zeros((z.shape[0], 8))
    mean[:, :4] = z
    sc = _wh_scale(mean)
    out = np.zeros((z.shape[0], 3, 4))
    out[:, 0] = (2.0 * STD_WEIGHT_POSITION * sc) ** 2
    out[:, 2] = (10.0 * STD_WEIGHT_VELOCITY * sc) ** 2
    return mean, out


def to_blocks(cov: ArrayLike) -> _F64:
    """(N, 8, 8) covariance -> (N, 3, 4) blocks (the entries :func:`from_blocks` restores)."""
    p = np.asarray(cov, dtype=np.float64).reshape(-1, 8, 8)
    i = _VEL_ROWS
    return np.stack([p[:, i, i], p[:, i, i + 4], p[:, i + 4, i + 4]], axis=1)


def from_blocks(blocks: ArrayLike) -> _F64:
    """(N, 3, 4) blocks -> the full (N, 8, 8) covariance."""
    b = np.asarray(blocks, dtype=np.float64).reshape(-1, 3, 4)
    out = np.zeros((b.shape[0], 8, 8))
    i = _VEL_ROWS
    out[:, i, i] = b[:, 0]
    out[:, i, i + 4] = b[:, 1]
    out[:, i + 4, i] = b[:, 1]
    out[:, i + 4, i + 4] = b[:, 2]
    return out


def predict_blocks(mean: ArrayLike, blocks: ArrayLike,
                   dt: ArrayLike = 1.0, wh: bool = False) -> tuple[_F64, _F64]:
    """:func:`predict` on block covariances; ``dt`` scalar or (N,).

    ``wh``: xywh states with BoT-SORT's noise (std = weight x width for x and w, weight x
    height for y and h); False: the reference xyah filter, unchanged.
    """
    m = np.asarray(mean, dtype=np.float64).reshape(-1, 8)
    b = np.asarray(blocks, dtype=np.float64).reshape(-1, 3, 4)
    n = m.shape[0]
    d = np.asarray(dt, dtype=np.float64)
    d = d.reshape(-1, 1) if d.ndim else d
    if wh:
        sc = _wh_scale(m)
        qp = sc * _W_POS_WH
        qv = sc * _W_VEL_WH
    else:
        h = m[:, 3:4]
        qp = h * _W_POS + _C_POS            # per-coordinate std of the position noise
        qv = h * _W_VEL + _C_VEL
    new_mean = m.copy()
    new_mean[:, :4] += d * m[:, 4:]
    pp, pv, vv = b[:, 0], b[:, 1], b[:, 2]
    out = np.empty((n, 3, 4))
    out[:, 1] = pv + d * vv
    out[:, 0] = pp + d * (pv + out[:, 1]) + d * qp * qp
    out[:, 2] = vv + d * qv * qv
    return new_mean, out


def update_blocks(mean: ArrayLike, blocks: ArrayLike, measurement: ArrayLike,
                  noise_scale: ArrayLike | None = None,
                  wh: bool = False) -> tuple[_F64, _F64]:
    """:func:`update` on block covariances (four scalar Kalman updates per track).

    ``noise_scale`` (N,) multiplies each track's measurement-noise variance (NSA Kalman passes
    ``1 - score``); None keeps the reference noise. ``wh``: xywh, BoT-SORT's noise.
    """
    m = np.asarray(mean, dtype=np.float64).reshape(-1, 8)
    b = np.asarray(blocks, dtype=np.float64).reshape(-1, 3, 4)
    z = np.asarray(measurement, dtype=np.float64).reshape(-1, 4)
    r = _wh_scale(m) * _W_POS_WH if wh else m[:, 3:4] * _W_POS + _C_MEAS
    pp, pv, vv = b[:, 0], b[:, 1], b[:, 2]
    r2 = r * r
    if noise_scale is not None:
        r2 = r2 * np.asarray(noise_scale, dtype=np.float64).reshape(-1, 1)
    s = pp + r2
    kp = pp / s
    kv = pv / s
    innovation = z - m[:, :4]
    new_mean = m.copy()
    new_mean[:, :4] += kp * innovation
    new_mean[:, 4:] += kv * innovation
    out = np.empty_like(b)
    out[:, 0] = pp - kp * pp
    out[:, 1] = pv - kp * pv
    out[:, 2] = vv - kv * pv
    return new_mean, out
