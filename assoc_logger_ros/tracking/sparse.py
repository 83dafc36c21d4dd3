"""Sparse association for crowds: candidate pairs from box overlap, assignment per component.

In a frame with thousands of boxes almost every track/detection pair is disjoint, and a disjoint
pair has IoU cost exactly 1.0, which no ByteTrack stage accepts (every threshold is at most 1).
So the tracker only needs the overlapping pairs: :func:`overlap_pairs` finds them with a uniform
grid (each pair is reported once, from the grid cell holding the top-left corner of the
intersection) and computes their IoU with the very operations of
:func:`~assoc_logger_ros.tracking.matching.iou_matrix`, so the values are bit-identical.
:func:`assign_sparse` solves :func:`~assoc_logger_ros.tracking.matching.assign`'s problem on those
pairs: the eligible graph is split into connected components and each one is solved on its own
(small, dense ``linear_sum_assignment``; one component that is still big goes to SciPy's sparse
``min_weight_full_bipartite_matching``). Time and memory grow with the number of overlapping
pairs, i.e. close to linearly in the number of boxes.

:class:`PairCosts` records what each stage saw as sparse entries and builds the dense (T, D)
``cost_matrix`` / ``mask_matrix`` of the sample only when someone reads them (the writer, off
the tracker's hot path).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

_I64 = NDArray[np.int64]
_F64 = NDArray[np.float64]
_MAX_CELLS_PER_BOX = 64     # bigger boxes are tested against every box of the other set
_DENSE_COMPONENT = 4_000_000  # rows * cols of a component solved densely at most


def _grid_cells(b: _F64, off: float, size: float, ox: float, oy: float
                ) -> tuple[_I64, _I64, _I64, _I64]:
    """Inclusive cell ranges ``cx0, cy0, cx1, cy1`` covering ``[x1, x2 + off)`` of each box.

    A box with ``x2 + off <= x1`` (or the same in y) cannot have a positive intersection with
    anything: its range is made empty.
    """
    cx0 = np.floor((b[:, 0] - ox) / size).astype(np.int64)
    cy0 = np.floor((b[:, 1] - oy) / size).astype(np.int64)
    cx1 = np.floor((b[:, 2] + off - ox) / size).astype(np.int64)
    cy1 = np.floor((b[:, 3] + off - oy) / size).astype(np.int64)
    empty = (b[:, 2] + off <= b[:, 0]) | (b[:, 3] + off <= b[:, 1])
    cx1[empty] = cx0[empty] - 1
    return cx0, cy0, cx1, cy1


def _expand(ids: _I64, cx0: _I64, cy0: _I64, cx1: _I64, cy1: _I64, ncol: int
            ) -> tuple[_I64, _I64, _I64, _I64]:
    """(cell key, box id, cell x, cell y) for every cell every box covers."""
    nx = np.maximum(cx1 - cx0 + 1, 0)
    ny = np.maximum(cy1 - cy0 + 1, 0)
    cnt = nx * ny
    total = int(cnt.sum())
    owner = np.repeat(np.arange(ids.size), cnt)
    start = np.cumsum(cnt) - cnt
    k = np.arange(total) - start[owner]
    gx = cx0[owner] + k % nx[owner]
    gy = cy0[owner] + k // nx[owner]
    return gy * ncol + gx, ids[owner], gx, gy


def _iou_dist(a: _F64, b: _F64, i: _I64, j: _I64, off: float) -> _F64:
    """``1 - IoU`` of pairs (a[i], b[j]), with ``iou_matrix``'s operations in its order."""
    ax1, ay1, ax2, ay2 = a[i, 0], a[i, 1], a[i, 2], a[i, 3]
    bx1, by1, bx2, by2 = b[j, 0], b[j, 1], b[j, 2], b[j, 3]
    inter = np.minimum(ax2, bx2)
    inter -= np.maximum(ax1, bx1)
    inter += off
    np.maximum(inter, 0.0, out=inter)
    ih = np.minimum(ay2, by2)
    ih -= np.maximum(ay1, by1)
    ih += off
    np.maximum(ih, 0.0, out=ih)
    inter *= ih
    area_a = (ax2 - ax1 + off) * (ay2 - ay1 + off)
    area_b = (bx2 - bx1 + off) * (by2 - by1 + off)
    union = area_a + area_b
    union -= inter
    np.maximum(union, 1e-12, out=union)
    inter /= union
    return np.subtract(1.0, inter, out=inter)


