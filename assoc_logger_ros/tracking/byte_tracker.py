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
from assoc_logger_ros.tracking import cmc, kalman, learned_cost, oc, ocm
from assoc_logger_ros.tracking.cues import (
    height_iou_pairs,
    height_modulated_distance,
    score_cost,
)
from assoc_logger_ros.tracking.diagnostics import SwitchEstimator
from assoc_logger_ros.tracking.features import det_features, track_features
from assoc_logger_ros.tracking.limits import (
    InputDrops,
    coords_in_range,  # noqa: F401 - re-exported
    keep_top_scores,
)
from assoc_logger_ros.tracking.matching import assign, fuse_score, iou_distance
from assoc_logger_ros.tracking.memory import AppearanceMemory, fuse_appearance
from assoc_logger_ros.tracking.snapshot import AssociationSnapshot, MatchStage, TrackState
from assoc_logger_ros.tracking.sparse import PairCosts, assign_sparse, overlap_pairs
from assoc_logger_ros.tracking.track import TrackInfo, TrackTable
from assoc_logger_ros.tracking.visibility import visibility_from_boxes, visibility_from_mask

LOW_MATCH_THRESH = 0.5          # stage 2 IoU-distance limit (reference literal)
NEW_TRACK_MARGIN = 0.1          # new tracks need track_thresh + this (reference literal)
_STAMP_TOLERANCE_NS = 1000      # stamps are rounded to ns; never let that decide the buffer
SPARSE_MIN_PAIRS = 1 << 17       # from this many track x detection pairs on, associate sparsely

# plain ints: IntEnum attribute access is slow in the per-track loops
_NEW, _TRACKED, _LOST, _REMOVED = (int(TrackState.NEW), int(TrackState.TRACKED),
                                   int(TrackState.LOST), int(TrackState.REMOVED))
_I64 = NDArray[np.int64]
_EMPTY = np.empty(0, np.int64)


def _filled(shape, value, dtype) -> np.ndarray:
    """``np.full`` without its Python-level wrapper (called several times per update)."""
    out = np.empty(shape, dtype)
    out.fill(value)
    return out


def _nz(mask: NDArray[np.bool_]) -> _I64:
    """Indices of True entries of a 1-D mask (cheaper than np.flatnonzero)."""
    return mask.nonzero()[0]


