"""Camera-motion compensation estimated from the boxes alone (no images).

A moving camera shifts every object in the image by nearly the same amount between two frames;
the constant-velocity Kalman prediction cannot know that, so after a pan or a jolt every
prediction lands beside its person and lost tracks drift away from where they will reappear.
BoT-SORT (Aharon et al., 2022) measures that motion from the images; here it is measured from
the detections: after the prediction, each confirmed, currently tracked track is paired with its
mutually nearest high-score detection (centre distance, similar height), and the displacements
of the pairs vote. When most of them agree (a consensus around their median) and their mean is
clearly non-zero (a t-like test against its standard error), that mean is the shift the image
had beyond the predictions: it is added to the predicted centre of every tracked and lost track
before association, and half of it to their velocity (a pan that started goes on, so the next
prediction carries it; the Kalman updates correct the rest). Too few pairs, no consensus or a
shift within the noise (people walking their own ways in front of a still camera) gives no shift.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

MIN_PAIRS = 4             # fewer reliable pairs than this: no estimate
PAIR_GATE = 1.0           # a pair's centre distance at most this times the track's height
HEIGHT_RATIO = 1.33       # and the two heights within this ratio
INLIER_TOL = 0.1          # an inlier's displacement is within this times its height of the median
MIN_INLIER_SHARE = 0.8    # at least this share of the pairs must be inliers
MIN_SIGNIFICANCE = 2.0    # |mean shift| at least this many standard errors
VELOCITY_SHARE = 0.5      # share of the shift added to the velocity
ZOOM_SIGNIFICANCE = 3.0   # |zoom| at least this many standard errors (cmc_scale)
DENSE_MAX_PAIRS = 1 << 16  # nearest centres from all pairs up to this many, a k-d tree beyond

_F64 = NDArray[np.float64]
_NONE = (0.0, 0.0, 0)


def estimate_shift(track_xyah: _F64, det_xyxy: _F64) -> tuple[float, float, int]:
    """Global image shift (dx, dy) in pixels from predicted tracks to detections.

    Args:
        track_xyah: (T, >=4) predicted ``cx, cy, a, h`` of the confirmed, tracked tracks.
        det_xyxy: (D, 4) the high-score detections.

    Returns:
        ``(dx, dy, inliers)``; ``(0.0, 0.0, 0)`` when there is no reliable consensus.
    """
    return _shift(_pairs(track_xyah, det_xyxy))


def _shift(pairs: tuple[_F64, _F64, _F64] | None) -> tuple[float, float, int]:
    """:func:`estimate_shift` from the reliable pairs :func:`_pairs` found."""
    if pairs is None:
        return _NONE
    _, disp, h = pairs
    n_ok = disp.shape[0]
    srt = np.sort(disp, axis=0)           # np.median, without its overhead (hot path)
    med = srt[(n_ok - 1) // 2] + srt[n_ok // 2]
    med *= 0.5
    dev = disp - med
    np.abs(dev, out=dev)
    lim = INLIER_TOL * h
    inl = dev[:, 0] <= lim
    inl &= dev[:, 1] <= lim
    n_in = int(np.count_nonzero(inl))
    if n_in < MIN_PAIRS or n_in < MIN_INLIER_SHARE * n_ok:
        return _NONE
    v = disp[inl] if n_in < n_ok else disp
    mean = v.sum(axis=0) / n_in
    r = v - mean
    se2 = float(np.vdot(r, r)) / ((n_in - 1) * n_in)   # sum of both variances / n
    mx, my = float(mean[0]), float(mean[1])
    if mx * mx + my * my < MIN_SIGNIFICANCE ** 2 * se2:
        return _NONE
    return mx, my, n_in


def apply_shift(mean: _F64, dx: float, dy: float) -> None:
    """Move (N, 8) Kalman means ``cx, cy, a, h, vcx, vcy, ...`` by the shift, in place."""
    mean[:, 0] += dx
    mean[:, 1] += dy
    mean[:, 4] += VELOCITY_SHARE * dx
    mean[:, 5] += VELOCITY_SHARE * dy


def _pairs(track_xyah: _F64, det_xyxy: _F64) -> tuple[_F64, _F64, _F64] | None:
    """Centres, displacements and heights of the reliable mutually nearest pairs, or None."""
    t = np.asarray(track_xyah, np.float64)
    d = np.asarray(det_xyxy, np.float64).reshape(-1, 4)
    n_t, n_d = t.shape[0], d.shape[0]
    if n_t < MIN_PAIRS or n_d < MIN_PAIRS:
        return None
    tc = t[:, 0:2]
    dc = d[:, 0:2] + d[:, 2:4]
    dc *= 0.5
    if n_t * n_d <= DENSE_MAX_PAIRS:
        dist2 = np.subtract.outer(tc[:, 0], dc[:, 0])
        dist2 *= dist2
        dy = np.subtract.outer(tc[:, 1], dc[:, 1])
        dy *= dy
        dist2 += dy
        t2d, d2t = dist2.argmin(axis=1), dist2.argmin(axis=0)
    else:
        t2d = cKDTree(dc).query(tc)[1]
        d2t = cKDTree(tc).query(dc)[1]
    rows = (d2t[t2d] == np.arange(n_t)).nonzero()[0]      # mutually nearest
    # one gather per side and in-place steps: each numpy call costs about a microsecond here
    cols = t2d[rows]
    tr, dr = t[rows], d[cols]
    tc = tr[:, 0:2]
    disp = dc[cols]
    disp -= tc
    h = np.maximum(tr[:, 3], 1e-6)
    ratio = dr[:, 3] - dr[:, 1]
    ratio /= h
    ok = np.hypot(disp[:, 0], disp[:, 1]) <= PAIR_GATE * h
    ok &= ratio <= HEIGHT_RATIO
    ok &= ratio >= 1.0 / HEIGHT_RATIO
    n_ok = int(np.count_nonzero(ok))
    if n_ok < MIN_PAIRS:
        return None
    if n_ok == ok.size:
        return tc, disp, h
    return tc[ok], disp[ok], h[ok]


def _fit_zoom(p: _F64, v: _F64) -> tuple[_F64, _F64, float, float]:
    """Least-squares ``v = t + s (p - centroid)``: (t, centroid, s, denominator)."""
    pbar = p.mean(axis=0)
    t = v.mean(axis=0)
    q = p - pbar
    den = float(np.einsum('ij,ij->', q, q))
    s = float(np.einsum('ij,ij->', q, v - t)) / den if den > 0.0 else 0.0
    return t, pbar, s, den


def estimate_motion(track_xyah: _F64, det_xyxy: _F64
                    ) -> tuple[float, float, float, float, float, int]:
    """Global shift plus zoom: ``(dx, dy, s, cx0, cy0, inliers)``.

    A camera walking forward (or zooming) spreads the people away from a point: displacements
    then grow with the distance from it and the plain shift finds no consensus. The pairs are
    fitted with ``displacement = t + s (centre - centroid)`` (least squares, refitted on the
    pairs within the inlier tolerance). Only when the plain shift finds no consensus, the same
    consensus share holds for the fit and ``s`` is clearly non-zero (``ZOOM_SIGNIFICANCE``
    standard errors), the zoom is returned with the centroid it is about (a zoom fitted
    whenever significant lost 0.5 HOTA on MOT17: walkers' own motion passed as zoom).
    Otherwise the result is :func:`estimate_shift`'s with ``s = 0``.
    """
    pairs = _pairs(track_xyah, det_xyxy)
    dx, dy, n = _shift(pairs)
    if n or pairs is None:
        return dx, dy, 0.0, 0.0, 0.0, n
    p, v, h = pairs
    n_ok = p.shape[0]
    t, pbar, s, _ = _fit_zoom(p, v)
    res = v - t - s * (p - pbar)
    inl = (np.abs(res) <= INLIER_TOL * h[:, None]).all(axis=1)
    n_in = int(np.count_nonzero(inl))
    if n_in < max(MIN_PAIRS, 3) or n_in < MIN_INLIER_SHARE * n_ok:
        return dx, dy, 0.0, 0.0, 0.0, n
    p, v = p[inl], v[inl]
    t, pbar, s, den = _fit_zoom(p, v)
    res = v - t - s * (p - pbar)
    sigma2 = float(np.einsum('ij,ij->', res, res)) / max(2 * n_in - 3, 1)
    if den <= 0.0 or s * s * den < ZOOM_SIGNIFICANCE ** 2 * sigma2:
        return dx, dy, 0.0, 0.0, 0.0, n
    mean_ok = float(t @ t) >= MIN_SIGNIFICANCE ** 2 * 2.0 * sigma2 / n_in
    tx, ty = (float(t[0]), float(t[1])) if mean_ok else (0.0, 0.0)
    return tx, ty, s, float(pbar[0]), float(pbar[1]), n_in


def apply_motion(mean: _F64, dx: float, dy: float, s: float, cx0: float, cy0: float,
                 wh: bool = False) -> None:
    """Move (N, 8) Kalman means by the shift and the zoom ``s`` about ``(cx0, cy0)``, in place.

    ``wh``: xywh means (the width scales too; in xyah the aspect ratio stays).
    """
    if s == 0.0:
        apply_shift(mean, dx, dy)
        return
    ux = dx + s * (mean[:, 0] - cx0)
    uy = dy + s * (mean[:, 1] - cy0)
    mean[:, 0] += ux
    mean[:, 1] += uy
    mean[:, 3] *= 1.0 + s
    if wh:
        mean[:, 2] *= 1.0 + s
    mean[:, 4] += VELOCITY_SHARE * ux
    mean[:, 5] += VELOCITY_SHARE * uy
