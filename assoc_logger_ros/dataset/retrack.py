"""Re-tracking agreement: a session's own detections tracked again, offline, other ways.

A session's samples hold the detections the live tracker kept (``det_boxes``, ``det_scores``,
``det_class_ids``, ``stamp_ns``, the image size in ``metadata``). Offline they can be tracked
again, with no ground truth, by the package's own :class:`ByteTracker` in :func:`runs`:
backwards in time with the defaults, backwards and forwards with ``reference_config()``, and
backwards and forwards with ``match_thresh`` 0.7. A logged label links detection d to the
detection its track held before; a run *disagrees* when it does not put the two in one track.
Wrong labels are where tracking is ambiguous, so other runs tend to resolve them otherwise
(``bench/label_retrack.py`` measures this on MOT17; docs/labels.md has the figures).

Memory: the session's detections as float32 (about 20 bytes per detection); time: each run
costs about what the live tracker did (``RUNS`` tracker passes per session).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
import dataclasses
import json
from typing import Any

import numpy as np

from assoc_logger_ros.config import TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.messages.convert import FALLBACK_SIZE
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.reference import reference_config


def runs() -> tuple[tuple[str, TrackerConfig, bool], ...]:
    """(name, settings, backwards) of the re-tracking runs."""
    base = TrackerConfig()
    ref = reference_config(frame_mode=False)
    tight = dataclasses.replace(base, match_thresh=0.7)
    return (('backward', base, True), ('backward reference', ref, True),
            ('forward reference', ref, False), ('backward match 0.7', tight, True),
            ('forward match 0.7', tight, False))


BACKWARDS = tuple(back for _, _, back in runs())   # each run's direction, in order
RUNS = len(BACKWARDS)


@dataclasses.dataclass
class _Frame:
    key: Hashable
    frame: int
    stamp: int
    boxes: np.ndarray      # (D, 4) float32
    scores: np.ndarray     # (D,) float32
    classes: np.ndarray    # (D,) int32
    width: int
    height: int


def _image_size(arrays: Mapping[str, Any]) -> tuple[int, int]:
    try:
        meta = json.loads(str(np.asarray(arrays['metadata']).reshape(-1)[0]))
        w, h = int(meta['width']), int(meta['height'])
        if w > 0 and h > 0:
            return w, h
    except Exception:  # noqa: BLE001 - no usable size in the metadata: the fixed one
        pass
    return FALLBACK_SIZE


@dataclasses.dataclass
class SessionDetections:
    """Every detection of one session (samples in any order), for the re-tracking runs."""

    frames: list[_Frame] = dataclasses.field(default_factory=list)

    def add(self, key: Hashable, arrays: Mapping[str, Any]) -> None:
        """Remember one sample's detections (``key`` names the sample)."""
        boxes = np.asarray(arrays['det_boxes'], np.float32).reshape(-1, 4)
        n = boxes.shape[0]
        scores = np.asarray(arrays.get('det_scores', np.ones(n)), np.float32).reshape(-1)
        classes = np.asarray(arrays.get('det_class_ids', np.zeros(n)), np.int32).reshape(-1)
        if scores.size != n or classes.size != n:
            raise ValueError('det_boxes, det_scores and det_class_ids do not agree')
        stamp = np.asarray(arrays.get('stamp_ns', [0])).reshape(-1)
        self.frames.append(_Frame(key, int(np.asarray(arrays['frame_idx']).reshape(-1)[0]),
                                  int(stamp[0]) if stamp.size else 0, boxes, scores, classes,
                                  *_image_size(arrays)))

    def track_ids(self, cfg: TrackerConfig, backwards: bool) -> dict[Hashable, np.ndarray]:
        """Track id of every detection in one run (-1: neither matched nor started), by key."""
        order = sorted(self.frames, key=lambda f: (f.frame, f.stamp))
        if not order:
            return {}
        clock = _clock(order)
        if backwards:
            order, clock = order[::-1], [clock[-1] - c + 1 for c in clock[::-1]]
        trk = ByteTracker(cfg)
        out = {}
        for f, now in zip(order, clock):
            snap = trk.update(make_frame(now, f.boxes, f.scores, width=f.width,
                                         height=f.height, class_ids=f.classes,
                                         frame_idx=f.frame))
            a = np.asarray(snap.assigned_track_ids).reshape(-1)
            ids = np.where(a >= 0, a, np.asarray(snap.new_track_ids).reshape(-1))
            full = np.full(f.boxes.shape[0], -1, np.int64)   # rows the tracker dropped: -1
            full[np.asarray(snap.det_source_index, np.int64)] = ids
            out[f.key] = full
        return out

    def all_track_ids(self) -> list[dict[Hashable, np.ndarray]]:
        """:meth:`track_ids` of every run in :func:`runs`."""
        return [run_track_ids(self, k) for k in range(RUNS)]


def run_track_ids(detections: SessionDetections, run: int) -> dict[Hashable, np.ndarray]:
    """:meth:`SessionDetections.track_ids` of run number ``run`` (a picklable task)."""
    _, cfg, backwards = runs()[run]
    return detections.track_ids(cfg, backwards)


def _clock(order: list[_Frame]) -> list[int]:
    """Stamps (ns from 1) for frames in time order: the samples' own while they increase.

    Stamps that repeat, go back or span more than int64 (a crafted or broken session) would
    stall the tracker's clock (lost tracks never expire) or overflow it, so then the frame
    numbers at 30 Hz are used, and failing those the frames' positions.
    """
    step = 10**9 // 30
    for values, scale in (([f.stamp for f in order], 1), ([f.frame for f in order], step)):
        if (all(b > a for a, b in zip(values, values[1:]))
                and (values[-1] - values[0]) * scale < 2**62):
            return [(v - values[0]) * scale + 1 for v in values]
    return [k * step + 1 for k in range(len(order))]


def disagreements(points: list[tuple[Hashable, int]],
                  run_ids: list[dict[Hashable, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(votes, splits): runs disagreeing with each step of one track (time order; first NaN).

    ``points``: (sample key, detection) of the track's start box and matches. A step links the
    previous point to this one. ``votes`` counts the runs that do not put both in one track
    (leaving either untracked counts). ``splits`` is stricter: the runs that track both in
    different tracks, or whose track at the first of the two (in the run's own time order)
    does not take the second; a run that has not started a track there abstains.
    """
    votes, splits = np.zeros(len(points)), np.zeros(len(points))
    for run, backwards in zip(run_ids, BACKWARDS):
        oid = np.array([run[k][d] if k in run else -1 for k, d in points], np.int64)
        prev, cur = oid[:-1], oid[1:]
        first, second = (cur, prev) if backwards else (prev, cur)
        votes[1:] += (cur != prev) | (cur < 0)
        splits[1:] += (((cur >= 0) & (prev >= 0) & (cur != prev))
                       | ((first >= 0) & (second < 0)))
    if votes.size:
        votes[0] = splits[0] = np.nan
    return votes, splits