def _without(rows: _I64, taken: _I64) -> _I64:
    """``rows`` minus the rows OCR took; ``rows`` itself when it took none.

    OCR off, the hot path pays no per-frame set difference.
    """
    return np.setdiff1d(rows, taken) if taken.size else rows


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
        self.learned_cost = learned_cost.load(self.cfg)   # None unless enabled; errors here
        self.diagnostics = SwitchEstimator()
        self.mask_warnings = 0
        self.last_mask_error = ''
        self.input_drops = InputDrops()       # since construction (reset keeps counting)
        self._wh = self.cfg.kalman_state == 'xywh'
        self._to_xyxy = kalman.xywh_to_xyxy if self._wh else kalman.xyah_to_xyxy
        self._from_xyxy = kalman.xyxy_to_xywh if self._wh else kalman.xyxy_to_xyah
        self.last_input_drops = InputDrops()  # the latest update only
        self.reset()

    # -- life cycle ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every track; IDs restart at 1 and the next update counts as the first."""
        self._table = TrackTable()
        self._tracked = _EMPTY          # slots, in the reference's list order
        self._lost = _EMPTY
        self._next_id = 1
        self._count = 0
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
        return max(int(self.cfg.track_buffer_s * self.cfg.frame_rate + 1e-9),
                   self.cfg.track_buffer_min_frames)

    @property
    def buffer_s(self) -> float:
        """Time-mode lost-track buffer: ``track_buffer_s``, at least the minimum frames."""
        return max(self.cfg.track_buffer_s,
                   self.cfg.track_buffer_min_frames / self.cfg.frame_rate)

    def tracks(self) -> list[TrackInfo]:
        """Tracked (including unconfirmed) then lost tracks, as frozen copies."""
        return [self._table.info(int(s), self._wh)
                for s in np.concatenate([self._tracked, self._lost])]

    # -- the update ------------------------------------------------------------------------
    def update(self, frame: Frame) -> AssociationSnapshot:
        """Associate one frame of detections and return what was decided."""
        cfg, tab = self.cfg, self._table
        wh = self._wh
        self._count += 1
        fc = self._count
        now = int(frame.stamp_ns)
        clock_now = fc if cfg.frame_mode else now
        clock_scale = 1.0 if cfg.frame_mode else cfg.frame_rate * 1e-9

        # detections that reach the tracker (reference floor: score strictly above it);
        # absurd coordinates would overflow the squared Kalman noise, so they never enter
        keep = frame.scores > cfg.confidence_threshold
        drops = InputDrops()
        in_range = coords_in_range(frame.boxes)
        if in_range is not None:                    # rare: counted, never tracked
            drops.out_of_range = int(in_range.size - np.count_nonzero(in_range))
            keep &= in_range
        if cfg.min_box_area > 0.0:
            b = frame.boxes
            keep &= (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) >= cfg.min_box_area
        rows = _nz(keep)
        if rows.size > cfg.max_detections:          # bounded work: the best-scoring ones
            drops.over_max_detections = rows.size - cfg.max_detections
            drops.capped_frames = 1
            rows = keep_top_scores(rows, frame.scores, cfg.max_detections)
        self.last_input_drops = drops
        if drops:
            self.input_drops.add(drops)
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
        high = _nz(scores > cfg.track_thresh)
        low = _nz(scores < cfg.track_thresh)

        # the tracks this association considers: pool (tracked + lost), then unconfirmed
        removed = [self._drop_late_expired(now)] if not cfg.frame_mode else []
        tracked, lost = self._tracked, self._lost
        act = tab.activated[tracked]
        pool = np.concatenate([tracked[act], lost])
        slots = np.concatenate([pool, tracked[~act]])
        n_pool, n_trk = pool.size, slots.size
        prev_state = tab.state[slots]
        trk_cls = tab.class_id[slots]
        trk_ids = tab.track_id[slots]
        pre_conf = tab.score[slots]
        pre_vis = tab.visibility[slots]
        if cfg.frame_mode:     # age and time since the last match, before this update
            age = (clock_now - tab.start_frame[slots]).astype(np.float64)
            since = (clock_now - tab.frame_id[slots]).astype(np.float64)
        else:
            age = (clock_now - tab.start_ns[slots]) * clock_scale
            since = (clock_now - tab.last_ns[slots]) * clock_scale
        tab.det_index[slots] = -1
        all_cls = np.concatenate([trk_cls, classes])
        self._gate_classes = bool(cfg.class_aware and all_cls.size
                                  and all_cls.min() != all_cls.max())

        # predict tracked + lost tracks (unconfirmed ones are not predicted: reference)
        lost_mask = prev_state[:n_pool] != _TRACKED
        if n_pool:
            mean = tab.mean[pool]
            dt = np.maximum(clock_now - tab.clock[pool], 0) * clock_scale
            if lost_mask.any():
                mean[lost_mask, 7] = 0.0
                if wh:                  # BoT-SORT stops both size velocities
                    mean[lost_mask, 6] = 0.0
                if cfg.lost_velocity_decay < 1.0:
                    # lost tracks coast slower and slower: centre velocity x decay per frame
                    mean[lost_mask, 4:6] *= (cfg.lost_velocity_decay
                                             ** dt[lost_mask])[:, None]
            tab.mean[pool], tab.cov[pool] = kalman.predict_blocks(mean, tab.cov[pool], dt, wh)
            tab.clock[pool] = clock_now
            if cfg.cmc and high.size:     # camera motion from the boxes (tracking/cmc.py)
                est = pool[~lost_mask]
                zs = cx0 = cy0 = 0.0
                if cfg.cmc_scale:     # shift plus zoom (camera walking forward)
                    dx, dy, zs, cx0, cy0, _ = cmc.estimate_motion(tab.mean[est], boxes[high])
                else:
                    dx, dy, _ = cmc.estimate_shift(tab.mean[est], boxes[high])
                if dx or dy or zs:
                    moving = np.concatenate([pool, tracked[~act]]) if cfg.cmc_unconfirmed \
                        else pool
                    moved = tab.mean[moving]
                    cmc.apply_motion(moved, dx, dy, zs, cx0, cy0, wh)
                    tab.mean[moving] = moved
        pred_mean = tab.mean[slots]
        pred_boxes = self._to_xyxy(pred_mean)

        stage = np.zeros(n_det, np.int8)
        det_track = _filled(n_det, -1, np.int64)      # row in `slots` per detection
        use_app = bool(emb is not None and self.memory_cfg.appear_memory_enable and n_pool
                       and high.size)
        classical1 = prob1 = None
        # crowd: only overlapping pairs can match in any stage (every limit is <= 1); the
        # appearance and learned costs need the dense stage-1 block
        if not use_app and self.learned_cost is None and n_trk * n_det >= SPARSE_MIN_PAIRS:
            sp = _SparseStages(overlap_pairs(pred_boxes, boxes, pixel_offset=cfg.iou_pixel_offset),
                               n_trk, n_det, trk_cls, classes, scores, self._gate_classes,
                               stage, det_track)
            pairs1, free_pool, free_high = sp.stage(
                np.arange(n_pool), high, True, cfg.match_thresh, MatchStage.HIGH,
                cues=_Stage1Cues(cfg, pred_boxes, boxes, pre_conf, scores, self._ocm(slots),
                                 self._crowded(pred_boxes[:n_pool])))
            r_tracked = free_pool[~lost_mask[free_pool]]
            _, free_r, _ = sp.stage(r_tracked, low, False, LOW_MATCH_THRESH, MatchStage.LOW)
            free_high, ocr_rows = self._recover(
                pool, lost_mask, free_pool, r_tracked[free_r], high, free_high, boxes, trk_cls,
                classes, stage, det_track)
            newly_lost = slots[_without(r_tracked[free_r], ocr_rows)]
            rest = high[free_high]
            _, free_unc, free_rest = sp.stage(np.arange(n_pool, n_trk), rest, True,
                                              cfg.unconfirmed_match_thresh,
                                              MatchStage.UNCONFIRMED)
            cost_all = mask_all = sp.costs
        else:
            cost_all = _filled((n_trk, n_det), 1.0, np.float32)
            mask_all = np.zeros((n_trk, n_det), np.float32)
            iou_cost = iou_distance(pred_boxes, boxes, pixel_offset=cfg.iou_pixel_offset)

            # step 1: tracked + lost vs high-score dets, IoU fused with score (+ appearance)
            iou1 = iou_cost[:n_pool][:, high]
            if cfg.height_iou and iou1.size:
                iou1 = height_modulated_distance(iou1, pred_boxes[:n_pool], boxes[high],
                                                 cfg.iou_pixel_offset)
            cost1 = fuse_score(iou1, scores[high])
            if cfg.score_cost_weight > 0.0 and cost1.size:
                cost1 = cost1 + score_cost(pre_conf[:n_pool], scores[high],
                                           cfg.score_cost_weight)
            if cfg.ocm_weight > 0.0 and cost1.size:    # OC-SORT direction (tracking/ocm.py)
                hist, n_obs = self._ocm(pool)
                tr, dc = np.indices(cost1.shape).reshape(2, -1)
                cost1 = ocm.add_direction_term(
                    cost1.reshape(-1), hist[tr], n_obs[tr], boxes[high][dc],
                    scores[high][dc], cfg.ocm_weight).reshape(cost1.shape)
            if cfg.crowd_match_thresh > 0.0 and cost1.size:
                cost1 = _crowd_limit(cost1, self._crowded(pred_boxes[:n_pool])[:, None],
                                     cfg.crowd_match_thresh)
            same1 = self._same_class(trk_cls[:n_pool], classes[high])
            if use_app:
                app = self.memory.distance(trk_ids[:n_pool], emb[high], valid[high],
                                           det_visibility=vis[high])
                cost1 = fuse_appearance(cost1, app, lost_mask, self.memory_cfg,
                                        reid_allowed=same1)
            if self.learned_cost is not None and n_pool and high.size:   # learned cost hook
                classical1 = cost1
                cost1, prob1 = self.learned_cost.blend(cost1, same1, cfg.match_thresh, lambda: (
                    track_features(pred_boxes[:n_pool], pred_mean[:n_pool, 4:6], age[:n_pool],
                                   since[:n_pool], pre_conf[:n_pool], pre_vis[:n_pool],
                                   max(frame.width, 1), max(frame.height, 1)),
                    self.memory.embeddings(trk_ids[:n_pool]) if emb is not None
                    and self.memory.dim == emb.shape[1] else None,
                    det_features(boxes[high], scores[high], vis[high], max(frame.width, 1),
                                 max(frame.height, 1)),
                    None if emb is None else emb[high]))
            pairs1, free_pool, free_high = self._stage(
                cost1, same1, cfg.match_thresh, np.arange(n_pool), high, MatchStage.HIGH,
                cost_all, mask_all, stage, det_track, slice(0, n_pool))

            # step 2: remaining tracked vs low-score dets, plain IoU at 0.5
            r_tracked = free_pool[~lost_mask[free_pool]]
            same2 = self._same_class(trk_cls[r_tracked], classes[low])
            _, free_r, _ = self._stage(
                iou_cost[r_tracked][:, low], same2, LOW_MATCH_THRESH, r_tracked, low,
                MatchStage.LOW, cost_all, mask_all, stage, det_track)
            free_high, ocr_rows = self._recover(
                pool, lost_mask, free_pool, r_tracked[free_r], high, free_high, boxes, trk_cls,
                classes, stage, det_track)
            newly_lost = slots[_without(r_tracked[free_r], ocr_rows)]

            # step 3: unconfirmed vs remaining high dets, IoU fused with score at
            # unconfirmed_match_thresh
            rest = high[free_high]
            same3 = self._same_class(trk_cls[n_pool:], classes[rest])
            _, free_unc, free_rest = self._stage(
                fuse_score(iou_cost[n_pool:][:, rest], scores[rest]), same3,
                cfg.unconfirmed_match_thresh, np.arange(n_pool, n_trk), rest,
                MatchStage.UNCONFIRMED, cost_all, mask_all, stage, det_track,
                slice(n_pool, n_trk))

        # step 4: new tracks from confident leftovers
        cand = rest[free_rest]
        new_dets = cand[scores[cand] >= cfg.track_thresh + NEW_TRACK_MARGIN]

        # apply the decisions: one Kalman update for every match, then the bookkeeping
        matched_dets = _nz(det_track >= 0)
        matched_rows = det_track[matched_dets]
        ms = slots[matched_rows]
        if ms.size:
            z = self._from_xyxy(boxes[matched_dets])
            nsa = 1.0 - cfg.nsa_strength * scores[matched_dets] if cfg.nsa_kalman else None
            tab.mean[ms], tab.cov[ms] = kalman.update_blocks(tab.mean[ms], tab.cov[ms], z, nsa,
                                                             wh)
            if cfg.oc_reupdate:
                self._reupdate(ms, z, since[matched_rows], prev_state[matched_rows], nsa)
            elif cfg.ocr_thresh > 0.0:      # OCR needs the last observation only
                tab.obs_z[ms] = z
            tab.clock[ms] = clock_now
            was_tracked = prev_state[matched_rows] == _TRACKED
            tab.tracklet_len[ms] = np.where(was_tracked, tab.tracklet_len[ms] + 1, 0)
            tab.state[ms] = _TRACKED
            tab.activated[ms] = True
            tab.frame_id[ms] = fc
            tab.last_ns[ms] = now
            tab.score[ms] = scores[matched_dets]
            tab.visibility[ms] = vis[matched_dets]
            tab.det_index[ms] = matched_dets
            if cfg.ocm_weight > 0.0:
                tab.dir_hist[ms], tab.dir_n[ms] = ocm.push(tab.dir_hist[ms], tab.dir_n[ms],
                                                           ocm.centres(boxes[matched_dets]))
        # re-found lost tracks, in stage-1 match order (by pool row), as the reference
        p1 = pairs1[:, 0]
        refind = pool[p1[lost_mask[p1]]] if p1.size else _EMPTY
        if ocr_rows.size:      # lost tracks re-found by OCR, after the stage-1 ones
            refind = np.concatenate([refind, pool[ocr_rows[lost_mask[ocr_rows]]]])
        tab.state[newly_lost] = _LOST
        dead_unc = slots[n_pool + free_unc]
        tab.state[dead_unc] = _REMOVED
        removed.append(dead_unc)
        new_slots = self._start_tracks(new_dets, boxes, scores, classes, vis, fc, now,
                                       clock_now)
        new_track_ids = _filled(n_det, -1, np.int64)
        new_ids = tab.track_id[new_slots]
        new_track_ids[new_dets] = new_ids

        # step 5: lost tracks past the buffer are marked removed
        if lost.size:
            if cfg.frame_mode:
                expired = fc - tab.frame_id[lost] > self.buffer_frames
            else:
                buf_ns = self.buffer_s * 1e9 + _STAMP_TOLERANCE_NS
                expired = now - tab.last_ns[lost] > buf_ns
            exp = lost[expired & (tab.state[lost] != _TRACKED)]
            tab.state[exp] = _REMOVED
            tab.removed_at[exp] = np.where(tab.removed_at[exp] < 0, fc, tab.removed_at[exp])

        # bookkeeping of the lists, in the reference's order
        tracked = np.concatenate([tracked[tab.state[tracked] == _TRACKED], new_slots, refind])
        lost = np.concatenate([lost[tab.state[lost] != _TRACKED], newly_lost])
        ra = tab.removed_at[lost]
        gone = (ra >= 0) & (ra < fc)
        removed.append(lost[gone])
        lost = lost[~gone]
        # predicted-and-updated boxes of the survivors: duplicate test and output share them
        cur_boxes = self._to_xyxy(tab.mean[tracked]) if tracked.size else None
        keep_t, lost, dups = self._remove_duplicates(tracked, lost, cur_boxes)
        if keep_t is not None:
            tracked, cur_boxes = tracked[keep_t], cur_boxes[keep_t]
        removed.append(dups)
        self._tracked, self._lost = tracked, lost
        removed_slots = np.concatenate(removed)
        removed_ids = tab.track_id[removed_slots]

        # switch diagnostics, then the appearance memory
        matched_ids = trk_ids[matched_rows]
        switches = self._observe(frame, now, fc, matched_ids, matched_dets, new_ids, new_dets,
                                 boxes, scores, vis, emb, valid)
        if removed_ids.size:
            self.memory.remove(removed_ids)
        tab.release(removed_slots)

        act_out = tab.activated[tracked]
        out = tracked[act_out]
        out_boxes = cur_boxes[act_out] if tracked.size else np.empty((0, 4))
        if cfg.output_box == 'detection' and out.size:
            out_det = tab.det_index[out]
            has = out_det >= 0
            out_boxes[has] = boxes[out_det[has]]
        if cfg.output_lost_frames > 0 and lost.size:
            coast, coast_boxes = self._coasting(lost, fc, now, frame.width, frame.height)
            if coast.size:
                out = np.concatenate([out, coast])
                out_boxes = np.concatenate([out_boxes, coast_boxes])
        snapshot_states = prev_state.copy()
        snapshot_states[prev_state == _REMOVED] = _LOST    # expired, still in the pool
        snapshot_states[n_pool:] = _NEW
        assigned = _filled(n_det, -1, np.int64)
        assigned[matched_dets] = matched_ids
        w, h = max(frame.width, 1), max(frame.height, 1)
        dim = 0 if emb is None else emb.shape[1]
        if dim and self.memory.dim == dim and n_trk:
            track_emb = self.memory.embeddings(trk_ids).astype(np.float32, copy=False)
        else:
            track_emb = np.zeros((n_trk, dim), np.float32)
        src = frame.source_index[rows] if frame.source_index is not None else rows
        assoc_prob = classical_cost = None
        if self.learned_cost is not None:       # both costs, so that rounds can be compared
            assoc_prob = np.zeros((n_trk, n_det), np.float32)
            classical_cost = cost_all.copy()
            if prob1 is not None:
                assoc_prob[:n_pool][:, high] = prob1
                classical_cost[:n_pool][:, high] = classical1
        return AssociationSnapshot(
            stamp_ns=now, frame_idx=int(frame.frame_idx), width=int(frame.width),
            height=int(frame.height), frame_rate=float(cfg.frame_rate),
            track_ids=trk_ids, track_states=snapshot_states, track_class_ids=trk_cls,
            track_boxes=pred_boxes,
            track_features=track_features(pred_boxes, pred_mean[:, 4:6], age, since, pre_conf,
                                          pre_vis, w, h),
            track_embeddings=track_emb,
            det_boxes=boxes, det_scores=scores, det_class_ids=classes,
            det_visibility=vis.astype(np.float32, copy=False),
            det_source_index=src.astype(np.int64, copy=False),
            det_features=det_features(boxes, scores, vis, w, h),
            det_embeddings=(np.zeros((n_det, 0), np.float32) if emb is None
                            else np.array(emb, np.float32)),
            det_gt_ids=frame.gt_ids[rows] if frame.gt_ids is not None else None,
            cost_matrix=cost_all, mask_matrix=mask_all, match_stage=stage,
            assigned_track_ids=assigned, new_track_ids=new_track_ids,
            output_track_ids=tab.track_id[out], output_boxes=out_boxes,
            output_scores=tab.score[out], output_class_ids=tab.class_id[out],
            output_det_index=tab.det_index[out],
            est_id_switches_frame=switches, est_id_switches=self.est_id_switches,
            removed_track_ids=removed_ids,
            gt_boxes=frame.gt_boxes, gt_object_ids=frame.gt_object_ids,
            size_source=frame.size_source, assoc_prob=assoc_prob,
            classical_cost_matrix=classical_cost)

    # -- helpers ---------------------------------------------------------------------------
    def _drop_late_expired(self, now: int) -> _I64:
        """Time mode: bound the reference's one-update grace of expired tracks in time.

        On a regular stream an expired track is still matchable one frame later (gap = buffer
        + 2 nominal frames), as in the reference; after a long pause it is not.
        """
        tab, lost = self._table, self._lost
        limit = (self.buffer_s + 2.0 / self.cfg.frame_rate) * 1e9 + _STAMP_TOLERANCE_NS
        late = tab.removed_at[lost] >= 0
        if not late.any():                  # the common case: no expired track in the list
            return _EMPTY
        late &= now - tab.last_ns[lost] > limit
        self._lost = lost[~late]
        return lost[late]

    def _coasting(self, lost: _I64, fc: int, now: int, width: int, height: int
                  ) -> tuple[_I64, NDArray[np.float64]]:
        """Lost tracks matched at most ``output_lost_frames`` nominal frames ago, and their boxes.

        With ``output_lost_min_hits`` only those tracked that many updates in a row before they
        were lost; with ``output_lost_inside`` only predictions wholly inside the image. The
        boxes are computed for the few recent ones only (every update runs this).
        """
        cfg, tab, k = self.cfg, self._table, self.cfg.output_lost_frames
        if cfg.frame_mode:
            recent = fc - tab.frame_id[lost] <= k
        else:
            recent = now - tab.last_ns[lost] <= k / cfg.frame_rate * 1e9 + _STAMP_TOLERANCE_NS
        recent &= tab.state[lost] == _LOST
        if cfg.output_lost_min_hits > 0:
            recent &= tab.tracklet_len[lost] + 1 >= cfg.output_lost_min_hits
        coast = lost[recent]
        if not coast.size:
            return coast, np.empty((0, 4))
        b = self._to_xyxy(tab.mean[coast])
        if cfg.output_lost_inside and width > 1 and height > 1:
            inside = (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= width) & (b[:, 3] <= height)
            coast, b = coast[inside], b[inside]
        return coast, b

    def _reupdate(self, ms: _I64, z: NDArray[np.float64], gap: NDArray[np.float64],
                  prev: NDArray[np.int8], nsa: NDArray[np.float64] | None) -> None:
        """OC-SORT ORU for re-found lost tracks, then save every matched track's observation.

        ``ms`` matched slots (already updated the plain way), ``z`` their detections (xyah),
        ``gap`` nominal frames since their last match, ``prev`` their state before this update.
        """
        tab = self._table
        back = ((prev != _TRACKED) & (gap > 1.0)).nonzero()[0]
        if back.size:
            s = ms[back]
            tab.mean[s], tab.cov[s] = oc.reupdate(
                tab.obs_mean[s], tab.obs_cov[s], tab.obs_z[s], z[back], gap[back],
                None if nsa is None else nsa[back], self._wh)
        tab.obs_mean[ms] = tab.mean[ms]
        tab.obs_cov[ms] = tab.cov[ms]
        tab.obs_z[ms] = z

    def _recover(self, pool: _I64, lost_mask: NDArray[np.bool_], free_pool: _I64,
                 tracked_left: _I64, high: _I64, free_high: _I64, boxes: NDArray[np.float64],
                 trk_cls: _I64, classes: _I64,
                 stage: NDArray[np.int8], det_track: _I64) -> tuple[_I64, _I64]:
        """OC-SORT OCR: unmatched pool tracks' last observed box vs the leftover high dets.

        A prediction that drifted during an occlusion (or a non-linear turn) misses the person
        it lost; the box where it was last seen often still overlaps. Plain IoU, limit
        ``1 - ocr_thresh``; matches count as stage 1 (cost/mask matrices untouched).
        ``tracked_left`` are the tracked rows stage 2 left (the rest of ``free_pool`` are lost
        rows). Returns the high dets still free (indices into ``high``) and the pool rows matched.
        """
        cfg = self.cfg
        if cfg.ocr_thresh <= 0.0 or not free_high.size or not free_pool.size:
            return free_high, _EMPTY
        lost_left = free_pool[lost_mask[free_pool]]
        rows = np.concatenate([tracked_left, lost_left])
        if not rows.size:
            return free_high, _EMPTY
        dets = high[free_high]
        obs = self._to_xyxy(self._table.obs_z[pool[rows]])
        cost = iou_distance(obs, boxes[dets], pixel_offset=cfg.iou_pixel_offset)
        same = self._same_class(trk_cls[rows], classes[dets])
        if same is not None:
            cost = np.where(same, cost, 1.0)
        r, c = assign(cost, 1.0 - cfg.ocr_thresh)[0].T
        if not r.size:
            return free_high, _EMPTY
        stage[dets[c]] = MatchStage.HIGH
        det_track[dets[c]] = rows[r]
        return np.delete(free_high, c), rows[r]

    def _crowded(self, pool_boxes: NDArray[np.float64]) -> NDArray[np.bool_] | None:
        """Pool tracks whose prediction overlaps another's (None: ``crowd_match_thresh`` 0)."""
        if self.cfg.crowd_match_thresh <= 0.0:
            return None
        n, off = pool_boxes.shape[0], self.cfg.iou_pixel_offset
        if n * n >= SPARSE_MIN_PAIRS:
            i, j, _ = overlap_pairs(pool_boxes, pool_boxes, pixel_offset=off)
        else:
            i, j = (iou_distance(pool_boxes, pool_boxes, pixel_offset=off) < 1.0).nonzero()
        out = np.zeros(n, bool)
        out[i[i != j]] = True
        return out

    def _ocm(self, slots: _I64) -> tuple[NDArray[np.float64], _I64] | None:
        """The OCM centre histories of ``slots`` (None when ``ocm_weight`` is 0)."""
        if self.cfg.ocm_weight <= 0.0:
            return None
        return self._table.dir_hist[slots], self._table.dir_n[slots]

    def _same_class(self, track_cls: _I64, det_cls: _I64) -> NDArray[np.bool_] | None:
        """(T, D) class agreement, or None when matching is class-agnostic."""
        if not self._gate_classes:
            return None
        return track_cls[:, None] == det_cls[None, :]

    @staticmethod
    def _stage(cost: NDArray[np.float64], same: NDArray[np.bool_] | None, thresh: float,
               trk_rows: _I64, det_cols: _I64, stage_id: MatchStage,
               cost_all: NDArray[np.float32], mask_all: NDArray[np.float32],
               stage: NDArray[np.int8], det_track: _I64,
               row_block: slice | None = None) -> tuple[_I64, _I64, _I64]:
        """Assign one stage, record its costs, mask and matches; return local indices.

        ``row_block``: ``trk_rows`` as a slice when they are consecutive (cheaper writes).
        """
        gated = cost if same is None else np.where(same, cost, np.inf)
        if cost.size:
            block = (trk_rows[:, None] if row_block is None else row_block, det_cols)
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
                      clock_now: int) -> _I64:
        """New rows for detections ``dets``; confirmed at once only in the first update."""
        n = dets.size
        if n == 0:
            return _EMPTY
        tab = self._table
        s = tab.alloc(n)
        tab.mean[s], tab.cov[s] = kalman.initiate_blocks(self._from_xyxy(boxes[dets]),
                                                         self._wh)
        tab.clock[s] = clock_now
        tab.track_id[s] = np.arange(self._next_id, self._next_id + n)
        self._next_id += n
        tab.class_id[s] = classes[dets]
        tab.state[s] = _TRACKED
        tab.activated[s] = fc == 1
        tab.score[s] = scores[dets]
        tab.visibility[s] = vis[dets]
        tab.start_frame[s] = fc
        tab.frame_id[s] = fc
        tab.start_ns[s] = now
        tab.last_ns[s] = now
        tab.tracklet_len[s] = 0
        tab.removed_at[s] = -1
        tab.det_index[s] = dets
        if self.cfg.ocm_weight > 0.0:     # OCM centre history (unused otherwise)
            tab.dir_hist[s] = ocm.centres(boxes[dets])[:, None, :]
            tab.dir_n[s] = 1
        if self.cfg.oc_reupdate:
            tab.obs_mean[s], tab.obs_cov[s] = tab.mean[s], tab.cov[s]
        if self.cfg.oc_reupdate or self.cfg.ocr_thresh > 0.0:
            tab.obs_z[s] = tab.mean[s, :4]
        return s

    def _remove_duplicates(self, tracked: _I64, lost: _I64,
                           tracked_boxes: NDArray[np.float64] | None
                           ) -> tuple[NDArray[np.bool_] | None, _I64, _I64]:
        """Drop one of each tracked/lost pair that overlaps almost fully: keep the older one.

        ``tracked_boxes`` are the xyxy boxes of ``tracked``. Returns the mask of tracked tracks
        to keep (None: all), the remaining lost tracks and the dropped slots.
        """
        if tracked.size == 0 or lost.size == 0 or self.cfg.duplicate_iou_dist <= 0.0:
            return None, lost, _EMPTY
        tab = self._table
        lost_boxes = self._to_xyxy(tab.mean[lost])
        if tracked.size * lost.size >= SPARSE_MIN_PAIRS:  # only overlapping pairs can be close
            p, q, d = overlap_pairs(tracked_boxes, lost_boxes,
                                    pixel_offset=self.cfg.iou_pixel_offset)
            close = d < self.cfg.duplicate_iou_dist
            p, q = p[close], q[close]
        else:
            dist = iou_distance(tracked_boxes, lost_boxes, pixel_offset=self.cfg.iou_pixel_offset)
            p, q = (dist < self.cfg.duplicate_iou_dist).nonzero()
        if p.size == 0:
            return None, lost, _EMPTY
        age = tab.frame_id - tab.start_frame
        a_older = age[tracked[p]] > age[lost[q]]
        drop_a = np.zeros(tracked.size, bool)
        drop_a[p[~a_older]] = True
        drop_b = np.zeros(lost.size, bool)
        drop_b[q[a_older]] = True
        return (~drop_a, lost[~drop_b],
                np.concatenate([tracked[drop_a], lost[drop_b]]))

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


