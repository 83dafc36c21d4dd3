"""Estimate identity switches without ground truth (``diag``: ``est_id_switches``).

A recorder running for hours on a robot has no ground truth, yet its samples are only useful if
the tracker's identities are. :class:`SwitchEstimator` watches the tracker's decisions and counts
four kinds of evidence of an ID switch:

* **appearance** (needs embeddings): a matched detection is far from its track's appearance
  while close to another recent track's. One switch; the track adopts the new appearance, so an
  ongoing mix-up is counted once, not every frame.
* **reappear**: a new track starts where a recently lost track would be now (constant-velocity
  extrapolation from its last position, tolerance growing with the gap) and, when both have
  embeddings, looks like it. A ground-truth evaluation counts that fragment as one switch.
  Tracks lost at the image border are ignored (they left the view).
* **jump**: a track seen a moment ago is matched to a detection far (half a box height or
  more) from where its own recent motion puts it: it took someone else's detection. One switch
  per track (a flip of two tracks is two).
* **swap**: two close tracks whose recent velocities (about 5 frames) fit each other's habitual
  velocity (about 40 frames) much better than their own, while the habits differ: people who
  cross keep walking their way, so tracks that suddenly walk the other's way have swapped. Two
  switches (both identities changed); the habits then adopt the new motion.

The estimator keeps its own light per-track state (last box, smoothed velocity, embedding EMA)
in arrays indexed by row (:class:`~assoc_logger_ros.tracking.memory.SlotTable`), so it works with
the appearance memory disabled and a frame costs a fixed number of numpy calls: per-track Python
work happens only for tracks that enter or leave and for the (rare) evidence found. The pairwise
checks are O(M^2) cheap distance comparisons for M matches; the swap test itself (velocities)
runs only on pairs of tracks that are close, and the appearance test only in frames where some
match is far from its track's appearance.
The suspected track IDs are returned so the tracker can freeze their appearance memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from assoc_logger_ros.tracking.memory import SlotTable, grow_rows, normalise_rows
from assoc_logger_ros.tracking.visibility import visibility_from_boxes


@dataclass(frozen=True)
class SwitchParams:
    """Evidence thresholds (internal tuning constants, not user settings).

    Distances are cosine distances ``1 - cos``; positions are in box heights.
    """

    window_s: float = 3.0            # how long a lost track can be claimed by a new one
    disagree_dist: float = 0.5       # own-track appearance farther than this ...
    agree_dist: float = 0.3          # ... while another track is closer than this ...
    agree_margin: float = 0.2        # ... by at least this much: appearance evidence
    appearance_min_visibility: float = 0.8   # box-estimated visibility of a testifying match
    reappear_dist: float = 0.3       # new track this close to a lost one in appearance
    reappear_pos: float = 0.6        # base position tolerance for a reappearance (box heights)
    reappear_pos_per_s: float = 0.6  # tolerance growth per second of gap
    reappear_max_extrap_s: float = 0.5   # extrapolate a lost track's motion at most this long
    size_ratio: float = 1.5          # largest height ratio between a lost and a new track
    border_px: float = 10.0          # a track last seen this close to the border left the view
    jump: float = 0.5                # a match this far (box heights) from the prediction ...
    jump_max_gap_s: float = 0.2      # ... of a track seen this recently is a jump
    swap_ratio: float = 0.5          # recent velocities fit the other's habit this much better
    swap_sep: float = 0.4            # habits differ by more than this (box heights per second)
    swap_near: float = 1.0           # tracks closer than this (box heights) can swap
    swap_min_hits: int = 10          # matches before a track's habit is trusted
    reappear_min_hits: int = 3       # matches before a lost track can be claimed (not a blip)
    velocity_momentum: float = 0.7   # smoothing of the recent velocity (about 5 frames)
    habit_momentum: float = 0.95     # smoothing of the habitual velocity (about 40 frames)
    emb_momentum: float = 0.8        # smoothing of the per-track embedding


@dataclass(frozen=True)
class SwitchReport:
    """Evidence found in one frame."""

    count: int
    suspected_ids: NDArray[np.int64]
    appearance: int = 0
    reappear: int = 0
    swap: int = 0
    pairs: tuple[tuple[int, int], ...] = field(default=())   # (track, other or -1) per event
    jump: int = 0


_NAMES = ('_box', '_vel', '_has_vel', '_seen', '_claimed', '_at_border', '_has_emb',
          '_box_known', '_habit', '_hits')


def _centres(b: NDArray[np.float64]) -> NDArray[np.float64]:
    c = b[:, 0:2] + b[:, 2:4]
    c /= 2
    return c


def _close_pairs(c: NDArray[np.float64], limit2: float
                 ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Pairs i < j (row-major) of centres with squared distance below ``limit2``.

    Same pairs and the same float distances as the dense ``subtract.outer`` test; a k-d tree
    proposes them (a superset), the exact test decides. NaN centres are never close.
    """
    from scipy.spatial import cKDTree

    empty = np.empty(0, np.int64)
    if not limit2 > 0.0:
        return empty, empty.copy(), np.empty(0)
    ok = np.flatnonzero(np.isfinite(c).all(axis=1))
    if ok.size < 2:
        return empty, empty.copy(), np.empty(0)
    radius = float(np.sqrt(limit2)) * (1.0 + 1e-9) + 1e-9
    pairs = cKDTree(c[ok]).query_pairs(radius, output_type='ndarray')
    if not len(pairs):
        return empty, empty.copy(), np.empty(0)
    a, b = ok[pairs[:, 0]], ok[pairs[:, 1]]
    pi, pj = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((pj, pi))
    pi, pj = pi[order], pj[order]
    dx = c[pi, 0] - c[pj, 0]
    dy = c[pi, 1] - c[pj, 1]
    d2 = dx * dx
    d2 += dy * dy
    keep = d2 < limit2
    return pi[keep], pj[keep], d2[keep]


