"""Cross-frame evidence for each label, from a whole session: what ``filter`` sees offline.

The per-frame confidence keys (``tracking/confidence.py``) only know the frame of the match.
Offline, a session's samples give every track's trajectory of matched boxes (past *and*
future), so a label (track t matched detection d at frame f) can be checked against it:

* ``ctx_resid``: how far d's box lies from the track's smooth path at f: the best of three
  fits from its other matched boxes (between the previous and the next, extrapolated from
  the two before, back-extrapolated from the two after), so one odd neighbour does not make
  a good box look odd; a one-frame jump to a neighbour stands out here.
* ``ctx_resid_prev``: the same for the track's previous box; the label at f is the step from
  that box to d, so a spike there makes this label doubtful too (the flip back).
* ``ctx_return``: distance of d to the previous box minus its distance to the box before it;
  > 0 when the track returns towards where it was two matches ago (flip-back).
* ``ctx_rival_fit``: distance of d to the nearest *other* track's path at f, interpolated
  from that track's matches before and after f (its match at f left out); small when d
  fits a rival's trajectory.
* ``ctx_window``: the largest ``ctx_resid`` of the track within ``WINDOW`` frames of f.
* ``ctx_matches_left``: matches the track still has after f in the session (short-lived
  assignments around a crossing end soon).
* ``ctx_window_col_margin``, ``ctx_window_row_margin`` (smallest), ``ctx_window_rival_det_iou``,
  ``ctx_window_rival_track_iou`` (largest), ``ctx_window_rival_fit`` (smallest): the per-frame
  key over the track's ``MATCH_WINDOW`` matches either side of this one; a crowded passage
  marks all its labels, not only the frame where the matching was close.
* ``ctx_overlap``: the largest IoU of d's box with another track's path at f (interpolated as
  for ``ctx_rival_fit``); ``ctx_separation``: the largest ``ctx_overlap`` over the track's
  ``SEPARATION_WINDOW`` matches either side minus this one's; large where the track has just
  come out of (or is about to enter) an overlap, where a drift onto the other person shows.
* ``ctx_since_overlap``: frames since the track's last earlier match that overlapped another
  track (``ctx_overlap`` > ``OVERLAP``); NaN when it never did.
* ``ctx_swap``: for a label within ``SWAP_FRAMES`` of such an overlap, d's distance from the
  track's own path extrapolated from its matches before the overlap began, minus its
  distance from the partner's (the track it overlapped most) extrapolated the same way;
  > 0 when d continues the partner's motion rather than the track's own (a swap).
* ``ctx_retrack_votes`` (only when asked for: it tracks the session again): how many of the
  re-tracking runs of :mod:`~assoc_logger_ros.dataset.retrack` do not put d in one track with
  the detection the track held before (0 to ``RUNS``); ``ctx_retrack_splits``: the stricter
  count of runs that continue the track elsewhere (see ``disagreements``);
  ``ctx_window_retrack_votes``: the largest votes over the track's ``MATCH_WINDOW`` matches
  either side.

Distances are in box heights: ``(|dcx| + |dcy|) / h + |log(h / h_ref)|``. Frames are the
samples' ``frame_idx``. Everything is NaN where it is undefined (a detection that matched no
existing track, a track too short to interpolate). No ground truth is read; memory is the
session's matched boxes (a few numbers per pair), plus its detections when re-tracking.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
import multiprocessing
from typing import Any, Hashable

import numpy as np

from assoc_logger_ros.cpus import usable_cpus
from assoc_logger_ros.dataset.retrack import RUNS, SessionDetections, disagreements, run_track_ids
from assoc_logger_ros.tracking.matching import iou_matrix

CONTEXT_KEYS = ('ctx_resid', 'ctx_resid_prev', 'ctx_return', 'ctx_rival_fit', 'ctx_window',
                'ctx_matches_left', 'ctx_window_col_margin', 'ctx_window_row_margin',
                'ctx_window_rival_det_iou', 'ctx_window_rival_track_iou',
                'ctx_window_rival_fit', 'ctx_retrack_votes', 'ctx_retrack_splits',
                'ctx_window_retrack_votes', 'ctx_overlap', 'ctx_separation',
                'ctx_since_overlap', 'ctx_swap')
# computed only by a SessionContext(retrack=True)
RETRACK_KEYS = ('ctx_retrack_votes', 'ctx_retrack_splits', 'ctx_window_retrack_votes')
# drift across an overlap with another track (docs/labels.md: in no preset, not in the scorer)
OVERLAP_KEYS = ('ctx_overlap', 'ctx_separation', 'ctx_since_overlap', 'ctx_swap')
WINDOW = 5          # frames either side for ctx_window
MATCH_WINDOW = 3    # the track's matches either side for the ctx_window_* keys
# per-frame keys whose extreme over the track's neighbouring matches is kept: (key, np.fmin|fmax)
_WINDOWED = (('pair_col_margin', 'ctx_window_col_margin', np.fmin),
             ('pair_row_margin', 'ctx_window_row_margin', np.fmin),
             ('pair_rival_det_iou', 'ctx_window_rival_det_iou', np.fmax),
             ('pair_rival_track_iou', 'ctx_window_rival_track_iou', np.fmax))
MAX_GAP = 10        # a rival's path is interpolated only across gaps up to this many frames
OVERLAP = 0.3       # IoU with another track's path that makes an overlap (ctx_since_overlap)
SEPARATION_WINDOW = 5   # the track's matches either side for ctx_separation
SWAP_FRAMES = 30    # ctx_swap checks an overlap at most this many frames back
VELOCITY_SPAN = 3   # ctx_swap's velocity: from matches at least this many frames apart
HORIZON = 15        # ctx_swap extrapolates at most this many frames past a match


def _cxcyh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) cx, cy, h, w of xyxy boxes (h and w at least 1 pixel)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                     np.maximum(b[:, 3] - b[:, 1], 1.0), np.maximum(b[:, 2] - b[:, 0], 1.0)],
                    axis=1)


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy of (N, 4+) cx, cy, h, w boxes."""
    half_w, half_h = boxes[:, 3] / 2, boxes[:, 2] / 2
    return np.stack([boxes[:, 0] - half_w, boxes[:, 1] - half_h,
                     boxes[:, 0] + half_w, boxes[:, 1] + half_h], axis=1)