def _crowd_limit(cost: NDArray[np.float64], crowded: NDArray[np.bool_],
                 limit: float) -> NDArray[np.float64]:
    """Stage-1 costs of crowded tracks at or above ``limit`` become 1.0 (never eligible)."""
    return np.where(crowded & (cost >= limit), 1.0, cost)


class _Stage1Cues:
    """The stage-1 cues of the dense path (height IoU, score cue), pair by pair, same floats."""

    def __init__(self, cfg: TrackerConfig, trk_boxes: NDArray[np.float64],
                 det_boxes: NDArray[np.float64], trk_scores: NDArray[np.float64],
                 det_scores: NDArray[np.float64],
                 ocm_hist: tuple[NDArray[np.float64], _I64] | None = None,
                 crowded: NDArray[np.bool_] | None = None) -> None:
        self.cfg, self.trk_boxes, self.det_boxes = cfg, trk_boxes, det_boxes
        self.trk_scores, self.det_scores = trk_scores, det_scores
        self.ocm_hist, self.crowded = ocm_hist, crowded

    def before_fuse(self, tr: _I64, dc: _I64, dist: NDArray[np.float64]
                    ) -> NDArray[np.float64]:
        if not self.cfg.height_iou:
            return dist
        return 1.0 - (1.0 - dist) * height_iou_pairs(
            self.trk_boxes[tr], self.det_boxes[dc], self.cfg.iou_pixel_offset)

    def after_fuse(self, tr: _I64, dc: _I64, cost: NDArray[np.float64]) -> NDArray[np.float64]:
        w = self.cfg.score_cost_weight
        if w > 0.0:
            cost = cost + w * np.abs(np.asarray(self.trk_scores, np.float64)[tr]
                                     - np.asarray(self.det_scores, np.float64)[dc])
        if self.ocm_hist is not None:
            hist, n_obs = self.ocm_hist
            cost = ocm.add_direction_term(cost, hist[tr], n_obs[tr], self.det_boxes[dc],
                                          np.asarray(self.det_scores, np.float64)[dc],
                                          self.cfg.ocm_weight)
        if self.crowded is not None:
            cost = _crowd_limit(cost, self.crowded[tr], self.cfg.crowd_match_thresh)
        return cost