def _norm2(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """Euclidean norm over the last axis of length 2 (same float result as np.linalg.norm)."""
    x, y = v[..., 0], v[..., 1]
    return np.sqrt(x * x + y * y)


_PAIR_TREE_MIN = 512     # from this many tracks on, close pairs come from a k-d tree
_REAPPEAR_SPARSE_MIN = 1 << 18   # new x lost pairs from which reappearance goes sparse


class SwitchEstimator:
    """Count likely ID switches per frame from tracker decisions.

    Call :meth:`observe` once per frame, after the association, with what the tracker decided.
    """

    def __init__(self, params: SwitchParams | None = None) -> None:
        self.p = params or SwitchParams()
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and zero the counters."""
        self._slots = SlotTable()
        self._box = np.zeros((0, 4))
        self._vel = np.zeros((0, 2))
        self._has_vel = np.zeros(0, bool)
        self._habit = np.zeros((0, 2))
        self._hits = np.zeros(0, np.int64)
        self._seen = np.zeros(0)
        self._claimed = np.zeros(0, bool)
        self._at_border = np.zeros(0, bool)
        self._emb = np.zeros((0, 0), np.float32)
        self._has_emb = np.zeros(0, bool)
        self._box_known = np.zeros(0, bool)
        self.total = 0
        self.by_kind = {'appearance': 0, 'reappear': 0, 'swap': 0, 'jump': 0}
        self._last_stamp: float | None = None
        self._border_key: tuple | None = None
        self._triu = np.zeros((0, 0), bool)
        self._seen_floor = np.inf       # lower bound of _seen over used rows (see _prune)

    def _alloc(self, ids: NDArray[np.int64], dim: int,
               known_rows: NDArray[np.int64] | None = None) -> NDArray[np.int64]:
        if known_rows is not None:          # every ID already has a row: nothing to allocate
            if dim and self._emb.shape[1] != dim:
                self._emb = np.zeros((self._box.shape[0], dim), np.float32)
                self._has_emb[:] = False
            return known_rows
        rows, fresh = self._slots.ensure(ids)
        cap = self._slots.capacity
        if self._box.shape[0] < cap:
            for name in _NAMES:
                setattr(self, name, grow_rows(getattr(self, name), cap))
        if dim and self._emb.shape[1] != dim:
            self._emb = np.zeros((self._box.shape[0], dim), np.float32)
            self._has_emb[:] = False
        self._emb = grow_rows(self._emb, cap)
        if fresh.any():
            f = rows[fresh]
            self._has_vel[f] = False
            self._hits[f] = 0
            self._claimed[f] = False
            self._has_emb[f] = False
            self._box_known[f] = False
        return rows

    def observe(self, stamp_s: float, matched_ids: ArrayLike, matched_boxes: ArrayLike,
                new_ids: ArrayLike, new_boxes: ArrayLike, *, width: int, height: int,
                matched_emb: ArrayLike | None = None, matched_valid: ArrayLike | None = None,
                new_emb: ArrayLike | None = None,
                new_valid: ArrayLike | None = None) -> SwitchReport:
        """Record one frame's decisions and return the switch evidence found in it.

        Args:
            stamp_s: frame time in seconds (the tracker's clock: stamps, or frame / rate in
                frame mode).
            matched_ids: (M,) IDs of existing tracks matched in this frame (any stage).
            matched_boxes: (M, 4) xyxy of the detections they were matched to (raw, not
                Kalman-filtered: the evidence is about what the detector saw).
            new_ids: (K,) IDs of the tracks started in this frame.
            new_boxes: (K, 4) xyxy of the detections that started them.
            width, height: image size (tracks last seen at the border are not claimed).
            matched_emb, new_emb: (M, E) / (K, E) detection embeddings, or None.
            matched_valid, new_valid: (M,) / (K,) which embedding rows are real.

        Returns:
            :class:`SwitchReport`; ``suspected_ids`` are the track IDs involved (freeze their
            appearance memory).
        """
        p = self.p
        t = float(stamp_s)
        mids = np.asarray(matched_ids, np.int64).reshape(-1)
        mbox = np.asarray(matched_boxes, np.float64).reshape(-1, 4)
        nids = np.asarray(new_ids, np.int64).reshape(-1)
        nbox = np.asarray(new_boxes, np.float64).reshape(-1, 4)
        if matched_emb is None and new_emb is None:      # boxes only: no appearance at all
            memb = nemb = None
            mok, nok = np.zeros(mids.size, bool), np.zeros(nids.size, bool)
        else:
            memb, mok = self._emb_rows(matched_emb, matched_valid, mids.size)
            nemb, nok = self._emb_rows(new_emb, new_valid, nids.size)
        dim = memb.shape[1] if memb is not None else (nemb.shape[1] if nemb is not None else 0)
        if dim and self._emb.shape[1] not in (0, dim):
            self._emb = np.zeros((self._emb.shape[0], dim), np.float32)
            self._has_emb[:] = False
        suspects: list[int] = []
        pairs: list[tuple[int, int]] = []
        counts = {'appearance': 0, 'reappear': 0, 'swap': 0, 'jump': 0}

        known_rows = self._slots.rows(mids)
        known = known_rows >= 0
        # rows seen within the window, read lazily: only the appearance and reappearance tests
        # use it, and the bookkeeping in between changes only matched rows, which the
        # reappearance test excludes
        live = None

        # evidence 1: appearance disagreement on a match
        if (memb is not None and known.any() and self._has_emb.any()
                and self._may_disagree(known_rows, memb, mok)):
            # a partly hidden detection looks like its occluder: only clear views testify
            vis = visibility_from_boxes(np.concatenate([mbox, nbox]))[:mids.size]
            clear = mok & (vis >= p.appearance_min_visibility)
            live = self._live_rows(t)
            self._appearance(mids, known_rows, memb, clear, live, counts, suspects, pairs)

        emb_width = self._emb.shape[1]
        matched_now = np.zeros(self._slots.capacity, bool)
        matched_now[known_rows[known]] = True
        # common case, every match has a row and each ID comes once: the jump test and the
        # bookkeeping of the matches share one read of their state (the reappearance test
        # below reads only unmatched rows, so it may run after the bookkeeping)
        fused = bool(mids.size and known.all() and np.count_nonzero(matched_now) == mids.size)
        if fused:
            # evidence 4 (jump) + bookkeeping of the matches
            c_new = self._jumps_and_record(t, mids, known_rows, mbox, memb, mok, width, height,
                                           counts, suspects, pairs)
        elif known.any():
            # evidence 4: a track jumping to a detection far from where it was heading
            self._jumps(t, mids, known_rows, mbox, counts, suspects, pairs)

        # evidence 2: a lost identity reappearing under a new ID
        if nids.size:
            if live is None:
                live = self._live_rows(t)
            self._reappear(t, nids, nbox, nemb, nok, live & ~matched_now[:live.size],
                           counts, suspects, pairs, emb_width)

        # bookkeeping: matched tracks move on, new tracks enter
        if not fused:
            self._record(t, mids, mbox, memb, mok, width, height)
        self._record(t, nids, nbox, nemb, nok, width, height)

        # evidence 3: crossing tracks that swap (on the velocities including this frame)
        if fused:
            if mids.size >= 2:      # the rows' boxes are now mbox (IDs unique): reuse them
                self._swaps(mids, known_rows, counts, suspects, pairs, (mbox, c_new))
        elif np.count_nonzero(known) >= 2:
            self._swaps(mids[known], known_rows[known], counts, suspects, pairs)
        self._prune(t)
        self._last_stamp = t
        count = sum(counts.values())
        if count:
            self.total += count
            for k, v in counts.items():
                self.by_kind[k] += v
        return SwitchReport(count, (np.unique(np.asarray(suspects, np.int64)) if suspects
                                    else np.zeros(0, np.int64)),
                            counts['appearance'], counts['reappear'], counts['swap'],
                            tuple(pairs), counts['jump'])

    # -- evidence ----------------------------------------------------------------------------
    @staticmethod
    def _emb_rows(emb: ArrayLike | None, valid: ArrayLike | None, n: int
                  ) -> tuple[NDArray[np.float32] | None, NDArray[np.bool_]]:
        if emb is None:
            return None, np.zeros(n, bool)
        e = np.asarray(emb, np.float32)
        if e.ndim != 2 or e.shape[0] != n or e.shape[1] == 0:
            return None, np.zeros(n, bool)
        if n == 0:
            return np.zeros(e.shape, np.float32), np.zeros(0, bool)
        e, ok = normalise_rows(e)
        if valid is not None:
            ok &= np.asarray(valid, bool).reshape(-1)
        return e, ok

    def _live_rows(self, t: float) -> NDArray[np.bool_]:
        cap = self._slots.capacity
        return self._slots.used() & ((t - self._seen[:cap]) <= self.p.window_s)

    def _may_disagree(self, rows, memb, mok) -> bool:
        """Cheap pre-check: whether any match may be far from its track's appearance.

        Without one, :meth:`_appearance` finds nothing and changes nothing, so the visibility
        and the match-vs-all-tracks distances are skipped (most frames). The margin covers
        rounding differences between this and the exact test.
        """
        if self._emb.shape[1] != memb.shape[1]:
            return False
        sel = (rows >= 0) & mok
        sel[sel] = self._has_emb[rows[sel]]
        if sel.all():
            own = 1.0 - np.einsum('ij,ij->i', self._emb[rows], memb)
        elif sel.any():
            own = 1.0 - np.einsum('ij,ij->i', self._emb[rows[sel]], memb[sel])
        else:
            return False
        return bool((own > self.p.disagree_dist - 1e-3).any())

    def _appearance(self, mids, rows, memb, mok, live, counts, suspects, pairs) -> None:
        p = self.p
        sel = (rows >= 0) & mok
        sel[sel] = self._has_emb[rows[sel]]
        if not sel.any() or self._emb.shape[1] != memb.shape[1]:
            return
        cand = np.flatnonzero(live[:self._slots.capacity] & self._has_emb[:live.size])
        r = rows[sel]
        e = memb[sel]
        own = 1.0 - np.einsum('ij,ij->i', self._emb[r], e)
        if cand.size == 0:
            return
        other = 1.0 - e @ self._emb[cand].T                      # (m, c)
        other[cand[None, :] == r[:, None]] = np.inf
        best = other.argmin(axis=1)
        bd = other[np.arange(r.size), best]
        hit = (own > p.disagree_dist) & (bd < p.agree_dist) & (bd < own - p.agree_margin)
        if not hit.any():
            return
        id_of = self._id_of_rows()
        for i in np.flatnonzero(hit):
            tid, oid = int(mids[sel][i]), int(id_of[cand[best[i]]])
            counts['appearance'] += 1
            suspects.extend((tid, oid))
            pairs.append((tid, oid))
        # adopt the new appearance so the same mix-up is not counted again next frame
        self._emb[r[hit]] = e[hit]

    def _swaps(self, ids, rows, counts, suspects, pairs, current=None) -> None:
        """``current``: (boxes, centres) equal to ``self._box[rows]`` and its centres, if known."""
        p = self.p
        sel = self._hits[rows] >= p.swap_min_hits
        n_sel = np.count_nonzero(sel)
        if n_sel < 2:
            return
        every = n_sel == rows.size
        r = rows if every else rows[sel]
        if current is None:
            b = self._box[r]
            c = _centres(b)
        elif every:
            b, c = current
        else:
            b, c = current[0][sel], current[1][sel]
        h = b[:, 3] - b[:, 1]
        np.maximum(h, 1.0, out=h)
        # pairs i < j closer than the larger box height: squared distances of all pairs against
        # the tallest box (a superset, with margin), then the exact test on those pairs only
        tallest = float(np.fmax.reduce(h))               # NaN boxes (never near) ignored
        limit2 = (1.01 * p.swap_near * tallest) ** 2
        if h.size >= _PAIR_TREE_MIN:     # crowds: a k-d tree, never the (n, n) matrices
            pi, pj, d2p = _close_pairs(c, limit2)
        else:
            dx = np.subtract.outer(c[:, 0], c[:, 0])
            dy = np.subtract.outer(c[:, 1], c[:, 1])
            d2 = dx * dx
            d2 += dy * dy
            cand = d2 < limit2
            cand &= self._upper(h.size)
            pi, pj = cand.nonzero()                      # row-major, i < j
            d2p = d2[pi, pj]
        if pi.size == 0:
            return
        hi, hj = h[pi], h[pj]
        near = np.sqrt(d2p) < p.swap_near * np.maximum(hi, hj)   # |c_i - c_j|
        if not near.any():
            return
        pi, pj = pi[near], pj[near]
        # velocities in box heights per second, only for rows in a near pair (same floats as
        # over all rows): own = |fast - habit| per track, then the crossed fits and the habit
        # separation of each pair, in one norm over the stacked differences
        k = pi.size
        both = np.concatenate([pi, pj])
        rb = r[both]
        hb = h[both][:, None]
        fast = self._vel[rb] / hb
        habit = self._habit[rb] / hb
        fi, fj, hi, hj = fast[:k], fast[k:], habit[:k], habit[k:]
        norms = _norm2(np.concatenate([fast - habit, fi - hj, fj - hi, hi - hj]))
        chosen = norms[:k] + norms[k:2 * k]
        swapped = norms[2 * k:3 * k] + norms[3 * k:4 * k]   # each fits the other's habit
        sep = norms[4 * k:]
        hit = (sep > p.swap_sep) & (swapped < p.swap_ratio * chosen)
        if not hit.any():
            return
        if n_sel != rows.size:
            ids = ids[sel]
        used: set[int] = set()
        for i, j in zip(pi[hit].tolist(), pj[hit].tolist()):
            if i in used or j in used:
                continue
            used.update((int(i), int(j)))
            a, b_ = int(ids[i]), int(ids[j])
            counts['swap'] += 2
            suspects.extend((a, b_))
            pairs.append((a, b_))
            self._habit[r[[i, j]]] = self._vel[r[[i, j]]]     # accept the new motion

    def _upper(self, n: int) -> NDArray[np.bool_]:
        """(n, n) mask of i < j (a view of one cached, grown-on-demand mask)."""
        if self._triu.shape[0] < n:
            m = max(n, 2 * self._triu.shape[0], 64)
            self._triu = np.triu(np.ones((m, m), bool), 1)
        return self._triu[:n, :n]

    def _jumps(self, t, mids, rows, mbox, counts, suspects, pairs) -> None:
        p = self.p
        sel = rows >= 0
        sel[sel] = self._has_vel[rows[sel]] & ((t - self._seen[rows[sel]]) <= p.jump_max_gap_s)
        if not sel.any():
            return
        r = rows[sel]
        last = self._box[r]
        h = np.maximum(last[:, 3] - last[:, 1], 1.0)
        dt = (t - self._seen[r])[:, None]
        pred = _centres(last) + self._vel[r] * dt
        res = _norm2(_centres(mbox[sel]) - pred) / h
        hit = res > p.jump
        for tid in mids[sel][hit].tolist():
            counts['jump'] += 1
            suspects.append(int(tid))
            pairs.append((int(tid), -1))

    def _reappear(self, t, nids, nbox, nemb, nok, lost, counts, suspects, pairs,
                  emb_width) -> None:
        p = self.p
        cand = np.flatnonzero(lost & ~self._claimed[:lost.size] & ~self._at_border[:lost.size]
                              & (self._hits[:lost.size] >= p.reappear_min_hits))
        if cand.size == 0:
            return
        gap = np.maximum(t - self._seen[cand], 0.0)
        cb = self._box[cand]
        ch = np.maximum(cb[:, 3] - cb[:, 1], 1.0)
        cc = _centres(cb) + np.where(self._has_vel[cand, None], self._vel[cand], 0.0) * \
            np.minimum(gap, p.reappear_max_extrap_s)[:, None]
        nc = _centres(nbox)
        nh = np.maximum(nbox[:, 3] - nbox[:, 1], 1.0)
        tol = p.reappear_pos + p.reappear_pos_per_s * gap
        geometric = nemb is None or emb_width != nemb.shape[1]
        if geometric and nc.shape[0] * cand.size >= _REAPPEAR_SPARSE_MIN:
            self._reappear_sparse(nids, nc, nh, cand, cc, ch, tol, counts, suspects, pairs)
            return
        res = _norm2(nc[:, None, :] - cc[None, :, :]) / ch[None, :]
        ratio = nh[:, None] / ch[None, :]
        ok = (res < tol[None, :]) & (ratio < p.size_ratio) & (ratio > 1.0 / p.size_ratio)
        if nemb is not None and emb_width == nemb.shape[1]:
            both = nok[:, None] & self._has_emb[cand][None, :]
            app = 1.0 - nemb @ self._emb[cand].T
            # with embeddings on both sides the appearance decides
            ok = np.where(both, app < p.reappear_dist, ok)
            score = np.where(both, app, res)
        else:
            score = res
        score = np.where(ok, score, np.inf)
        id_of = self._id_of_rows()
        taken = np.zeros(cand.size, bool)
        for k in np.argsort(score.min(axis=1), kind='stable'):
            s = np.where(taken, np.inf, score[k])
            j = int(np.argmin(s))
            if not np.isfinite(s[j]):
                continue
            taken[j] = True
            self._claimed[cand[j]] = True
            old, new = int(id_of[cand[j]]), int(nids[k])
            counts['reappear'] += 1
            suspects.extend((old, new))
            pairs.append((new, old))

    def _reappear_sparse(self, nids, nc, nh, cand, cc, ch, tol, counts, suspects,
                         pairs) -> None:
        """:meth:`_reappear` without embeddings for many tracks: only pairs within reach.

        A k-d tree on the new centres proposes, per lost candidate, the new tracks within its
        reach (``tol * height``, a superset); the exact dense tests then decide, and the greedy
        claim runs in the same order with the same ties (rows by best score, then index;
        within a row the best untaken candidate, lowest index first).
        """
        from scipy.spatial import cKDTree

        p = self.p
        fin = np.flatnonzero(np.isfinite(nc).all(axis=1))
        reach = tol * ch * (1.0 + 1e-9) + 1e-9
        okc = np.isfinite(reach) & np.isfinite(cc).all(axis=1)
        if fin.size == 0 or not okc.any():
            return
        tree = cKDTree(nc[fin])
        cj = np.flatnonzero(okc)
        hits = tree.query_ball_point(cc[cj], reach[cj])
        lens = np.fromiter((len(h) for h in hits), np.int64, cj.size)
        if lens.sum() == 0:
            return
        j = np.repeat(cj, lens)
        k = fin[np.concatenate([np.asarray(h, np.int64) for h in hits if len(h)])]
        res = _norm2(nc[k] - cc[j]) / ch[j]
        ratio = nh[k] / ch[j]
        ok = (res < tol[j]) & (ratio < p.size_ratio) & (ratio > 1.0 / p.size_ratio)
        k, j, score = k[ok], j[ok], res[ok]
        if k.size == 0:
            return
        order = np.lexsort((j, score, k))            # per row: best first, lowest index on ties
        k, j, score = k[order], j[order], score[order]
        first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        ends = np.r_[first[1:], k.size]
        row_order = np.lexsort((k[first], score[first]))    # rows by best score, then index
        id_of = self._id_of_rows()
        taken = np.zeros(cand.size, bool)
        for r in row_order.tolist():
            for e in range(first[r], ends[r]):
                jj = int(j[e])
                if taken[jj]:
                    continue
                taken[jj] = True
                self._claimed[cand[jj]] = True
                old, new = int(id_of[cand[jj]]), int(nids[k[e]])
                counts['reappear'] += 1
                suspects.extend((old, new))
                pairs.append((new, old))
                break

    # -- state -------------------------------------------------------------------------------
    def _id_of_rows(self) -> NDArray[np.int64]:
        return self._slots.id_of_rows()

    def _jumps_and_record(self, t, ids, rows, boxes, emb, ok, width, height, counts, suspects,
                          pairs) -> None:
        """:meth:`_jumps` then :meth:`_record` for matches that all have a row, each once."""
        p = self.p
        rows = self._alloc(ids, emb.shape[1] if emb is not None else 0, rows)
        last = self._box[rows]
        dt = t - self._seen[rows]
        has_vel = self._has_vel[rows]
        vel = self._vel[rows]
        c_old = _centres(last)
        c_new = _centres(boxes)
        sel = has_vel & (dt <= p.jump_max_gap_s)
        n_sel = np.count_nonzero(sel)
        if n_sel:
            h = last[:, 3] - last[:, 1]
            np.maximum(h, 1.0, out=h)
            if n_sel == sel.size:
                res = _norm2(c_new - (c_old + vel * dt[:, None])) / h
                jumped = ids[res > p.jump]
            else:
                pred = c_old[sel] + vel[sel] * dt[sel, None]
                res = _norm2(c_new[sel] - pred) / h[sel]
                jumped = ids[sel][res > p.jump]
            for tid in jumped.tolist():
                counts['jump'] += 1
                suspects.append(int(tid))
                pairs.append((int(tid), -1))
        self._update_state(t, rows, boxes, emb, ok, width, height, dt, c_old, c_new, has_vel,
                           vel)
        return c_new

    def _record(self, t, ids, boxes, emb, ok, width, height) -> None:
        if ids.size == 0:
            return
        rows = self._alloc(ids, emb.shape[1] if emb is not None else 0)
        last = self._box[rows]
        self._update_state(t, rows, boxes, emb, ok, width, height, t - self._seen[rows],
                           _centres(last), _centres(boxes), self._has_vel[rows],
                           self._vel[rows])

    def _update_state(self, t, rows, boxes, emb, ok, width, height, dt, c_old, c_new, has_vel,
                      vel) -> None:
        """Move matched/new tracks on; ``dt``, ``c_old``, ``has_vel``, ``vel`` read before."""
        p = self.p
        upd = self._box_known[rows] & (dt > 1e-9)
        every = upd.all()
        if every or upd.any():
            if every:                               # the common case: no selection copies
                r, had = rows, has_vel
                v_obs = c_new - c_old
                v_obs /= dt[:, None]
            else:
                r, had, vel = rows[upd], has_vel[upd], vel[upd]
                v_obs = (c_new[upd] - c_old[upd]) / dt[upd, None]
            m, mh = p.velocity_momentum, p.habit_momentum
            new_vel = m * vel + (1 - m) * v_obs
            new_habit = mh * self._habit[r] + (1 - mh) * v_obs
            if not had.all():                       # first velocity: the observation itself
                new_vel = np.where(had[:, None], new_vel, v_obs)
                new_habit = np.where(had[:, None], new_habit, v_obs)
            self._vel[r] = new_vel
            self._habit[r] = new_habit
            self._has_vel[r] = True
        self._hits[rows] += 1
        self._box[rows] = boxes
        self._seen[rows] = t
        self._claimed[rows] = False
        # x1 <= b or y1 <= b or x2 >= width - b or y2 >= height - b (NaN: never true)
        lo, hi = self._border_limits(width, height)
        edge = boxes <= lo
        edge |= boxes >= hi
        # any per row: the four bool bytes of a row read as one uint32 (cheaper than any(axis))
        self._at_border[rows] = (edge.view(np.uint32)[:, 0] != 0 if edge.flags.c_contiguous
                                 else edge.any(axis=1))
        if emb is not None and ok.any() and self._emb.shape[1] == emb.shape[1]:
            r = rows[ok]
            e = emb[ok]
            m = p.emb_momentum
            had = self._has_emb[r]
            mixed = m * self._emb[r] + (1 - m) * e
            mixed, good = normalise_rows(mixed if had.all() else np.where(had[:, None], mixed, e))
            self._emb[r] = mixed if good.all() else np.where(good[:, None], mixed, e)
            self._has_emb[r] = True
        self._box_known[rows] = True

    def _border_limits(self, width: int, height: int
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-column border limits for xyxy boxes (NaN columns never compare true), cached."""
        key = (width, height, self.p.border_px)
        if self._border_key != key:
            b = self.p.border_px
            self._border = (np.array([b, b, np.nan, np.nan], np.float64),
                            np.array([np.nan, np.nan, width - b, height - b], np.float64))
            self._border_key = key
        return self._border

    def _prune(self, t: float) -> None:
        # every used row was seen at or after _seen_floor (rows written this frame: at t), and
        # t - seen only grows as seen falls: when the floor is within the window, so is every row
        floor = self._seen_floor = min(self._seen_floor, t)
        if t - floor <= self.p.window_s:
            return
        cap = self._slots.capacity
        old = self._slots.used() & ((t - self._seen[:cap]) > self.p.window_s)
        if old.any():
            # forget them in insertion order (the order rows are freed decides their reuse)
            freed = self._slots.remove(self._slots.ids_of(np.flatnonzero(old)))
            self._box_known[freed] = False
            self._has_vel[freed] = False
            self._has_emb[freed] = False
        used = self._slots.used()
        self._seen_floor = float(self._seen[:cap][used].min()) if used.any() else np.inf
