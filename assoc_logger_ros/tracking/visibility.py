"""How much of each detected object is actually visible, from a mask or from boxes alone.

Visibility feeds the appearance-memory gate (a half-hidden person gives a descriptor that is
half someone else) and is logged with every sample.

* :func:`visibility_from_mask` (``seg_enable``): an instance label image says exactly which
  pixels belong to which detection.
* :func:`visibility_from_boxes` (fallback): boxes only, with the ground-plane assumption of a
  camera looking down on people standing on a floor: of two overlapping boxes, the one whose
  bottom edge is lower in the image stands closer to the camera and hides the other. It is wrong
  for objects that do not touch the floor in view (truncated at the image bottom, hanging,
  flying) and for top-down cameras; it costs nothing and needs no mask.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from assoc_logger_ros.tracking.sparse import overlap_pairs

#: Fraction of its box a fully visible object's mask covers at least (a standing person
#: covers 50-65 %); an instance covering this much with no one else in the box is fully visible.
MASK_FILL_REF = 0.5

_CHUNK = 1024
_SWEEP_MIN = 96     # from this many boxes on, the sweep beats all pairs at once (cache misses)
_GRID_MIN = 1024    # from this many on, the overlap grid beats the sweep


def validate_mask(mask: object, width: int, height: int) -> NDArray[np.integer]:
    """The mask as a 2-D integer array, or ValueError saying what is wrong with it."""
    if not isinstance(mask, np.ndarray):
        raise ValueError(f'instance mask must be a numpy array, got {type(mask).__name__}')
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2:
        raise ValueError(f'instance mask must be a single-channel image, got shape {mask.shape}')
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f'instance mask must have an integer type (mono8/mono16 label image), '
                         f'got {mask.dtype}')
    if mask.shape != (int(height), int(width)):
        raise ValueError(f'instance mask is {mask.shape[1]}x{mask.shape[0]} but the detections '
                         f'are for a {int(width)}x{int(height)} image')
    return mask


def _pixel_ranges(boxes: NDArray[np.float64], width: int, height: int) -> NDArray[np.int64]:
    """Integer pixel ranges ``[xa, ya, xb, yb)`` of boxes, clipped to the image.

    A pixel belongs to a box when its centre does (``x1 <= x + 0.5 < x2``).
    """
    r = np.ceil(boxes - 0.5)
    r = np.nan_to_num(r, nan=0.0, posinf=1e9, neginf=-1e9)
    r[:, 0::2] = np.clip(r[:, 0::2], 0, width)
    r[:, 1::2] = np.clip(r[:, 1::2], 0, height)
    return r.astype(np.int64)


def visibility_from_mask(mask: object, boxes: ArrayLike, source_index: ArrayLike | None,
                         width: int, height: int, *,
                         fill_ref: float = MASK_FILL_REF) -> NDArray[np.float32]:
    """Per detection: its own mask pixels in its box relative to what a visible one would have.

    ``mask`` is an (H, W) integer label image where value ``k`` marks detection ``k - 1`` of the
    source message (0 = background); ``source_index`` maps each row of ``boxes`` to that message
    index (None: row i is message index i). With ``own`` the pixels labelled with the detection
    inside its box, ``other`` the pixels inside its box labelled with another instance, and
    ``A`` the box area (whole box, so a box leaving the image is partly invisible)::

        visibility = own / max(own + other, fill_ref * A)     (in [0, 1])

    so another instance covering half of the object halves it, an unlabelled occluder (a wall)
    lowers it through the missing ``own`` pixels, and a detection absent from the mask gets 0.

    Raises:
        ValueError: wrong mask type, shape or dtype (the caller reports it and falls back to
            :func:`visibility_from_boxes`).
    """
    m = validate_mask(mask, width, height)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = b.shape[0]
    if n == 0:
        return np.zeros(0, np.float32)
    src = (np.arange(n, dtype=np.int64) if source_index is None
           else np.asarray(source_index, dtype=np.int64).reshape(-1))
    if src.shape[0] != n:
        raise ValueError(f'{n} boxes but {src.shape[0]} source indices')
    h, w = m.shape
    rng = _pixel_ranges(b, w, h)
    xa, ya, xb, yb = rng.T
    # labelled pixels inside each box, from one summed-area table
    sat = np.zeros((h + 1, w + 1), np.int64)
    np.cumsum(np.cumsum(m > 0, axis=0, dtype=np.int64), axis=1, out=sat[1:, 1:])
    labelled = sat[yb, xb] - sat[ya, xb] - sat[yb, xa] + sat[ya, xa]
    # own pixels: for every labelled pixel, is it inside the box of the detection it names?
    ys, xs = np.nonzero(m > 0)
    lab = m[ys, xs].astype(np.int64) - 1
    row_of = np.full(int(max(src.max(initial=-1), lab.max(initial=-1))) + 1, -1, np.int64)
    good_src = src >= 0
    row_of[src[good_src]] = np.flatnonzero(good_src)
    row = row_of[lab]
    has = row >= 0
    ys, xs, row = ys[has], xs[has], row[has]
    inside = (xs >= xa[row]) & (xs < xb[row]) & (ys >= ya[row]) & (ys < yb[row])
    own = np.bincount(row[inside], minlength=n).astype(np.float64)
    other = labelled - own
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    vis = own / np.maximum(own + other, fill_ref * area)
    return np.clip(np.nan_to_num(vis, nan=0.0), 0.0, 1.0).astype(np.float32)


def visibility_from_boxes(boxes: ArrayLike) -> NDArray[np.float32]:
    """Per box: the fraction not covered by boxes in front of it (ground-plane assumption).

    A box is in front of another when its bottom edge ``y2`` is strictly lower in the image
    (larger). The covered fraction combines the occluders as independent, ``1 - prod(1 - f_j)``
    with ``f_j`` the share of the box's area that occluder ``j`` covers, so two occluders over
    the same spot are not counted twice as fully as two side by side. Equal bottoms hide nothing.
    Few boxes: all pairs at once (row chunks, memory O(N * 1024)). Many boxes: candidate pairs
    come from a sweep over the boxes sorted by left edge (O(N log N) plus the pairs that overlap
    horizontally), so hundreds of boxes stay cheap. Both give the same floats.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = b.shape[0]
    out = np.ones(n, np.float32)
    if n < 2:
        return out
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    if not np.isfinite(b).all():
        with np.errstate(invalid='ignore'):
            return _visibility_dense(b, area, out)
    if n < _SWEEP_MIN:
        return _visibility_small(b, area)
    x1, y1, x2, y2 = b.T
    # pairs that overlap at all, from a grid on the boxes: about linear in crowds (the sweep
    # over left edges alone grows with the square when thousands of boxes share columns)
    i, j, _ = overlap_pairs(b, b) if n >= _GRID_MIN else (*_x_overlap_candidates(x1, x2), None)
    iw = np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j])
    ih = np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j])
    hit = (iw > 0) & (ih > 0) & (y2[j] > y2[i])          # overlapping occluder in front
    if not hit.any():
        return out
    i, j, iw, ih = i[hit], j[hit], iw[hit], ih[hit]
    order = np.lexsort((j, i))                             # row by row, occluders left to right
    i, j = i[order], j[order]
    keep = 1.0 - np.clip(iw[order] * ih[order] / area[i], 0.0, 1.0)
    # product per row in the order np.prod over the full row uses (the other factors are 1)
    starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
    vis = np.multiply.reduceat(keep, starts)
    out[i[starts]] = np.nan_to_num(vis, nan=1.0)
    return out