class _SparseStages:
    """The three association stages on overlapping pairs only (crowds).

    ``overlaps`` = ``(rows, cols, 1 - IoU)`` of the overlapping (slot row, detection) pairs;
    every other pair has cost 1.0 in every stage and is never eligible. Each stage selects its
    rows and columns, fuses scores and gates classes per pair with the dense path's arithmetic,
    records the pairs in :attr:`costs` (the snapshot's matrices, built when read) and assigns
    with :func:`~assoc_logger_ros.tracking.sparse.assign_sparse`.
    """

    def __init__(self, overlaps: tuple[_I64, NDArray[np.int64], NDArray[np.float64]],
                 n_trk: int, n_det: int, trk_cls: _I64, det_cls: _I64,
                 scores: NDArray[np.float64], gate: bool, stage: NDArray[np.int8],
                 det_track: _I64) -> None:
        self.pi, self.pj, self.dist = overlaps
        self.n_trk, self.n_det = n_trk, n_det
        self.trk_cls, self.det_cls, self.scores, self.gate = trk_cls, det_cls, scores, gate
        self.stage_of, self.det_track = stage, det_track
        self.costs = PairCosts(n_trk, n_det)

    def stage(self, trk_rows: _I64, det_cols: _I64, fuse: bool, thresh: float,
              stage_id: MatchStage, cues: _Stage1Cues | None = None
              ) -> tuple[_I64, _I64, _I64]:
        """One stage on ``trk_rows`` x ``det_cols``; returns local indices like ``assign``."""
        rpos = _filled(self.n_trk, -1, np.int64)
        rpos[trk_rows] = np.arange(trk_rows.size)
        cpos = _filled(self.n_det, -1, np.int64)
        cpos[det_cols] = np.arange(det_cols.size)
        lr, lc = rpos[self.pi], cpos[self.pj]
        e = (lr >= 0) & (lc >= 0)
        lr, lc, cost = lr[e], lc[e], self.dist[e]
        tr, dc = trk_rows[lr], det_cols[lc]
        if cues is not None:
            cost = cues.before_fuse(tr, dc, cost)
        if fuse:        # fuse_score, pair by pair
            cost = 1.0 - (1.0 - cost) * self.scores[dc]
        if cues is not None:
            cost = cues.after_fuse(tr, dc, cost)
        gated = (np.where(self.trk_cls[tr] == self.det_cls[dc], cost, np.inf) if self.gate
                 else cost)
        self.costs.add(tr, dc, cost, gated < thresh)
        pairs, free_t, free_d = assign_sparse(lr, lc, gated, trk_rows.size, det_cols.size,
                                              thresh)
        if pairs.size:
            d = det_cols[pairs[:, 1]]
            self.stage_of[d] = stage_id
            self.det_track[d] = trk_rows[pairs[:, 0]]
        return pairs, free_t, free_d