def _against_rivals(paths: Mapping[int, tuple[np.ndarray, np.ndarray]],
                    rivals: Mapping[int, tuple[np.ndarray, np.ndarray]]
                    ) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per track, each box against the other tracks' paths at its frame, one pass per frame.

    (the distance to the nearest path: ``ctx_rival_fit``; the largest IoU with one; whose
    path that is, -1 where no other track's path reaches the frame).
    """
    by_frame: dict[int, list[tuple[int, int]]] = {}
    for tid, (frames, _) in paths.items():
        for k, f in enumerate(frames.astype(np.int64).tolist()):
            by_frame.setdefault(f, []).append((tid, k))
    result = {tid: (np.full(fr.size, np.nan), np.full(fr.size, np.nan),
                    np.full(fr.size, -1, np.int64)) for tid, (fr, _) in paths.items()}
    for f, points in by_frame.items():
        ids, pos = rivals.get(f, (None, None))
        if ids is None:
            continue
        own = np.array([t for t, _ in points])[:, None] == ids[None, :]
        boxes = np.stack([paths[t][1][k] for t, k in points])
        fit = np.where(own, np.inf, box_distance(boxes[:, None], pos[None])).min(axis=1)
        iou = np.where(own, -1.0, iou_matrix(_xyxy(boxes), _xyxy(pos)))
        best = iou.argmax(axis=1)
        for (t, k), d, j, v in zip(points, fit.tolist(), best.tolist(),
                                   iou[np.arange(len(points)), best].tolist()):
            if v >= 0:      # another track's path is there
                result[t][0][k], result[t][1][k], result[t][2][k] = d, v, ids[j]
    return result


def box_distance(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Distance of boxes ``a`` to ``ref`` (both (..., 3+) cx, cy, h), in ``ref`` heights."""
    with np.errstate(invalid='ignore', divide='ignore'):
        return ((np.abs(a[..., 0] - ref[..., 0]) + np.abs(a[..., 1] - ref[..., 1])) / ref[..., 2]
                + np.abs(np.log(a[..., 2] / ref[..., 2])))


@dataclass
class _Track:
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    keys: list[np.ndarray] = field(default_factory=list)    # the _WINDOWED per-frame values
    refs: list[tuple[Hashable, int] | None] = field(default_factory=list)  # None: start box
    points: list[tuple[Hashable, int]] = field(default_factory=list)   # (sample, det), all


@dataclass
class SessionContext:
    """Collects one session's samples (any order), then computes the ``ctx_*`` keys.

    ``retrack``: also keep the detections and compute :data:`RETRACK_KEYS` (NaN otherwise).
    """

    retrack: bool = False
    tracks: dict[int, _Track] = field(default_factory=dict)
    sizes: dict[Hashable, int] = field(default_factory=dict)
    detections: SessionDetections = field(default_factory=SessionDetections)

    def add(self, key: Hashable, arrays: Mapping[str, Any]) -> None:
        """Remember the matched and starting boxes of one sample (``key`` names it)."""
        frame = int(np.asarray(arrays['frame_idx']).reshape(-1)[0])
        raw = np.asarray(arrays['det_boxes'], np.float64)
        assigned = np.asarray(arrays['assigned_track_ids']).reshape(-1)
        new = np.asarray(arrays['new_track_ids']).reshape(-1)
        if raw.shape != (assigned.size, 4) or new.size != assigned.size:
            raise ValueError('det_boxes, assigned_track_ids and new_track_ids do not agree')
        conf = _per_frame_keys(arrays, assigned.size)
        if self.retrack:        # before any state: a sample refused here adds nothing
            self.detections.add(key, arrays)
        boxes = _cxcyh(raw)
        self.sizes[key] = assigned.size
        nan = np.full(len(_WINDOWED), np.nan)
        for d in np.flatnonzero(assigned >= 0):
            self._point(int(assigned[d]), frame, boxes[d], (key, int(d)), True, conf[d])
        for d in np.flatnonzero(new >= 0):
            self._point(int(new[d]), frame, boxes[d], (key, int(d)), False, nan)

    def _point(self, tid: int, frame: int, box: np.ndarray, point: tuple[Hashable, int],
               matched: bool, keys: np.ndarray) -> None:
        tr = self.tracks.setdefault(tid, _Track())
        tr.frames.append(frame)
        tr.boxes.append(box)
        tr.points.append(point)
        tr.refs.append(point if matched else None)
        tr.keys.append(keys)

    def compute(self, run_ids: list[dict[Hashable, np.ndarray]] | None = None
                ) -> dict[Hashable, dict[str, np.ndarray]]:
        """Per sample key: (D,) float32 arrays of :data:`CONTEXT_KEYS` (NaN if unmatched).

        ``run_ids``: the re-tracking runs' ids when already computed (in other processes).
        """
        out = {k: {c: np.full(n, np.nan, np.float32) for c in CONTEXT_KEYS}
               for k, n in self.sizes.items()}
        paths: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        sorted_refs: dict[int, list[tuple[Hashable, int] | None]] = {}
        if self.retrack and run_ids is None:
            run_ids = self.detections.all_track_ids()
        for tid, tr in self.tracks.items():
            order = np.argsort(np.asarray(tr.frames), kind='stable')
            frames = np.asarray(tr.frames, np.float64)[order]
            boxes = np.asarray(tr.boxes)[order]
            refs = sorted_refs[tid] = [tr.refs[i] for i in order]
            paths[tid] = (frames, boxes)
            feats = _track_features(frames, boxes)
            feats.update(_windowed(np.asarray(tr.keys, np.float64).reshape(-1, len(_WINDOWED))
                                   [order]))
            if run_ids is not None:
                votes, splits = disagreements([tr.points[i] for i in order], run_ids)
                feats.update(ctx_retrack_votes=votes, ctx_retrack_splits=splits,
                             ctx_window_retrack_votes=_rolling(votes, np.fmax))
            _write(out, refs, feats)
        rivals = _rival_paths(paths)
        for tid, (fit, overlap, partner) in _against_rivals(paths, rivals).items():
            refs = sorted_refs[tid]
            fit[[r is None or r[0] not in out for r in refs]] = np.nan
            frames, boxes = paths[tid]
            _write(out, refs, {'ctx_rival_fit': fit,
                               'ctx_window_rival_fit': _rolling(fit, np.fmin),
                               **_overlap_features(frames, boxes, overlap, partner, paths)})
        return out


def _overlap_features(frames: np.ndarray, boxes: np.ndarray, overlap: np.ndarray,
                      partner: np.ndarray, paths: Mapping[int, tuple[np.ndarray, np.ndarray]]
                      ) -> dict[str, np.ndarray]:
    """ctx_overlap, ctx_separation, ctx_since_overlap and ctx_swap of one track's points."""
    n = frames.size
    most = np.full(n, np.nan)
    for shift in range(1, SEPARATION_WINDOW + 1):
        most[shift:] = np.fmax(most[shift:], overlap[:-shift])
        most[:-shift] = np.fmax(most[:-shift], overlap[shift:])
    values = {'ctx_overlap': overlap, 'ctx_separation': most - overlap,
              'ctx_since_overlap': np.full(n, np.nan), 'ctx_swap': np.full(n, np.nan)}
    with np.errstate(invalid='ignore'):
        over = overlap > OVERLAP
    last = start = -1   # the latest earlier match in an overlap, where its run began
    asked = np.full(n, -1)      # per match: the start of the overlap its ctx_swap checks
    for k in range(n):
        if last >= 0:
            values['ctx_since_overlap'][k] = frames[k] - frames[last]
            if frames[k] - frames[last] <= SWAP_FRAMES:
                asked[k] = start
        if over[k]:
            if k == 0 or not over[k - 1]:
                start = k
            last = k
    for s in np.unique(asked[asked >= 0]).tolist():
        at = np.flatnonzero(asked == s)
        other = paths.get(int(partner[s]))
        own_motion = _motion(frames, boxes, frames[s])
        other_motion = None if other is None else _motion(other[0], other[1], frames[s])
        if own_motion is not None and other_motion is not None:
            values['ctx_swap'][at] = (
                box_distance(boxes[at], _extrapolate(own_motion, frames[at]))
                - box_distance(boxes[at], _extrapolate(other_motion, frames[at])))
    return values


def _motion(frames: np.ndarray, boxes: np.ndarray, before: float
            ) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(last box, centre velocity, its frame) of a track's matches before frame ``before``.

    The velocity is between the last match and one ``VELOCITY_SPAN`` frames earlier (or the
    nearest earlier one: two frames' jitter makes a poor velocity); zero with one match; None
    without a match.
    """
    k = int(np.searchsorted(frames, before, side='left'))
    if k == 0:
        return None
    v = np.zeros(2)
    if k >= 2:
        j = min(max(int(np.searchsorted(frames, frames[k - 1] - VELOCITY_SPAN,
                                         side='right')) - 1, 0), k - 2)
        v = (boxes[k - 1, :2] - boxes[j, :2]) / max(frames[k - 1] - frames[j], 1e-9)
    return boxes[k - 1], v, float(frames[k - 1])


def _extrapolate(motion: tuple[np.ndarray, np.ndarray, float], at: np.ndarray) -> np.ndarray:
    """(len(at), 4) boxes at frames ``at``: moving at the velocity for at most ``HORIZON``."""
    box, v, last = motion
    out = np.repeat(box[None], at.size, axis=0)
    out[:, :2] += v[None] * np.minimum(at - last, HORIZON)[:, None]
    return out


def _write(out: dict[Hashable, dict[str, np.ndarray]],
           refs: Sequence[tuple[Hashable, int] | None], values: Mapping[str, np.ndarray]
           ) -> None:
    """Store one track's values (in its sorted point order) at the samples' detections."""
    for k, ref in enumerate(refs):
        if ref is not None and ref[0] in out:
            for name, v in values.items():
                out[ref[0]][name][ref[1]] = v[k]


def _per_frame_keys(arrays: Mapping[str, Any], n: int) -> np.ndarray:
    """(D, len(_WINDOWED)) per-frame confidence values of a sample (NaN when unavailable)."""
    if all(k in arrays for k, _, _ in _WINDOWED):
        conf = arrays
    else:
        try:
            from assoc_logger_ros.tracking.confidence import from_arrays
            conf = from_arrays(dict(arrays))
        except Exception:  # noqa: BLE001 - a sample without the matching arrays: no values
            return np.full((n, len(_WINDOWED)), np.nan)
    return np.stack([np.asarray(conf[k], np.float64).reshape(-1)[:n] for k, _, _ in _WINDOWED],
                    axis=1)


def _rolling(x: np.ndarray, fn: Any) -> np.ndarray:
    """``fn`` (np.fmin / np.fmax: NaN-ignoring) over each value's MATCH_WINDOW neighbours."""
    out = x.copy()
    for shift in range(1, MATCH_WINDOW + 1):
        out[shift:] = fn(out[shift:], x[:-shift])
        out[:-shift] = fn(out[:-shift], x[shift:])
    return out


def _windowed(keys: np.ndarray) -> dict[str, np.ndarray]:
    """ctx_window_* of every point of one track (sorted by frame) from its per-frame keys."""
    return {name: _rolling(keys[:, j], fn) for j, (_, name, fn) in enumerate(_WINDOWED)}


def _track_features(frames: np.ndarray, boxes: np.ndarray) -> dict[str, np.ndarray]:
    """ctx_* values of every point of one track (sorted by frame) except the rival fit."""
    n = frames.size
    # fits from both neighbours, from the two before, from the two after
    fits = np.full((3, n, boxes.shape[1]), np.nan)
    if n >= 3:
        w = (frames[1:-1] - frames[:-2]) / np.maximum(frames[2:] - frames[:-2], 1e-9)
        fits[0, 1:-1] = boxes[:-2] * (1 - w)[:, None] + boxes[2:] * w[:, None]
        step = (frames[2:] - frames[1:-1]) / np.maximum(frames[1:-1] - frames[:-2], 1e-9)
        fits[1, 2:] = boxes[1:-1] + (boxes[1:-1] - boxes[:-2]) * step[:, None]
        step = (frames[1:-1] - frames[:-2]) / np.maximum(frames[2:] - frames[1:-1], 1e-9)
        fits[2, :-2] = boxes[1:-1] - (boxes[2:] - boxes[1:-1]) * step[:, None]
    dists = box_distance(boxes[None], fits)
    with np.errstate(invalid='ignore'):
        resid = np.where(np.isfinite(dists).any(axis=0),
                         np.nanmin(np.where(np.isfinite(dists), dists, np.inf), axis=0), np.nan)
    prev = np.full(n, np.nan)
    prev[1:] = resid[:-1]
    ret = np.full(n, np.nan)
    if n >= 3:
        ret[2:] = box_distance(boxes[2:], boxes[1:-1]) - box_distance(boxes[2:], boxes[:-2])
    window = np.full(n, np.nan)
    lo = np.searchsorted(frames, frames - WINDOW, side='left')
    hi = np.searchsorted(frames, frames + WINDOW, side='right')
    for k in range(n):
        seg = resid[lo[k]:hi[k]]
        if np.isfinite(seg).any():
            window[k] = np.nanmax(seg)
    return {'ctx_resid': resid, 'ctx_resid_prev': prev, 'ctx_return': ret,
            'ctx_window': window, 'ctx_matches_left': (n - 1 - np.arange(n)).astype(np.float64)}


def _rival_paths(paths: Mapping[int, tuple[np.ndarray, np.ndarray]]
                 ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per frame: (track ids, their boxes interpolated there from their other matches)."""
    per_frame: dict[int, tuple[list[int], list[np.ndarray]]] = {}
    for tid, (frames, boxes) in paths.items():
        if frames.size < 2:
            continue
        span = np.arange(int(frames[0]), int(frames[-1]) + 1, dtype=np.float64)
        nxt = np.searchsorted(frames, span, side='right')      # first match after the frame
        prv = np.searchsorted(frames, span, side='left') - 1   # last match before it
        ok = (prv >= 0) & (nxt < frames.size)
        ok[ok] &= (frames[nxt[ok]] - frames[prv[ok]]) <= MAX_GAP
        for f, a, b in zip(span[ok], prv[ok], nxt[ok]):
            w = (f - frames[a]) / (frames[b] - frames[a])
            ids, pos = per_frame.setdefault(int(f), ([], []))
            ids.append(tid)
            pos.append(boxes[a] * (1 - w) + boxes[b] * w)
    return {f: (np.asarray(ids), np.asarray(pos)) for f, (ids, pos) in per_frame.items()}


NEEDED = ('frame_idx', 'det_boxes', 'assigned_track_ids', 'new_track_ids')  # the minimum


def job_count(jobs: int) -> int:
    """Worker processes for ``jobs`` (0: one per CPU this process may use; at least 1)."""
    return jobs if jobs > 0 else usable_cpus()


def _ready() -> None:
    """A no-op task: unpickling it in a worker imports this module and the tracker."""


class _Sessions:
    """Computes finished sessions, with the re-tracking runs in ``jobs`` processes if > 1.

    A session's runs go to the pool at its last record and the pass reads on. Sessions wait
    for their runs only as many as keep every worker busy (``RUNS`` tasks each, plus one), so
    memory stays bounded however many workers. Runs that fail there (a worker killed, the
    pool broken) are done here instead, so a lost worker costs no evidence.
    """

    def __init__(self, jobs: int, retrack: bool, out: dict[Hashable, dict[str, np.ndarray]],
                 problems: list[str] | None) -> None:
        self.out, self.problems, self.limit = out, problems, -(-jobs // RUNS) + 1
        self.pending: deque[tuple[str, SessionContext, list[Future] | None]] = deque()
        self.pool: ProcessPoolExecutor | None = None
        if retrack and jobs > 1:
            try:
                self.pool = ProcessPoolExecutor(jobs,
                                                mp_context=multiprocessing.get_context('spawn'))
                for _ in range(jobs):   # the workers start (import the tracker) while it reads
                    self.pool.submit(_ready)
            except Exception:  # noqa: BLE001 - no processes to be had: all runs done here
                self.shutdown()
                self.pool = None

    def submit(self, session: str, ctx: SessionContext) -> None:
        futures = None
        if self.pool is not None:      # only a retrack pass has one
            try:
                futures = [self.pool.submit(run_track_ids, ctx.detections, k)
                           for k in range(RUNS)]
            except Exception:  # noqa: BLE001 - a broken pool: this session is computed here
                futures = None
        self.pending.append((session, ctx, futures))
        while len(self.pending) > (self.limit if self.pool is not None else 0):
            self._finish(*self.pending.popleft())

    def _finish(self, session: str, ctx: SessionContext, futures: list[Future] | None) -> None:
        try:
            try:
                run_ids = [f.result() for f in futures] if futures is not None else None
            except Exception:  # noqa: BLE001 - failed there (a worker lost): done here
                run_ids = None
            self.out.update(ctx.compute(run_ids))
        except Exception as exc:  # noqa: BLE001 - one broken session costs its evidence
            if self.problems is not None:
                self.problems.append(f'session {session[:80]!r}: no session evidence '
                                     f'({type(exc).__name__}: {str(exc)[:120]})')

    def drain(self) -> None:
        """Compute every session still waiting for its runs."""
        while self.pending:
            self._finish(*self.pending.popleft())

    def shutdown(self) -> None:
        """Stop the workers; runs not started are dropped (after :meth:`drain`, none are)."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def records_context(records: Sequence[Mapping[str, Any]],
                    load: Callable[[Mapping[str, Any]], Mapping[str, Any]],
                    retrack: bool = False, problems: list[str] | None = None,
                    jobs: int = 1) -> dict[int, dict[str, np.ndarray]]:
    """``ctx_*`` arrays by position in ``records``; ``load`` reads one record's arrays.

    One pass, one sample in memory at a time; a session is computed (and its boxes and
    detections dropped) at its last record, so only the sessions still open at a point of the
    pass are held. A sample that cannot be read (or lacks the arrays) adds no boxes here and
    is reported by the caller's own pass. ``retrack``: see :class:`SessionContext`; ``jobs``
    > 1 runs the re-tracking in that many processes (0: one per CPU), with the same values. A
    session whose evidence cannot be computed gets none (its values stay NaN, so they pass)
    and a line in ``problems``.
    """
    last = {str(rec.get('session', '')): i for i, rec in enumerate(records)}
    sessions: dict[str, SessionContext] = {}
    out: dict[Hashable, dict[str, np.ndarray]] = {}
    done = _Sessions(job_count(jobs), retrack, out, problems)
    try:
        for i, rec in enumerate(records):
            session = str(rec.get('session', ''))
            try:
                arrays = load(rec)
                if all(k in arrays for k in NEEDED):
                    sessions.setdefault(session, SessionContext(retrack)).add(i, arrays)
            except Exception:  # noqa: BLE001 - skipped here, reported by the caller's own pass
                pass
            if last[session] == i and session in sessions:
                done.submit(session, sessions.pop(session))
        done.drain()
    finally:        # also on Ctrl-C: the workers go, the sessions waiting are not computed
        done.shutdown()
    return out


def context_by_record(records: list[dict[str, Any]],
                      load: Callable[[Mapping[str, Any]], Mapping[str, Any]],
                      rule: Any, problems: list[str] | None = None, jobs: int = 1
                      ) -> dict[int, dict[str, np.ndarray]]:
    """``ctx_*`` arrays by ``id(record)`` when ``rule`` reads them (one pass), else ``{}``.

    What ``filter`` needs on both layouts: ``rule`` is a ``LabelRule`` or None.
    """
    if rule is None or not rule.needs_context():
        return {}
    by_pos = records_context(records, load, rule.needs_retrack(), problems, jobs)
    return {id(records[i]): v for i, v in by_pos.items()}
