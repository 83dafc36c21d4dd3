"""Per-track appearance memory and its fusion into the association cost.

Each track keeps an EMA embedding (smooth, follows slow appearance change) plus up to ``k``
prototypes ranked by detection quality (sharp views kept for re-identification after the EMA
has drifted). Only good detections update it (visible, confident, large enough), one update can
rotate the EMA by at most ``memory_max_angle_deg`` (a single wrong match cannot overwrite an
identity), and :meth:`AppearanceMemory.freeze` stops updates for ``memory_freeze_frames`` frames
after a suspected switch.

:func:`fuse_appearance` adds appearance to an IoU cost the way BoT-SORT does for tracked tracks
(cosine distance used only where the boxes are close and the appearance is similar, fused by
``min``), and keeps *lost* tracks re-identifiable when their predicted box no longer overlaps
(no proximity gate for them, but the stricter ``reid_thresh``).

All distances are cosine distances ``1 - cos`` in [0, 2]. Everything is vectorised over tracks
and detections; missing embeddings give NaN distances, which never support a match.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from assoc_logger_ros.config import MemoryConfig

_EPS = 1e-12


def normalise_rows(x: NDArray[np.floating]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Unit rows and which rows were usable (finite, non-zero)."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    # scale by the largest entry first: float32 extremes must not overflow the norm
    peak = np.abs(x).max(axis=1, initial=0.0)
    finite = np.isfinite(peak)              # NaN and inf entries propagate into the peak
    if not finite.all():
        x[~finite] = 0.0
        peak[~finite] = 0.0
    x /= np.where(peak > 0, peak, 1.0)[:, None]
    norm = np.sqrt(np.add.reduce(x * x, axis=1))      # np.linalg.norm(x, axis=1), same floats
    ok = finite & (peak > 1e-30) & (norm > 0)
    if ok.all():
        x /= norm[:, None]
        return x.astype(np.float32), ok
    out = np.zeros(x.shape, np.float32)
    out[ok] = x[ok] / norm[ok, None]
    return out, ok


class SlotTable:
    """Map track IDs to rows of growable arrays (one row per live ID, rows reused).

    Lookups are vectorised (binary search in a sorted copy of the live IDs); only IDs that are
    new or removed are handled one by one. Freed rows are reused last-freed first.
    """

    def __init__(self) -> None:
        self._keys = np.zeros(0, np.int64)        # live IDs, ascending
        self._key_rows = np.zeros(0, np.int64)    # their rows
        self._id_at = np.zeros(0, np.int64)       # per row: its ID (-1 when free)
        self._used = np.zeros(0, bool)            # per row: held by an ID
        self._seq = np.zeros(0, np.int64)         # per row: allocation order (insertion order)
        self._next_seq = 0
        self._free: list[int] = []
        self.capacity = 0

    def __len__(self) -> int:
        return int(self._keys.size)

    def ids(self) -> NDArray[np.int64]:
        """IDs currently held, in insertion order."""
        rows = self._key_rows[np.argsort(self._seq[self._key_rows], kind='stable')]
        return self._id_at[rows]

    def id_of_rows(self) -> NDArray[np.int64]:
        """(capacity,) the ID held by each row, -1 for free rows (a copy)."""
        return self._id_at[:self.capacity].copy()

    def ids_of(self, rows: ArrayLike) -> NDArray[np.int64]:
        """IDs held by these rows, in insertion order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        return self._id_at[rows[np.argsort(self._seq[rows], kind='stable')]]

    def used(self) -> NDArray[np.bool_]:
        """(capacity,) which rows are held by an ID (a view: do not modify)."""
        return self._used[:self.capacity]

    def rows(self, ids: ArrayLike) -> NDArray[np.int64]:
        """Row of each ID, -1 where unknown."""
        ids = np.asarray(ids).reshape(-1).astype(np.int64, copy=False)
        n = self._keys.size
        if n == 0 or ids.size == 0:
            return np.full(ids.size, -1, np.int64)
        pos = np.minimum(np.searchsorted(self._keys, ids), n - 1)
        return np.where(self._keys[pos] == ids, self._key_rows[pos], -1)

    def ensure(self, ids: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Rows of the IDs, allocating new ones; also which rows are fresh."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        rows = self.rows(ids)
        fresh = np.zeros(ids.shape[0], bool)
        unknown = np.flatnonzero(rows < 0)
        if unknown.size == 0:
            return rows, fresh
        given: dict[int, int] = {}
        for n, i in zip(unknown.tolist(), ids[unknown].tolist()):
            r = given.get(i)
            if r is None:
                if self._free:
                    r = self._free.pop()
                else:
                    r = self.capacity
                    self.capacity += 1
                given[i] = r
                fresh[n] = True
            rows[n] = r
        if self._id_at.shape[0] < self.capacity:
            self._id_at = _grow_filled(self._id_at, self.capacity, -1)
            self._seq = _grow_filled(self._seq, self.capacity, 0)
            self._used = _grow_filled(self._used, self.capacity, 0)
        new_ids = np.fromiter(given.keys(), np.int64, len(given))
        new_rows = np.fromiter(given.values(), np.int64, len(given))
        self._id_at[new_rows] = new_ids
        self._used[new_rows] = True
        self._seq[new_rows] = np.arange(self._next_seq, self._next_seq + new_rows.size)
        self._next_seq += new_rows.size
        keys = np.concatenate([self._keys, new_ids])
        order = np.argsort(keys, kind='stable')
        self._keys = keys[order]
        self._key_rows = np.concatenate([self._key_rows, new_rows])[order]
        return rows, fresh

    def remove(self, ids: ArrayLike) -> NDArray[np.int64]:
        """Forget IDs; returns the freed rows (in the order the IDs were given)."""
        rows = self.rows(np.asarray(ids, dtype=np.int64))
        rows = rows[rows >= 0]
        if rows.size == 0:
            return rows
        _, first = np.unique(rows, return_index=True)     # an ID given twice is freed once
        if first.size < rows.size:
            rows = rows[np.sort(first)]
        self._free.extend(rows.tolist())
        self._id_at[rows] = -1
        self._used[rows] = False
        keep = self._used[self._key_rows]
        self._keys = self._keys[keep]
        self._key_rows = self._key_rows[keep]
        return rows

    def clear(self) -> None:
        """Forget everything (capacity is kept by the owner's arrays)."""
        self._keys = np.zeros(0, np.int64)
        self._key_rows = np.zeros(0, np.int64)
        self._id_at[:] = -1
        self._used[:] = False
        self._free = list(range(self.capacity))[::-1]


def _grow_filled(arr: NDArray, rows: int, fill: int) -> NDArray:
    new = np.full(max(rows, 2 * arr.shape[0], 16), fill, dtype=arr.dtype)
    new[:arr.shape[0]] = arr
    return new


def grow_rows(arr: NDArray, rows: int) -> NDArray:
    """``arr`` with at least ``rows`` rows (doubling), new rows zero."""
    if arr.shape[0] >= rows:
        return arr
    new = np.zeros((max(rows, 2 * arr.shape[0], 16),) + arr.shape[1:], dtype=arr.dtype)
    new[:arr.shape[0]] = arr
    return new


def detection_quality(visibility: ArrayLike, scores: ArrayLike, boxes: ArrayLike,
                      min_box_side: float) -> NDArray[np.float32]:
    """Quality of a detection as an appearance sample, in [0, 1].

    ``visibility * confidence * size`` where ``size`` grows linearly with the short box side up
    to twice ``min_box_side`` (small boxes give blurry descriptors).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    side = np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    size = np.ones_like(side) if min_box_side <= 0 else np.clip(side / (2 * min_box_side), 0, 1)
    q = (np.clip(np.asarray(visibility, np.float64).reshape(-1), 0, 1)
         * np.clip(np.asarray(scores, np.float64).reshape(-1), 0, 1) * size)
    q[np.isnan(q)] = 0.0      # q is in [0, 1] or NaN (the clips map inf into range)
    return q.astype(np.float32)


class AppearanceMemory:
    """Per-track EMA embedding plus up to ``k`` quality-ranked prototypes.

    The embedding width is learnt from the first update; a later update with another width
    (the descriptor changed) clears the memory rather than mixing spaces. Track IDs are the
    tracker's; call :meth:`remove` when a track is removed and :meth:`step` once per frame.
    """

    def __init__(self, cfg: MemoryConfig | None = None) -> None:
        self.cfg = cfg or MemoryConfig()
        self._k = int(self.cfg.memory_prototypes)
        self._max_angle = math.radians(self.cfg.memory_max_angle_deg)
        self.reset()

    # -- bookkeeping -------------------------------------------------------------------------
    def reset(self, dim: int = 0) -> None:
        """Forget every track (and the embedding width unless ``dim`` is given)."""
        self.dim = int(dim)
        self._slots = SlotTable()
        self._ema = np.zeros((0, self.dim), np.float32)
        self._has_ema = np.zeros(0, bool)
        self._protos = np.zeros((0, self._k, self.dim), np.float32)
        self._proto_q = np.full((0, self._k), -1.0, np.float32)   # -1: empty prototype slot
        self._frozen = np.zeros(0, np.int64)                       # frames left frozen
        self.updates = 0
        self.rejected = 0

    def _alloc(self, ids: ArrayLike) -> NDArray[np.int64]:
        rows, fresh = self._slots.ensure(ids)
        cap = self._slots.capacity
        self._ema = grow_rows(self._ema, cap)
        self._has_ema = grow_rows(self._has_ema, cap)
        self._protos = grow_rows(self._protos, cap)
        if self._proto_q.shape[0] < cap:
            old = self._proto_q
            self._proto_q = np.full((self._ema.shape[0], self._k), -1.0, np.float32)
            self._proto_q[:old.shape[0]] = old
        self._frozen = grow_rows(self._frozen, cap)
        if fresh.any():
            self._clear_rows(rows[fresh])
        return rows

    def _clear_rows(self, rows: NDArray[np.int64]) -> None:
        self._ema[rows] = 0.0
        self._has_ema[rows] = False
        self._protos[rows] = 0.0
        self._proto_q[rows] = -1.0
        self._frozen[rows] = 0

    def remove(self, track_ids: ArrayLike) -> None:
        """Forget removed tracks (their rows are reused)."""
        rows = self._slots.remove(track_ids)
        if rows.size:
            self._clear_rows(rows)

    def freeze(self, track_ids: ArrayLike, frames: int | None = None) -> None:
        """Stop updates of these tracks for ``frames`` (default memory_freeze_frames) frames.

        Only tracks that already have a memory are frozen (a track without one has nothing to
        protect, and unknown IDs must not allocate rows that nobody removes).
        """
        n = self.cfg.memory_freeze_frames if frames is None else int(frames)
        rows = self._slots.rows(track_ids)
        rows = rows[rows >= 0]      # unknown IDs (removed, or without memory yet): nothing to do
        if rows.size:
            self._frozen[rows] = np.maximum(self._frozen[rows], n)

    def step(self) -> None:
        """Advance one frame: freeze counters count down."""
        np.subtract(self._frozen, 1, out=self._frozen, where=self._frozen > 0)

    def frozen(self, track_ids: ArrayLike) -> NDArray[np.bool_]:
        """(T,) whether each track's memory is frozen now."""
        rows = self._slots.rows(track_ids)
        out = np.zeros(rows.shape[0], bool)
        ok = rows >= 0
        out[ok] = self._frozen[rows[ok]] > 0
        return out

    def __len__(self) -> int:
        return len(self._slots)

    # -- updates -----------------------------------------------------------------------------
    def gate(self, valid: ArrayLike, visibility: ArrayLike, scores: ArrayLike,
             boxes: ArrayLike) -> NDArray[np.bool_]:
        """Which detections are good enough to update a memory (visibility, score, box side)."""
        c = self.cfg
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        side = np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        vis = np.asarray(visibility, np.float64).reshape(-1)
        sc = np.asarray(scores, np.float64).reshape(-1)
        with np.errstate(invalid='ignore'):
            return (np.asarray(valid, bool).reshape(-1)
                    & (vis >= c.memory_min_visibility) & (sc >= c.memory_min_confidence)
                    & (side >= c.memory_min_box_side))

    def update(self, track_ids: ArrayLike, embeddings: ArrayLike | None, valid: ArrayLike | None,
               visibility: ArrayLike, scores: ArrayLike, boxes: ArrayLike) -> int:
        """Update the memories of matched tracks with their detections (one row per pair).

        Rows failing the quality gate, missing embeddings and frozen tracks are skipped.
        Returns how many memories were updated.
        """
        ids = np.asarray(track_ids, np.int64).reshape(-1)
        if embeddings is None or ids.size == 0:
            return 0
        emb = np.asarray(embeddings, np.float32)
        if emb.ndim != 2 or emb.shape[0] != ids.size or emb.shape[1] == 0:
            return 0
        if emb.shape[1] != self.dim:
            self.reset(emb.shape[1])
        emb, usable = normalise_rows(emb)
        ok = usable & (np.ones(ids.size, bool) if valid is None
                       else np.asarray(valid, bool).reshape(-1))
        ok &= self.gate(ok, visibility, scores, boxes)
        self.rejected += int(ids.size - ok.sum())
        if not ok.any():
            return 0
        # one update per track per call: keep the first occurrence of a duplicated ID
        srt = np.sort(ids)
        if (srt[1:] == srt[:-1]).any():
            _, first = np.unique(ids, return_index=True)
            dup_free = np.zeros(ids.size, bool)
            dup_free[first] = True
            ok &= dup_free
        rows = self._alloc(ids[ok])
        emb = emb[ok]
        live = self._frozen[rows] == 0
        rows, emb = rows[live], emb[live]
        if rows.size == 0:
            return 0
        q = detection_quality(np.asarray(visibility, np.float64).reshape(-1)[ok][live],
                              np.asarray(scores, np.float64).reshape(-1)[ok][live],
                              np.asarray(boxes, np.float64).reshape(-1, 4)[ok][live],
                              self.cfg.memory_min_box_side)
        had = self._has_ema[rows].copy()
        before = self._ema[rows].copy()
        self._update_ema(rows, emb)
        if self._k > 0:
            # a prototype must look like the track: samples far from the EMA (a mix-up, an
            # occluder's descriptor) are not admitted, and prototypes the EMA has moved away
            # from are dropped, so the min over prototypes cannot match two identities
            consistent = ~had | (1.0 - np.einsum('ij,ij->i', before, emb)
                                 <= self.cfg.appear_thresh)
            self._update_prototypes(rows[consistent], emb[consistent], q[consistent])
            self._drop_stale_prototypes(rows)
        self.updates += int(rows.size)
        return int(rows.size)

    def _update_ema(self, rows: NDArray[np.int64], emb: NDArray[np.float32]) -> None:
        has = self._has_ema[rows]
        old = self._ema[rows]
        m = self.cfg.memory_ema
        target = m * old + (1.0 - m) * emb
        target, ok = normalise_rows(target)
        # antipodal update (target ~ 0): keep the old direction
        target[~ok] = old[~ok]
        # clamp the rotation old -> target to max_angle by spherical interpolation
        cos = np.clip(np.einsum('ij,ij->i', old, target), -1.0, 1.0)
        theta = np.arccos(cos)
        clamp = has & (theta > self._max_angle) & (theta > 1e-6)
        if clamp.any():
            th = theta[clamp, None]
            t = self._max_angle / th
            s = np.sin(th)
            target[clamp] = (np.sin((1 - t) * th) / s) * old[clamp] + (np.sin(t * th) / s) * \
                target[clamp]
            target[clamp], _ = normalise_rows(target[clamp])
        new = np.where(has[:, None], target, emb)
        self._ema[rows] = new
        self._has_ema[rows] = True

    def _drop_stale_prototypes(self, rows: NDArray[np.int64]) -> None:
        sim = np.matmul(self._protos[rows], self._ema[rows][:, :, None])[:, :, 0]
        stale = (self._proto_q[rows] >= 0) & (1.0 - sim > 2.0 * self.cfg.appear_thresh)
        if stale.any():
            u, k = np.nonzero(stale)
            self._protos[rows[u], k] = 0.0
            self._proto_q[rows[u], k] = -1.0

    def _update_prototypes(self, rows: NDArray[np.int64], emb: NDArray[np.float32],
                           q: NDArray[np.float32]) -> None:
        """Insert each sample unless a better near-duplicate exists; evict the worst when full.

        A sample within ``_DUP`` cosine distance of an existing prototype competes with that one
        only (keeps the prototypes diverse); otherwise it takes an empty slot or the slot of the
        lowest-quality prototype if it beats it.
        """
        protos = self._protos[rows]                       # (U, k, E)
        pq = self._proto_q[rows]                          # (U, k)
        sim = np.matmul(protos, emb[:, :, None])[:, :, 0]
        sim[pq < 0] = -np.inf
        nearest = np.argmax(sim, axis=1)
        u = np.arange(rows.size)
        is_dup = sim[u, nearest] >= 1.0 - _DUP
        worst = np.argmin(pq, axis=1)                     # empty slots (-1) come first
        slot = np.where(is_dup, nearest, worst)
        take = q > pq[u, slot]
        if take.any():
            r, s = rows[take], slot[take]
            self._protos[r, s] = emb[take]
            self._proto_q[r, s] = q[take]

    # -- queries -----------------------------------------------------------------------------
    def has(self, track_ids: ArrayLike) -> NDArray[np.bool_]:
        """(T,) whether each track has any appearance stored."""
        rows = self._slots.rows(track_ids)
        out = np.zeros(rows.shape[0], bool)
        ok = rows >= 0
        out[ok] = self._has_ema[rows[ok]]
        return out

    def embeddings(self, track_ids: ArrayLike) -> NDArray[np.float32]:
        """(T, E) unit EMA embeddings, zero rows for tracks without memory."""
        rows = self._slots.rows(track_ids)
        out = np.zeros((rows.shape[0], self.dim), np.float32)
        ok = rows >= 0
        out[ok] = self._ema[rows[ok]]
        out[~self.has(track_ids)] = 0.0
        return out

    def prototypes(self, track_id: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Stored prototypes of one track and their qualities (for tests and inspection)."""
        r = int(self._slots.rows([track_id])[0])
        if r < 0:
            return np.zeros((0, self.dim), np.float32), np.zeros(0, np.float32)
        keep = self._proto_q[r] >= 0
        return self._protos[r][keep].copy(), self._proto_q[r][keep].copy()

    def distance(self, track_ids: ArrayLike, det_emb: ArrayLike | None,
                 det_valid: ArrayLike | None = None,
                 det_visibility: ArrayLike | None = None) -> NDArray[np.float64]:
        """(T, D) cosine distance: min over the EMA and the prototypes; NaN where unknown.

        NaN where the track has no memory, the detection has no (valid) embedding, the
        detection embedding has another width than the memory, or (when ``det_visibility`` is
        given) the detection is less visible than ``memory_min_visibility``: the descriptor of a
        half-hidden object is half its occluder's and would pull the match towards the occluder.
        """
        ids = np.asarray(track_ids, np.int64).reshape(-1)
        n_t = ids.size
        if det_emb is None:
            return np.full((n_t, 0), np.nan)
        det = np.asarray(det_emb, np.float32)
        if det.ndim != 2:
            return np.full((n_t, 0), np.nan)
        n_d = det.shape[0]
        out = np.full((n_t, n_d), np.nan)
        if n_t == 0 or n_d == 0 or det.shape[1] != self.dim or self.dim == 0:
            return out
        det, d_ok = normalise_rows(det)
        if det_valid is not None:
            d_ok &= np.asarray(det_valid, bool).reshape(-1)
        if det_visibility is not None:
            with np.errstate(invalid='ignore'):
                d_ok &= (np.asarray(det_visibility, np.float64).reshape(-1)
                         >= self.cfg.memory_min_visibility)
        rows = self._slots.rows(ids)
        t_ok = rows >= 0
        t_ok[t_ok] = self._has_ema[rows[t_ok]]
        if not t_ok.any() or not d_ok.any():
            return out
        r = rows[t_ok]
        dets = det[d_ok]
        sim = self._ema[r] @ dets.T                                     # (t, d)
        if self._k > 0:
            n_r = r.size
            psim = (self._protos[r].reshape(n_r * self._k, -1) @ dets.T).reshape(
                n_r, self._k, -1)                                       # (t, k, d)
            psim[self._proto_q[r] < 0] = -np.inf
            sim = np.maximum(sim, psim.max(axis=1))
        dist = sim.astype(np.float64)
        np.subtract(1.0, dist, out=dist)
        np.maximum(dist, 0.0, out=dist)            # np.clip(1 - sim, 0, 2): sim is finite
        np.minimum(dist, 2.0, out=dist)
        if r.size == n_t and dets.shape[0] == n_d:
            return dist
        if dets.shape[0] == n_d:
            out[t_ok] = dist
        else:
            full = np.full((r.size, n_d), np.nan)
            full[:, d_ok] = dist
            out[t_ok] = full
        return out


_DUP = 0.02   # cosine distance under which two samples count as the same view


def fuse_appearance(iou_cost: ArrayLike, app_dist: ArrayLike | None,
                    track_lost: ArrayLike, cfg: MemoryConfig | None = None, *,
                    iou_dist: ArrayLike | None = None,
                    reid_allowed: ArrayLike | None = None) -> NDArray[np.float64]:
    """Fuse appearance into an IoU-based cost (T, D); returns a new array.

    * Tracked tracks (BoT-SORT): where the pair is close (``iou_dist <= proximity_thresh``,
      ``iou_dist`` defaulting to ``iou_cost``) and ``app_dist <= appear_thresh``, the cost is
      ``min(iou_cost, app_dist)``; elsewhere it stays ``iou_cost``.
    * Veto: where the overlap is weak (``iou_dist > proximity_thresh``) and the appearance
      clearly differs (``app_dist > appear_veto_thresh``), the cost becomes at least 1.0, so
      ByteTrack's loose ``match_thresh`` cannot hand a track to a passer-by that merely grazes
      its predicted box. Strong overlaps are never vetoed (a descriptor glitch must not break a
      track that geometry supports).
    * Lost tracks: the same, and in addition, anywhere in the image, a pair with
      ``app_dist <= reid_thresh`` gets cost ``min(iou_cost, app_dist)``: re-identification
      without overlap. ``reid_allowed`` (T, D) bool can restrict that (e.g. same class, within
      a plausible distance); the lost-track buffer already bounds how long a track is eligible.
      A pair's re-identification is also refused when the detection's second-best lost track
      is almost as close (margin ``reid_thresh / 2``): ambiguous identities never re-identify.

    NaN (unknown) appearance never changes a cost: a pair without embeddings keeps its IoU cost.
    With appearance memory disabled in ``cfg`` the IoU cost is returned unchanged.
    """
    cfg = cfg or MemoryConfig()
    cost = np.array(iou_cost, dtype=np.float64, copy=True)
    if not cfg.appear_memory_enable or app_dist is None or cost.size == 0:
        return cost
    app = np.asarray(app_dist, dtype=np.float64)
    if app.shape != cost.shape:
        return cost
    lost = np.asarray(track_lost, bool).reshape(-1, 1)
    prox = cost if iou_dist is None else np.asarray(iou_dist, dtype=np.float64)
    known = np.isfinite(app)
    with np.errstate(invalid='ignore'):
        near = known & (prox <= cfg.proximity_thresh) & (app <= cfg.appear_thresh)
        reid = known & lost & (app <= cfg.reid_thresh)
    if reid_allowed is not None:
        reid &= np.asarray(reid_allowed, bool)
    if reid.any():
        # ambiguity test: among lost tracks, the best must beat the runner-up by a margin
        lost_app = np.where(known & lost, app, np.inf)
        if lost_app.shape[0] >= 2:
            two = np.partition(lost_app, 1, axis=0)[:2]
            best, second = two[0], two[1]
            with np.errstate(invalid='ignore'):
                clear = (second - best) >= 0.5 * cfg.reid_thresh
            reid &= (app <= best[None, :]) & clear[None, :]
    use = near | reid
    cost[use] = np.minimum(cost[use], app[use])
    if cfg.appear_veto_thresh < 2.0:
        with np.errstate(invalid='ignore'):
            veto = known & (app > cfg.appear_veto_thresh) & (prox > cfg.proximity_thresh)
        cost[veto] = np.maximum(cost[veto], 1.0)
    return cost