def _x_overlap_candidates(x1: NDArray[np.float64], x2: NDArray[np.float64]
                          ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All pairs (i, j) whose x-ranges may overlap (a superset; includes i == j).

    ``j`` overlaps ``i`` only if ``x1_j < x2_i`` and ``x1_j > x1_i - max width``: a binary
    search on the sorted left edges gives each row its window of candidates. The slack covers
    rounding, so no overlapping pair is ever missed (the caller tests each pair exactly).
    """
    n = x1.size
    order = np.argsort(x1, kind='stable')
    xs = x1[order]
    wmax = max(float(np.max(x2 - x1)), 0.0)
    slack = 1e-9 * (max(abs(float(xs[0])), abs(float(xs[-1]))) + wmax) + 1e-9
    lo = np.searchsorted(xs, x1 - wmax - slack, 'left')
    hi = np.searchsorted(xs, x2 + slack, 'right')
    cnt = np.maximum(hi - lo, 0)
    i = np.repeat(np.arange(n), cnt)
    first = np.cumsum(cnt) - cnt
    j = order[np.arange(i.size) + np.repeat(lo - first, cnt)]
    return i, j


def _visibility_small(b: NDArray[np.float64], area: NDArray[np.float64]
                      ) -> NDArray[np.float32]:
    """:func:`_visibility_dense` for fewer than ``_SWEEP_MIN`` finite boxes, in fewer calls.

    Same floats: with finite coordinates every factor lies in [0, 1] or is NaN (overflowing
    areas only; such a row gives 1, as there), the clips reduce to one-sided bounds and the
    product reduces the same (N, N) array in the same order.
    """
    x1, y1, x2, y2 = b[:, 0:1], b[:, 1:2], b[:, 2:3], b[:, 3:4]
    iw = np.minimum(x2, b[:, 2])
    iw -= np.maximum(x1, b[:, 0])
    np.maximum(iw, 0.0, out=iw)
    ih = np.minimum(y2, b[:, 3])
    ih -= np.maximum(y1, b[:, 1])
    np.maximum(ih, 0.0, out=ih)
    iw *= ih
    iw /= area[:, None]
    np.minimum(iw, 1.0, out=iw)
    np.copyto(iw, 0.0, where=b[:, 3] <= y2)  # only boxes in front (lower bottom edge) hide
    np.subtract(1.0, iw, out=iw)
    vis = np.multiply.reduce(iw, axis=1)      # what np.prod runs
    nan = vis != vis                           # only from overflowing areas (inf / inf)
    if nan.any():
        vis[nan] = 1.0
    return vis.astype(np.float32)


def _visibility_dense(b: NDArray[np.float64], area: NDArray[np.float64],
                      out: NDArray[np.float32]) -> NDArray[np.float32]:
    """All pairs at once, in row chunks (non-finite coordinates: NaN visibility gives 1)."""
    n = b.shape[0]
    for lo in range(0, n, _CHUNK):
        a = b[lo:lo + _CHUNK]
        iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
        ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        front = b[None, :, 3] > a[:, None, 3]
        frac = np.where(front, np.clip(inter / area[lo:lo + _CHUNK, None], 0.0, 1.0), 0.0)
        vis = np.prod(1.0 - frac, axis=1)
        out[lo:lo + _CHUNK] = np.nan_to_num(vis, nan=1.0)
    return out
