"""ByteTrack with stamps, classes, appearance memory and a full association snapshot.

The algorithm is the reference one (``ifzhang/ByteTrack``, ``yolox/tracker/byte_tracker.py``),
step for step; what differs is what it is given and what it gives back:

* time comes from ``Frame.stamp_ns``: the Kalman step is the elapsed time in nominal frames and
  lost tracks are dropped after ``track_buffer_s`` seconds. ``frame_mode`` counts updates instead
  (one update = one frame, buffer = ``int(track_buffer_s * frame_rate)`` frames), which is what
  the reference does and what benchmark protocols expect;
* detections carry a class; by default a detection only matches tracks of its class;
* lost tracks can be re-identified by appearance (:mod:`~assoc_logger_ros.tracking.memory`);
* IDs belong to the tracker instance and restart at 1 after :meth:`ByteTracker.reset`;
* every update returns an :class:`AssociationSnapshot` (costs, masks, stages, decisions).

Reference details kept on purpose because they shape the benchmark numbers: scores exactly equal
to ``track_thresh`` are neither high nor low; unconfirmed tracks are not predicted; the first
update activates new tracks at once; a lost track whose buffer ran out in one update can still be
matched in stage 1 of the next one (the reference removes it from the lost list one update late),
and a track that was once removed disappears at once if it is lost again. (In time mode that
grace is also bounded in time: buffer + 2 nominal frames, which a regular stream never exceeds.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.frame import Frame
from assoc_logger_ros.tracking import kalman
from assoc_logger_ros.tracking.diagnostics import SwitchEstimator
from assoc_logger_ros.tracking.features import det_features, track_features
from assoc_logger_ros.tracking.matching import assign, fuse_score, iou_distance
from assoc_logger_ros.tracking.memory import AppearanceMemory, fuse_appearance
from assoc_logger_ros.tracking.snapshot import AssociationSnapshot, MatchStage, TrackState
from assoc_logger_ros.tracking.track import StateBank, Track
from assoc_logger_ros.tracking.visibility import visibility_from_boxes, visibility_from_mask

LOW_MATCH_THRESH = 0.5          # stage 2 IoU-distance limit (reference literal)
UNCONFIRMED_MATCH_THRESH = 0.7  # stage 3 cost limit (reference literal)
NEW_TRACK_MARGIN = 0.1          # new tracks need track_thresh + this (reference literal)
DUPLICATE_IOU_DIST = 0.15       # tracked/lost pairs closer than this are duplicates
_STAMP_TOLERANCE_NS = 1000      # stamps are rounded to ns; never let that decide the buffer

_I64 = NDArray[np.int64]
_NO_ROWS = np.empty(0, np.int64)


class ByteTracker:
    """Multi-object tracker; one instance per camera stream.

    Args:
        tracker_cfg: thresholds and time handling (reference values are the defaults).
        memory_cfg: appearance memory settings (used only when frames carry embeddings).
    """

    def __init__(self, tracker_cfg: TrackerConfig | None = None,
                 memory_cfg: MemoryConfig | None = None) -> None:
        self.cfg = tracker_cfg or TrackerConfig()
        self.memory_cfg = memory_cfg or MemoryConfig()
        self.memory = AppearanceMemory(self.memory_cfg)
        self.diagnostics = SwitchEstimator()
        self.mask_warnings = 0
        self.last_mask_error = ''
        self.reset()

    # -- life cycle ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every track; IDs restart at 1 and the next update counts as the first."""
        self._tracked: list[Track] = []
        self._lost: list[Track] = []
        self._bank = StateBank()
        self._next_id = 1
        self._count = 0
        self._last_stamp_ns: int | None = None
        self._gate_classes = False
        self.memory.reset()
        self.diagnostics.reset()

    @property
    def est_id_switches(self) -> int:
        """Estimated ID switches since the last reset (0 with ``diag`` off)."""
        return int(self.diagnostics.total) if self.cfg.diag else 0

    @property
    def frame_count(self) -> int:
        """Updates since the last reset."""
        return self._count

    @property
    def buffer_frames(self) -> int:
        """Frame-mode lost-track buffer: ``int(track_buffer_s * frame_rate)`` updates."""
        return int(self.cfg.track_buffer_s * self.cfg.frame_rate + 1e-9)

    def tracks(self) -> list[Track]:
        """Tracked (including unconfirmed) then lost tracks, for inspection."""
        return list(self._tracked) + list(self._lost)

    # -- the update ------------------------------------------------------------------------
    def update(self, frame: Frame) -> AssociationSnapshot:
        """Associate one frame of detections and return what was decided."""
        cfg = self.cfg
        self._count += 1
        fc = self._count
        now = int(frame.stamp_ns)
        clock_now = fc if cfg.frame_mode else now
        clock_scale = 1.0 if cfg.frame_mode else cfg.frame_rate * 1e-9

        # detections that reach the tracker (reference floor: score strictly above it)
        keep = frame.scores > cfg.confidence_threshold
        if cfg.min_box_area > 0.0:
            b = frame.boxes
            keep &= (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) >= cfg.min_box_area
        rows = np.flatnonzero(keep)
        boxes = frame.boxes[rows]
        scores = frame.scores[rows]
        classes = frame.class_ids[rows]
        n_det = rows.size
        vis = self._visibility(frame, rows, boxes)
        emb = valid = None
        if frame.embeddings is not None and frame.embeddings.shape[1] > 0:
            emb = frame.embeddings[rows]
            valid = (frame.embedding_valid[rows] if frame.embedding_valid is not None
                     else np.ones(n_det, bool))
        high = np.flatnonzero(scores > cfg.track_thresh)
        low = np.flatnonzero(scores < cfg.track_thresh)

        expired_early = self._drop_late_expired(now) if not cfg.frame_mode else []
        unconfirmed = [t for t in self._tracked if not t.is_activated]
        pool = [t for t in self._tracked if t.is_activated] + self._lost
        n_pool = len(pool)
        considered = pool + unconfirmed
        n_trk = len(considered)
        # one pass over the tracks: integer and float attributes as two arrays
        ints = np.array([(t.slot, t.state, t.class_id, t.track_id, t.start_frame, t.frame_id,
                          t.start_ns, t.last_ns) for t in considered],
                        np.int64).reshape(n_trk, 8)
        floats = np.array([(t.score, t.visibility) for t in considered],
                          np.float64).reshape(n_trk, 2)
        slots, prev_state, trk_cls, trk_ids = ints[:, 0], ints[:, 1], ints[:, 2], ints[:, 3]
        if cfg.frame_mode:     # age and time since update, before this update
            age = (clock_now - ints[:, 4]).astype(np.float64)
            since = (clock_now - ints[:, 5]).astype(np.float64)
        else:
            age = (clock_now - ints[:, 6]) * clock_scale
            since = (clock_now - ints[:, 7]) * clock_scale
        pre_conf, pre_vis = floats.T
        for t in considered:
            t.det_index = -1
        # class gating only matters when more than one class is present
        all_cls = np.concatenate([trk_cls, classes])
        self._gate_classes = bool(cfg.class_aware and all_cls.size
                                  and all_cls.min() != all_cls.max())

        # predict tracked + lost tracks (unconfirmed ones are not predicted: reference)
        bank = self._bank
        if n_pool:
            ps = slots[:n_pool]
            mean = bank.mean[ps]
            mean[prev_state[:n_pool] != TrackState.TRACKED, 7] = 0.0
            dt = np.maximum(clock_now - bank.clock[ps], 0) * clock_scale
            bank.mean[ps], bank.cov[ps] = kalman.predict(mean, bank.cov[ps], dt)
            bank.clock[ps] = clock_now
        pred_mean = bank.mean[slots]
        pred_boxes = kalman.xyah_to_xyxy(pred_mean)
        snapshot_states = np.where(prev_state == TrackState.REMOVED, TrackState.LOST,
                                   prev_state).astype(np.int8)
        prev_state = prev_state.astype(np.int8)
        snapshot_states[n_pool:] = TrackState.NEW

        cost_all = np.ones((n_trk, n_det), np.float32)
        mask_all = np.zeros((n_trk, n_det), np.float32)
        stage = np.zeros(n_det, np.int8)
        det_track = np.full(n_det, -1, np.int64)      # row in `considered` per detection

        # step 1: tracked + lost vs high-score dets, IoU fused with score (+ appearance)
        pool_rows = np.arange(n_pool)
        lost_mask = prev_state[:n_pool] != TrackState.TRACKED
        # one IoU matrix for all stages (each stage reads its own block)
        iou_cost = iou_distance(pred_boxes, boxes, pixel_offset=cfg.iou_pixel_offset)
        cost1 = fuse_score(iou_cost[:n_pool][:, high], scores[high])
        same1 = self._same_class(trk_cls[:n_pool], classes[high])
        if emb is not None and self.memory_cfg.appear_memory_enable and n_pool and high.size:
            app = self.memory.distance(trk_ids[:n_pool], emb[high], valid[high])
            cost1 = fuse_appearance(cost1, app, lost_mask, self.memory_cfg,
                                    reid_allowed=same1)
        _, free_pool, free_high = self._stage(
            cost1, same1, cfg.match_thresh, pool_rows, high, MatchStage.HIGH,
            cost_all, mask_all, stage, det_track)

        # step 2: remaining tracked vs low-score dets, plain IoU at 0.5
        r_tracked = free_pool[~lost_mask[free_pool]]
        cost2 = iou_cost[r_tracked][:, low]
        same2 = self._same_class(trk_cls[r_tracked], classes[low])
        _, free_r, _ = self._stage(
            cost2, same2, LOW_MATCH_THRESH, r_tracked, low, MatchStage.LOW,
            cost_all, mask_all, stage, det_track)
        newly_lost = r_tracked[free_r]

        # step 3: unconfirmed vs remaining high dets, IoU fused with score at 0.7
        unc_rows = np.arange(n_pool, n_trk)
        rest = high[free_high]
        cost3 = fuse_score(iou_cost[n_pool:][:, rest], scores[rest])
        same3 = self._same_class(trk_cls[n_pool:], classes[rest])
        _, free_unc, free_rest = self._stage(
            cost3, same3, UNCONFIRMED_MATCH_THRESH, unc_rows, rest, MatchStage.UNCONFIRMED,
            cost_all, mask_all, stage, det_track)

        # step 4: new tracks from confident leftovers
        det_thresh = cfg.track_thresh + NEW_TRACK_MARGIN
        cand = rest[free_rest]
        new_dets = cand[scores[cand] >= det_thresh]

        # apply the decisions: Kalman updates in one batch, then per-track bookkeeping
        matched_dets = np.flatnonzero(det_track >= 0)
        matched_rows = det_track[matched_dets]
        refind: list[Track] = []
        if matched_dets.size:
            ms = slots[matched_rows]
            bank.mean[ms], bank.cov[ms] = kalman.update(
                bank.mean[ms], bank.cov[ms], kalman.xyxy_to_xyah(boxes[matched_dets]))
            bank.clock[ms] = clock_now
            for r, d in zip(matched_rows.tolist(), matched_dets.tolist()):
                t = considered[r]
                if t.state == TrackState.TRACKED:
                    t.tracklet_len += 1
                else:                                    # lost (or expired): re-found
                    t.tracklet_len = 0
                    refind.append(t)
                t.state = TrackState.TRACKED
                t.is_activated = True
                t.frame_id = fc
                t.last_ns = now
                t.score = float(scores[d])
                t.visibility = float(vis[d])
                t.det_index = d
        for r in newly_lost.tolist():
            considered[r].state = TrackState.LOST
        removed_now: list[Track] = list(expired_early)
        for r in free_unc.tolist():
            t = considered[n_pool + r]
            t.state = TrackState.REMOVED
            removed_now.append(t)
        new_tracks = self._start_tracks(new_dets, boxes, scores, classes, vis, fc, now,
                                        clock_now)
        new_track_ids = np.full(n_det, -1, np.int64)
        for t in new_tracks:
            new_track_ids[t.det_index] = t.track_id

        # step 5: lost tracks past the buffer are marked removed
        buf_frames = self.buffer_frames
        buf_ns = cfg.track_buffer_s * 1e9 + _STAMP_TOLERANCE_NS
        for t in self._lost:
            expired = (fc - t.frame_id > buf_frames if cfg.frame_mode
                       else now - t.last_ns > buf_ns)
            if expired and t.state != TrackState.TRACKED:
                t.state = TrackState.REMOVED
                if t.removed_at < 0:
                    t.removed_at = fc

        # bookkeeping of the lists, in the reference's order
        tracked = [t for t in self._tracked if t.state == TrackState.TRACKED]
        tracked += new_tracks
        tracked += refind
        tracked_ids = {t.track_id for t in tracked}
        lost = [t for t in self._lost if t.track_id not in tracked_ids]
        lost += [considered[r] for r in newly_lost.tolist()]
        gone = [t for t in lost if 0 <= t.removed_at < fc]
        if gone:
            lost = [t for t in lost if not 0 <= t.removed_at < fc]
            removed_now += gone
        tracked, lost, dups = self._remove_duplicates(tracked, lost)
        removed_now += dups
        self._tracked, self._lost = tracked, lost
        if removed_now:
            bank.release([t.slot for t in removed_now])
        removed_ids = np.fromiter((t.track_id for t in removed_now), np.int64, len(removed_now))

        # appearance memory and switch diagnostics
        matched_ids = trk_ids[matched_rows]
        new_ids = np.fromiter((t.track_id for t in new_tracks), np.int64, len(new_tracks))
        switches = self._observe(frame, now, fc, matched_ids, matched_dets, new_ids, new_dets,
                                 boxes, scores, vis, emb, valid)
        if removed_ids.size:
            self.memory.remove(removed_ids)
        self._last_stamp_ns = now

        out = [t for t in tracked if t.is_activated]
        return self._snapshot(
            frame, rows, boxes, scores, classes, vis, emb, considered, snapshot_states,
            trk_cls, pred_mean, pred_boxes, cost_all, mask_all, stage,
            det_track, new_track_ids, out, switches, removed_ids, pre_conf, pre_vis, trk_ids,
            age, since)

    # -- helpers ---------------------------------------------------------------------------
    def _drop_late_expired(self, now: int) -> list[Track]:
        """Time mode: bound the reference's one-update grace of expired tracks in time.

        On a regular stream an expired track is still matchable one frame later (gap = buffer
        + 2 nominal frames), as in the reference; after a long pause it is not.
        """
        limit = (self.cfg.track_buffer_s + 2.0 / self.cfg.frame_rate) * 1e9 + _STAMP_TOLERANCE_NS
        late = [t for t in self._lost if t.removed_at >= 0 and now - t.last_ns > limit]
        if late:
            self._lost = [t for t in self._lost if not (t.removed_at >= 0
                                                        and now - t.last_ns > limit)]
        return late

    def _same_class(self, track_cls: _I64, det_cls: _I64) -> NDArray[np.bool_] | None:
        """(T, D) class agreement, or None when matching is class-agnostic."""
        if not self._gate_classes:
            return None
        return track_cls[:, None] == det_cls[None, :]

    @staticmethod
    def _stage(cost: NDArray[np.float64], same: NDArray[np.bool_] | None, thresh: float,
               trk_rows: _I64, det_cols: _I64, stage_id: MatchStage,
               cost_all: NDArray[np.float32], mask_all: NDArray[np.float32],
               stage: NDArray[np.int8], det_track: _I64) -> tuple[_I64, _I64, _I64]:
        """Assign one stage, record its costs, mask and matches; return local indices."""
        gated = cost if same is None else np.where(same, cost, np.inf)
        if cost.size:
            block = (trk_rows[:, None], det_cols)
            cost_all[block] = cost
            mask_all[block] = gated < thresh
        pairs, free_t, free_d = assign(gated, thresh)
        if pairs.size:
            d = det_cols[pairs[:, 1]]
            stage[d] = stage_id
            det_track[d] = trk_rows[pairs[:, 0]]
        return pairs, free_t, free_d

    def _start_tracks(self, dets: _I64, boxes: NDArray[np.float64], scores: NDArray[np.float64],
                      classes: _I64, vis: NDArray[np.float32], fc: int, now: int,
                      clock_now: int) -> list[Track]:
        if dets.size == 0:
            return []
        slots = self._bank.alloc(dets.size)
        mean, cov = kalman.initiate(kalman.xyxy_to_xyah(boxes[dets]))
        self._bank.mean[slots] = mean
        self._bank.cov[slots] = cov
        self._bank.clock[slots] = clock_now
        out = []
        for s, d in zip(slots.tolist(), dets.tolist()):
            t = Track(self._next_id, int(classes[d]), s, float(scores[d]), fc, now, d,
                      activated=(fc == 1))
            t.visibility = float(vis[d])
            self._next_id += 1
            out.append(t)
        return out

    def _remove_duplicates(self, tracked: list[Track], lost: list[Track]
                           ) -> tuple[list[Track], list[Track], list[Track]]:
        """Drop one of each tracked/lost pair that overlaps almost fully: keep the older one."""
        if not tracked or not lost:
            return tracked, lost, []
        bank = self._bank
        ta_info = np.array([(t.slot, t.frame_id - t.start_frame) for t in tracked], np.int64)
        lb_info = np.array([(t.slot, t.frame_id - t.start_frame) for t in lost], np.int64)
        ta, lb = ta_info[:, 0], lb_info[:, 0]
        dist = iou_distance(kalman.xyah_to_xyxy(bank.mean[ta]),
                            kalman.xyah_to_xyxy(bank.mean[lb]),
                            pixel_offset=self.cfg.iou_pixel_offset)
        p, q = np.nonzero(dist < DUPLICATE_IOU_DIST)
        if p.size == 0:
            return tracked, lost, []
        age_a, age_b = ta_info[:, 1], lb_info[:, 1]
        a_older = age_a[p] > age_b[q]
        drop_a = set(p[~a_older].tolist())
        drop_b = set(q[a_older].tolist())
        dropped = [tracked[i] for i in sorted(drop_a)] + [lost[i] for i in sorted(drop_b)]
        tracked = [t for i, t in enumerate(tracked) if i not in drop_a]
        lost = [t for i, t in enumerate(lost) if i not in drop_b]
        return tracked, lost, dropped

    def _visibility(self, frame: Frame, rows: _I64, boxes: NDArray[np.float64]
                    ) -> NDArray[np.float32]:
        """Per-detection visibility: from the instance mask when enabled, else box overlaps."""
        if self.cfg.seg_enable and frame.mask is not None:
            src = frame.source_index[rows] if frame.source_index is not None else rows
            try:
                return visibility_from_mask(frame.mask, boxes, src, frame.width, frame.height)
            except ValueError as exc:   # bad mask: counted, reported by the caller, survived
                self.mask_warnings += 1
                self.last_mask_error = str(exc)
        return visibility_from_boxes(boxes)

    def _observe(self, frame: Frame, now: int, fc: int, matched_ids: _I64, matched_dets: _I64,
                 new_ids: _I64, new_dets: _I64, boxes: NDArray[np.float64],
                 scores: NDArray[np.float64], vis: NDArray[np.float32],
                 emb: NDArray[np.float32] | None, valid: NDArray[np.bool_] | None) -> int:
        """Run the switch estimator, freeze suspects, then feed the appearance memory."""
        count = 0
        if self.cfg.diag:
            stamp_s = fc / self.cfg.frame_rate if self.cfg.frame_mode else now * 1e-9
            rep = self.diagnostics.observe(
                stamp_s, matched_ids, boxes[matched_dets], new_ids, boxes[new_dets],
                width=frame.width, height=frame.height,
                matched_emb=None if emb is None else emb[matched_dets],
                matched_valid=None if valid is None else valid[matched_dets],
                new_emb=None if emb is None else emb[new_dets],
                new_valid=None if valid is None else valid[new_dets])
            count = int(rep.count)
            if rep.suspected_ids.size:
                self.memory.freeze(rep.suspected_ids)
        if emb is not None and self.memory_cfg.appear_memory_enable:
            ids = np.concatenate([matched_ids, new_ids])
            dets = np.concatenate([matched_dets, new_dets])
            self.memory.update(ids, emb[dets], valid[dets], vis[dets], scores[dets], boxes[dets])
        self.memory.step()
        return count

    def _snapshot(self, frame: Frame, rows: _I64, boxes: NDArray[np.float64],
                  scores: NDArray[np.float64], classes: _I64, vis: NDArray[np.float32],
                  emb: NDArray[np.float32] | None, considered: list[Track],
                  states: NDArray[np.int8], trk_cls: _I64, pred_mean: NDArray[np.float64],
                  pred_boxes: NDArray[np.float64],
                  cost_all: NDArray[np.float32], mask_all: NDArray[np.float32],
                  stage: NDArray[np.int8], det_track: _I64, new_track_ids: _I64,
                  out: list[Track], switches: int, removed_ids: _I64,
                  conf: NDArray[np.float64], tvis: NDArray[np.float64],
                  trk_ids: _I64, age: NDArray[np.float64],
                  since: NDArray[np.float64]) -> AssociationSnapshot:
        """Freeze the association problem and its answer (tracks described as before it)."""
        n_trk, n_det = len(considered), rows.size
        cfg = self.cfg
        track_ids = trk_ids
        matched = det_track >= 0
        w, h = max(frame.width, 1), max(frame.height, 1)
        dim = 0 if emb is None else emb.shape[1]
        if dim and self.memory.dim == dim and n_trk:
            track_emb = self.memory.embeddings(track_ids).astype(np.float32, copy=False)
        else:
            track_emb = np.zeros((n_trk, dim), np.float32)
        assigned = np.full(n_det, -1, np.int64)
        assigned[matched] = track_ids[det_track[matched]]
        n_out = len(out)
        oi = np.array([(t.track_id, t.slot, t.class_id, t.det_index) for t in out],
                      np.int64).reshape(n_out, 4)
        out_scores = np.array([t.score for t in out], np.float64)
        src = (frame.source_index[rows] if frame.source_index is not None
               else rows.astype(np.int64))
        gt = frame.gt_ids[rows] if frame.gt_ids is not None else None
        return AssociationSnapshot(
            stamp_ns=int(frame.stamp_ns), frame_idx=int(frame.frame_idx),
            width=int(frame.width), height=int(frame.height), frame_rate=float(cfg.frame_rate),
            track_ids=track_ids, track_states=states, track_class_ids=trk_cls,
            track_boxes=pred_boxes,
            track_features=track_features(pred_boxes, pred_mean[:, 4:6], age, since, conf,
                                          tvis, w, h),
            track_embeddings=track_emb,
            det_boxes=boxes, det_scores=scores, det_class_ids=classes,
            det_visibility=vis.astype(np.float32, copy=False), det_source_index=src,
            det_features=det_features(boxes, scores, vis, w, h),
            det_embeddings=(np.zeros((n_det, 0), np.float32) if emb is None
                            else np.array(emb, np.float32)),
            det_gt_ids=gt, cost_matrix=cost_all, mask_matrix=mask_all, match_stage=stage,
            assigned_track_ids=assigned, new_track_ids=new_track_ids,
            output_track_ids=oi[:, 0].copy(),
            output_boxes=kalman.xyah_to_xyxy(self._bank.mean[oi[:, 1]]),
            output_scores=out_scores, output_class_ids=oi[:, 2].copy(),
            output_det_index=oi[:, 3].copy(),
            est_id_switches_frame=switches, est_id_switches=self.est_id_switches,
            removed_track_ids=removed_ids)