def overlap_pairs(a: NDArray[np.float64], b: NDArray[np.float64], *, pixel_offset: float = 0.0
                  ) -> tuple[_I64, _I64, _F64]:
    """Pairs of xyxy boxes ``a`` (N, 4) x ``b`` (M, 4) whose intersection is positive.

    Returns ``(i, j, dist)`` sorted by ``(i, j)``, ``dist = 1 - IoU`` exactly as
    ``iou_distance(a, b)[i, j]``; every pair not returned has distance 1.0 there. A box with a
    non-finite coordinate overlaps nothing (the dense IoU would be NaN: never eligible either).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    n, m = a.shape[0], b.shape[0]
    if n == 0 or m == 0:
        e = np.empty(0, np.int64)
        return e, e.copy(), np.empty(0)
    off = float(pixel_offset)
    fin_a, fin_b = np.isfinite(a).all(axis=1), np.isfinite(b).all(axis=1)
    both = np.concatenate([a[fin_a], b[fin_b]])
    if both.shape[0] == 0:
        e = np.empty(0, np.int64)
        return e, e.copy(), np.empty(0)
    ext = np.concatenate([both[:, 2] - both[:, 0], both[:, 3] - both[:, 1]]) + off
    ext = ext[ext > 0]
    size = float(np.median(ext)) if ext.size else 1.0
    ox, oy = float(both[:, 0].min()), float(both[:, 1].min())
    span = max(float(both[:, 2].max()) - ox, float(both[:, 3].max()) - oy, 0.0) + off
    size = max(size, span / 1e6, 1e-9)      # at most a million cells a side: keys fit int64
    ga = _grid_cells(np.where(fin_a[:, None], a, 0.0), off, size, ox, oy)
    gb = _grid_cells(np.where(fin_b[:, None], b, 0.0), off, size, ox, oy)
    for g, fin in ((ga, fin_a), (gb, fin_b)):      # non-finite: an empty cell range
        g[2][~fin] = g[0][~fin] - 1
    ncol = int(max(ga[2].max(initial=0), gb[2].max(initial=0))) + 2
    big_a = (ga[2] - ga[0] + 1) * (ga[3] - ga[1] + 1) > _MAX_CELLS_PER_BOX
    big_b = (gb[2] - gb[0] + 1) * (gb[3] - gb[1] + 1) > _MAX_CELLS_PER_BOX
    ia_all, jb_all = np.arange(n), np.arange(m)
    si, sj = [], []
    # small x small through the grid
    sa, sb = ia_all[~big_a], jb_all[~big_b]
    if sa.size and sb.size:
        ka, va, gxa, gya = _expand(sa, *(g[sa] for g in ga), ncol)
        kb, vb, _, _ = _expand(sb, *(g[sb] for g in gb), ncol)
        order = np.argsort(kb, kind='stable')
        kb, vb = kb[order], vb[order]
        ncells = int(max(ka.max(initial=0), kb.max(initial=0))) + 1
        if ncells <= 8 * (ka.size + kb.size) + 1024:   # direct addressing of the cells
            per_cell = np.bincount(kb, minlength=ncells)
            lo = (np.cumsum(per_cell) - per_cell)[ka]
            cnt = per_cell[ka]
        else:                                           # a sparse canvas: binary search
            lo = np.searchsorted(kb, ka, 'left')
            cnt = np.searchsorted(kb, ka, 'right') - lo
        rep = np.repeat(np.arange(ka.size), cnt)
        start = np.cumsum(cnt) - cnt
        pos = lo[rep] + (np.arange(rep.size) - start[rep])
        pi, pj = va[rep], vb[pos]
        # report a pair once: from the cell of the intersection's top-left corner, i.e. the
        # larger of the two first cells in each axis (floor is monotonic)
        own = gxa[rep] == np.maximum(ga[0][pi], gb[0][pj])
        own &= gya[rep] == np.maximum(ga[1][pi], gb[1][pj])
        si.append(pi[own])
        sj.append(pj[own])
    # big boxes against everything of the other set (few of them; all pairs tested)
    for big, other, flip in ((ia_all[big_a], jb_all, False), (jb_all[big_b], ia_all[~big_a],
                                                               True)):
        if big.size == 0 or other.size == 0:
            continue
        p = np.repeat(big, other.size)
        q = np.tile(other, big.size)
        si.append(q if flip else p)
        sj.append(p if flip else q)
    if not si:
        e = np.empty(0, np.int64)
        return e, e.copy(), np.empty(0)
    i = np.concatenate(si)
    j = np.concatenate(sj)
    # a positive intersection in both axes (grid cells over-approximate)
    with np.errstate(invalid='ignore'):
        ok = ((np.minimum(a[i, 2], b[j, 2]) - np.maximum(a[i, 0], b[j, 0]) + off > 0)
              & (np.minimum(a[i, 3], b[j, 3]) - np.maximum(a[i, 1], b[j, 1]) + off > 0))
    i, j = i[ok], j[ok]
    order = np.lexsort((j, i))
    i, j = i[order], j[order]
    return i, j, _iou_dist(a, b, i, j, off)


def assign_sparse(rows: _I64, cols: _I64, cost: _F64, n: int, m: int, thresh: float
                  ) -> tuple[_I64, _I64, _I64]:
    """:func:`~assoc_logger_ros.tracking.matching.assign` for a cost given only on some pairs.

    Args:
        rows, cols: local row/column of each given pair (no duplicates).
        cost: their costs; pairs not given cost ``>= thresh`` (never matched).
        n, m: problem size.

    Returns:
        ``(pairs, free_rows, free_cols)`` exactly as ``assign`` does on the dense matrix whenever
        its optimum is unique (ties between equally good matchings may be broken differently).
    """
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    c = np.asarray(cost, np.float64)
    el = c < thresh
    r, k, g = rows[el], cols[el], c[el] - thresh     # gains (< 0) of eligible pairs
    if r.size > 1:
        # every eligible pair isolated: all of them are in the optimum
        if (np.bincount(r, minlength=n).max() > 1 or np.bincount(k, minlength=m).max() > 1):
            r, k = _solve(r, k, g, n, m)
    order = np.argsort(r, kind='stable')
    r, k = r[order], k[order]
    row_free = np.ones(n, bool)
    row_free[r] = False
    col_free = np.ones(m, bool)
    col_free[k] = False
    pairs = np.empty((r.size, 2), dtype=np.int64)
    pairs[:, 0] = r
    pairs[:, 1] = k
    return pairs, row_free.nonzero()[0], col_free.nonzero()[0]


def _solve(r: _I64, k: _I64, g: _F64, n: int, m: int) -> tuple[_I64, _I64]:
    """Optimal matching on eligible pairs, one connected component at a time.

    A component with one row (or one column) takes its best pair; the others are solved
    densely on their own rows x columns (in increasing order, as ``assign`` orders them).
    """
    graph = coo_matrix((np.ones(r.size), (r, n + k)), shape=(n + m, n + m)).tocsr()
    ncomp, label = connected_components(graph, directed=False)
    comp = label[r]
    # local row / column numbers inside each component, increasing with the global ones
    rkey = comp * n + r
    ukey_r, lr = np.unique(rkey, return_inverse=True)
    ckey = comp * m + k
    ukey_c, lc = np.unique(ckey, return_inverse=True)
    rows_per = np.bincount(ukey_r // n, minlength=ncomp)
    cols_per = np.bincount(ukey_c // m, minlength=ncomp)
    lr = lr - (np.cumsum(rows_per) - rows_per)[comp]
    lc = lc - (np.cumsum(cols_per) - cols_per)[comp]
    nr, nc = rows_per[comp], cols_per[comp]
    out_r, out_k = [], []
    # one row or one column: the best pair (first of equals in row-major order, as a solver)
    line = (nr == 1) | (nc == 1)
    if line.any():
        li = np.flatnonzero(line)
        order = li[np.lexsort((lc[li], lr[li], g[li], comp[li]))]
        first = np.r_[True, comp[order][1:] != comp[order][:-1]]
        best = order[first]
        out_r.append(r[best])
        out_k.append(k[best])
    rest = np.flatnonzero(~line)
    if rest.size:
        rest = rest[np.argsort(comp[rest], kind='stable')]
        cr = comp[rest]
        bounds = np.flatnonzero(np.diff(cr)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, rest.size]):
            e = rest[lo:hi]
            a, b = int(nr[e[0]]), int(nc[e[0]])
            ir, ik, cg = lr[e], lc[e], g[e]
            if a * b <= _DENSE_COMPONENT:
                gain = np.zeros((a, b))
                gain[ir, ik] = cg
                rr, kk = linear_sum_assignment(gain)
                good = gain[rr, kk] < 0.0
                rr, kk = rr[good], kk[good]
            else:
                rr, kk = _sparse_component(ir, ik, cg, a, b)
            # back to global numbers: the component's sorted rows / columns
            gr = np.empty(a, np.int64)
            gr[ir] = r[e]
            gk = np.empty(b, np.int64)
            gk[ik] = k[e]
            out_r.append(gr[rr])
            out_k.append(gk[kk])
    return np.concatenate(out_r), np.concatenate(out_k)


def _sparse_component(ir: _I64, ik: _I64, g: _F64, nr: int, nk: int) -> tuple[_I64, _I64]:
    """Thresholded matching of a big component with SciPy's sparse full bipartite matching.

    Rows ``0..nr`` and dummy rows ``nr..nr+nk`` (one per column) face columns ``0..nk`` and
    dummy columns ``nk..nk+nr`` (one per row). Row i may take its dummy column (stay unmatched,
    gain 0), column j its dummy row, and dummy row j may take dummy column i wherever (i, j) is
    a pair: a full matching always exists, and its cost is the total gain of its real pairs.
    Weights are shifted to stay positive (every full matching has nr + nk edges).
    """
    shift = 1.0 - float(g.min(initial=0.0))
    ar = np.arange(nr)
    ak = np.arange(nk)
    src = np.concatenate([ir, ar, nr + ak, nr + ik])
    dst = np.concatenate([ik, nk + ar, ak, nk + ir])
    w = np.concatenate([g, np.zeros(nr), np.zeros(nk), np.zeros(ir.size)]) + shift
    size = nr + nk
    mat = csr_matrix((w, (src, dst)), shape=(size, size))
    ri, ci = min_weight_full_bipartite_matching(mat)
    real = (ri < nr) & (ci < nk)
    return ri[real].astype(np.int64), ci[real].astype(np.int64)


class PairCosts:
    """Costs and eligibility each stage gave to its pairs, densified on demand.

    The tracker adds sparse entries (pairs a stage saw that overlap, or whole dense blocks when
    a stage was solved densely); :meth:`dense_cost` / :meth:`dense_mask` build the (T, D)
    float32 matrices of the sample schema: 1.0 cost and 0.0 mask where no entry was given.
    """

    def __init__(self, n_tracks: int, n_dets: int) -> None:
        self.shape = (int(n_tracks), int(n_dets))
        self._rows: list[_I64] = []
        self._cols: list[_I64] = []
        self._cost: list[NDArray[np.float32]] = []
        self._mask: list[NDArray[np.bool_]] = []

    def add(self, rows: _I64, cols: _I64, cost: _F64, eligible: NDArray[np.bool_]) -> None:
        """Entries at (rows[i], cols[i])."""
        self._rows.append(np.asarray(rows, np.int64))
        self._cols.append(np.asarray(cols, np.int64))
        self._cost.append(np.asarray(cost, np.float32))
        self._mask.append(np.asarray(eligible, bool))

    def add_block(self, rows: _I64, cols: _I64, cost: _F64, eligible: NDArray[np.bool_]
                  ) -> None:
        """A dense block: ``cost[a, b]`` is the pair (rows[a], cols[b])."""
        rr = np.repeat(np.asarray(rows, np.int64), len(cols))
        cc = np.tile(np.asarray(cols, np.int64), len(rows))
        self.add(rr, cc, np.asarray(cost).reshape(-1), np.asarray(eligible).reshape(-1))

    def dense_cost(self) -> NDArray[np.float32]:
        """(T, D) float32 costs, 1.0 where no stage considered the pair or it did not overlap."""
        out = np.empty(self.shape, np.float32)
        out.fill(1.0)
        for r, c, v in zip(self._rows, self._cols, self._cost):
            out[r, c] = v
        return out

    def dense_mask(self) -> NDArray[np.float32]:
        """(T, D) float32, 1.0 where the pair was eligible in its stage."""
        out = np.zeros(self.shape, np.float32)
        for r, c, v in zip(self._rows, self._cols, self._mask):
            out[r[v], c[v]] = 1.0
        return out
