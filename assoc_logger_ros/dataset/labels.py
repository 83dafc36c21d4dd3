"""Score the samples' labels (``assigned_track_ids``) against ground truth: the ``labels`` report.

Ground truth only scores labels here; it never makes them. Two definitions, both printed:

* **per-frame** (max-IoU): a matched pair (track t, detection d) is *correct* when
  ``det_gt_ids[d]`` equals the identity of the detection t was matched to (or started from) most
  recently, *wrong* when both are known and differ, else *unverifiable* (an unknown identity on
  either side, or a track whose origin is not in the data).
* **consistent** (CLEAR-MOT style, needs ``gt_boxes``): a track keeps its ground-truth identity
  g while its matched detection still overlaps g's box at IoU >= 0.5, even when the frame's
  one-to-one matching gave the detection another identity; only when it does not is the pair
  scored against ``det_gt_ids[d]`` and the track's identity moves on.

A *missed continuation* is a detection left unmatched while a track of the association carried
its identity; a *flip-back* a wrong pair that returns a track to an identity it had before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import os
from typing import Any

import numpy as np

from assoc_logger_ros.tracking.confidence import CONFIDENCE_KEYS, from_arrays

GT_IOU = 0.5
CORRECT, WRONG, UNVERIFIABLE = 1, 0, -1
DEFINITIONS = (
    'per-frame: pair (track t, detection d) correct when det_gt_ids[d] equals the identity of '
    'the detection t was last matched to (or started from); unverifiable when either is unknown',
    "consistent: t keeps its identity g while its detection overlaps g's gt box at IoU >= 0.5 "
    '(CLEAR-MOT); otherwise scored as per-frame',
    'missed continuation: a detection left unmatched while a track of the frame carried its '
    'identity; flip-back: a wrong pair returning a track to an identity it had before',
)
# per-pair columns collected for filters and benchmarks (besides the confidence keys)
PAIR_EXTRA = ('det_scores', 'det_visibility', 'match_stage')


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    union = ((box[2] - box[0]) * (box[3] - box[1])
             + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class Counts:
    """Verdict counts of one definition."""

    correct: int = 0
    wrong: int = 0
    unverifiable: int = 0
    missed: int = 0
    flip_backs: int = 0
    ignored_correct: int = 0    # label_weights 0 (set by filter) on a correct / wrong pair
    ignored_wrong: int = 0

    @property
    def accuracy(self) -> float | None:
        """Correct / (correct + wrong); None without verifiable pairs."""
        n = self.correct + self.wrong
        return self.correct / n if n else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the accuracy."""
        acc = self.accuracy
        return {'correct': self.correct, 'wrong': self.wrong, 'unverifiable': self.unverifiable,
                'verifiable': self.correct + self.wrong, 'missed_continuations': self.missed,
                'flip_backs': self.flip_backs,
                'accuracy': None if acc is None else round(acc, 6),
                'ignored_correct': self.ignored_correct, 'ignored_wrong': self.ignored_wrong}


@dataclass
class _Identity:
    """Per-session memory of one definition: track id -> identity, and identity histories."""

    ref: dict[int, int] = field(default_factory=dict)
    seen: dict[int, set[int]] = field(default_factory=dict)

    def set(self, tid: int, gid: int) -> None:
        """Track ``tid`` now carries identity ``gid``."""
        self.ref[tid] = gid
        if gid >= 0:
            self.seen.setdefault(tid, set()).add(gid)


@dataclass
class PairTable:
    """One row per matched pair: verdicts, flip-back flags, confidence and context columns."""

    columns: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, **values: Any) -> None:
        """Append one row."""
        for k, v in values.items():
            self.columns.setdefault(k, []).append(v)

    def arrays(self) -> dict[str, np.ndarray]:
        """Columns as numpy arrays."""
        return {k: np.asarray(v) for k, v in self.columns.items()}


class SessionScorer:
    """Scores the samples of one session, in frame order, for both definitions."""

    def __init__(self, timeline: bool = True) -> None:
        self.keep_timeline = timeline      # off for live use: memory stays bounded by tracks
        self.frame = _Identity()
        self.consistent = _Identity()
        self.counts = {'per_frame': Counts(), 'consistent': Counts()}
        self.has_boxes = False
        # per sample: (stamp_ns, correct, wrong, est_id_switches_frame), per-frame definition
        self.timeline: list[tuple[int, int, int, int]] = []
        # per timeline row, the offline switch count (dataset/offline_switches.py), when
        # score_directory ran with context
        self.offline: list[int] = []

    def score(self, a: Mapping[str, np.ndarray], table: PairTable | None = None,
              sample: int = -1) -> None:
        """Score one sample; appends its matched pairs to ``table`` when given."""
        gt = np.asarray(a['det_gt_ids'])
        assigned = np.asarray(a['assigned_track_ids'])
        new_ids = np.asarray(a['new_track_ids'])
        track_ids = [int(t) for t in a['track_ids']]
        boxes = np.asarray(a['det_boxes'])
        gt_boxes = a.get('gt_boxes')
        gt_index = {}
        if gt_boxes is not None:
            self.has_boxes = True
            gt_index = {int(g): i for i, g in enumerate(np.asarray(a['gt_ids']))}
        conf = None
        if table is not None:
            conf = {k: a[k] if k in a else None for k in CONFIDENCE_KEYS}
            if any(v is None for v in conf.values()):
                conf = from_arrays(dict(a))
        if 'origin_track_ids' in a and 'origin_det_gt_ids' in a:   # tracks of a frame before
            for t, h in zip(a['origin_track_ids'].tolist(), a['origin_det_gt_ids'].tolist()):
                if t not in self.frame.ref:
                    self.frame.set(int(t), int(h))
                    self.consistent.set(int(t), int(h))
        before_f = dict(self.frame.ref)
        before_c = dict(self.consistent.ref)
        cf, cc = self.counts['per_frame'], self.counts['consistent']
        n_ok = n_bad = 0
        weights = a.get('label_weights')
        for d in np.flatnonzero(assigned >= 0):
            t, h = int(assigned[d]), int(gt[d])
            # per-frame definition
            r = self.frame.ref.get(t)
            if r is None or r < 0 or h < 0:
                vf, flip_f = UNVERIFIABLE, False
                cf.unverifiable += 1
            elif r == h:
                vf, flip_f = CORRECT, False
                cf.correct += 1
                n_ok += 1
            else:
                vf, flip_f = WRONG, h in self.frame.seen.get(t, ())
                cf.wrong += 1
                cf.flip_backs += flip_f
                n_bad += 1
            self.frame.set(t, h)
            # consistent definition
            g = self.consistent.ref.get(t)
            vc, flip_c = UNVERIFIABLE, False
            keeps = False
            if gt_boxes is not None and g is not None and g >= 0 and g in gt_index:
                keeps = _iou_one(boxes[d], np.asarray(gt_boxes)[[gt_index[g]]])[0] >= GT_IOU
            if keeps:
                vc = CORRECT
            elif g is None or g < 0 or h < 0:
                if h >= 0:
                    self.consistent.set(t, h)
            elif g == h:
                vc = CORRECT
            else:
                vc, flip_c = WRONG, h in self.consistent.seen.get(t, ())
                self.consistent.set(t, h)
            if vc == CORRECT:
                cc.correct += 1
            elif vc == WRONG:
                cc.wrong += 1
                cc.flip_backs += flip_c
            else:
                cc.unverifiable += 1
            if weights is not None and weights[d] < 1.0:
                for counts, verdict in ((cf, vf), (cc, vc)):
                    counts.ignored_correct += verdict == CORRECT
                    counts.ignored_wrong += verdict == WRONG
            if table is not None:
                row = {k: float(conf[k][d]) for k in CONFIDENCE_KEYS}
                row.update({k: float(a[k][d]) for k in PAIR_EXTRA})
                table.add(sample=sample, det=int(d), track=t, verdict=vf, flip_back=flip_f,
                          verdict_consistent=vc, flip_back_consistent=flip_c,
                          frame_switches=int(a['est_id_switches_frame']),
                          sample_visibility=float(np.mean(a['det_visibility'])), **row)
        for d in np.flatnonzero(assigned < 0):
            h = int(gt[d])
            if h < 0:
                continue
            if any(before_f.get(t) == h for t in track_ids):
                cf.missed += 1
            if any(before_c.get(t) == h for t in track_ids):
                cc.missed += 1
        for d in np.flatnonzero(new_ids >= 0):
            t, h = int(new_ids[d]), int(gt[d])
            self.frame.set(t, h)
            self.consistent.set(t, h)
        if self.keep_timeline:
            self.timeline.append((int(a['stamp_ns']), n_ok, n_bad,
                                  int(a['est_id_switches_frame'])))
        for tid in removed if (removed := a.get('removed_track_ids')) is not None else ():
            for ident in (self.frame, self.consistent):
                ident.ref.pop(int(tid), None)
                ident.seen.pop(int(tid), None)


def sample_order(records: list[dict[str, Any]]) -> list[int]:
    """Manifest rows in (session, stamp, frame) order: the order identities are followed in."""
    return sorted(range(len(records)), key=lambda i: (
        str(records[i].get('session', '')), int(records[i].get('stamp_ns', 0)),
        int(records[i].get('frame_idx', -1)), i))


def score_directory(directory: str | os.PathLike[str], *, pairs: bool = False,
                    context: bool = False, retrack: bool = False, jobs: int = 1
                    ) -> tuple[dict[str, Any], dict[str, np.ndarray] | None,
                               dict[str, SessionScorer]]:
    """(report, per-pair arrays or None, scorers by session) of one sample directory.

    Samples without ``det_gt_ids`` are counted as such and skipped. With ``context`` a first
    pass computes the session-level ``ctx_*`` evidence (no ground truth): the per-pair table
    gets those columns and each scorer its ``offline`` switch counts; ``retrack`` adds the
    re-tracking votes to them (the session is tracked again, ``retrack.RUNS`` times, in
    ``jobs`` processes). The table's ``group`` column is each row's session.
    """
    from assoc_logger_ros.dataset.offline_switches import offline_switch_count
    from assoc_logger_ros.dataset.track_context import CONTEXT_KEYS, records_context
    from assoc_logger_ros.shards.source import open_source
    ds = open_source(directory)    # either layout: sample directory or shards
    recs = ds.records
    problems: list[str] = []    # sessions whose evidence could not be computed
    ctx = records_context(recs, ds.load, retrack, problems, jobs) if context else {}
    table = PairTable() if pairs else None
    scorers: dict[str, SessionScorer] = {}
    without_gt = unreadable = 0
    for i in sample_order(recs):
        rec = recs[i]
        if not rec.get('has_gt', False):
            without_gt += 1
            continue
        try:
            arrays = ds.load(rec)
        except Exception:  # noqa: BLE001 - an unreadable sample is counted, not fatal
            unreadable += 1
            continue
        if 'det_gt_ids' not in arrays:
            without_gt += 1
            continue
        session = str(rec.get('session', ''))
        scorer = scorers.setdefault(session, SessionScorer())
        scorer.score(arrays, table, sample=i)
        if context:
            scorer.offline.append(offline_switch_count(arrays, ctx.get(i)))
    columns = table.arrays() if table is not None else None
    if columns is not None:
        columns['group'] = np.array([str(recs[int(i)].get('session', ''))
                                     for i in columns.get('sample', ())], dtype=str)
    if columns is not None and context:
        for key in CONTEXT_KEYS:
            columns[key] = np.array(
                [ctx[int(i)][key][int(j)] if int(i) in ctx else np.nan
                 for i, j in zip(columns.get('sample', ()), columns.get('det', ()))],
                np.float64)
    report = build_report(scorers)
    report.update({'directory': str(ds.directory), 'samples': len(recs),
                   'samples_without_gt': without_gt, 'unreadable_samples': unreadable,
                   'context_problems': problems})
    return report, columns, scorers


def build_report(scorers: Mapping[str, SessionScorer]) -> dict[str, Any]:
    """Totals and per-session counts of both definitions."""
    total = {'per_frame': Counts(), 'consistent': Counts()}
    sessions = {}
    for name, sc in scorers.items():
        for key, c in sc.counts.items():
            t = total[key]
            for f in ('correct', 'wrong', 'unverifiable', 'missed', 'flip_backs',
                      'ignored_correct', 'ignored_wrong'):
                setattr(t, f, getattr(t, f) + getattr(c, f))
        sessions[name] = {k: c.as_dict() for k, c in sc.counts.items()
                          if k == 'per_frame' or sc.has_boxes}
    boxes = any(sc.has_boxes for sc in scorers.values())
    return {'definitions': list(DEFINITIONS), 'consistent_available': boxes,
            'total': {k: c.as_dict() for k, c in total.items() if k == 'per_frame' or boxes},
            'sessions': sessions}


def _line(name: str, c: Mapping[str, Any]) -> str:
    acc = 'n/a' if c['accuracy'] is None else f'{100 * c["accuracy"]:.2f}%'
    text = (f'{name}: {c["verifiable"]} verifiable pairs, {acc} correct, {c["wrong"]} wrong '
            f'({c["flip_backs"]} flip-backs), {c["unverifiable"]} unverifiable, '
            f'{c["missed_continuations"]} missed continuations')
    if c['ignored_correct'] or c['ignored_wrong']:
        text += (f'; label_weights 0 on {c["ignored_wrong"]} wrong and {c["ignored_correct"]} '
                 'correct pairs')
    return text


def format_text(report: Mapping[str, Any]) -> str:
    """Human-readable form of the report (definitions first)."""
    lines = ['label accuracy against ground truth (used only to score):']
    lines += [f'  - {d}' for d in report['definitions']]
    if not report['consistent_available']:
        lines.append('  (no gt_boxes in these samples: the consistent definition is not '
                     'available)')
    lines.append(f'samples: {report["samples"]} ({report["samples_without_gt"]} without ground '
                 'truth)')
    for key, c in report['total'].items():
        lines.append(_line(f'total, {key}', c))
    for name, per in report['sessions'].items():
        for key, c in per.items():
            lines.append('  ' + _line(f'{name}, {key}', c))
    return '\n'.join(lines)


def iter_wrong(pairs: Mapping[str, np.ndarray], consistent: bool = False) -> Iterable[int]:
    """Row numbers of wrong pairs in a per-pair table."""
    v = pairs['verdict_consistent' if consistent else 'verdict']
    return np.flatnonzero(v == WRONG)


def snapshot_view(snap: Any) -> dict[str, Any] | None:
    """What :meth:`SessionScorer.score` reads, from a live snapshot (None without ground truth).

    Removed tracks are forgotten, so a long live run keeps memory bounded.
    """
    if snap.det_gt_ids is None:
        return None
    view = {'det_gt_ids': snap.det_gt_ids, 'assigned_track_ids': snap.assigned_track_ids,
            'new_track_ids': snap.new_track_ids, 'track_ids': snap.track_ids,
            'det_boxes': snap.det_boxes, 'stamp_ns': snap.stamp_ns,
            'est_id_switches_frame': snap.est_id_switches_frame,
            'removed_track_ids': snap.removed_track_ids}
    if snap.gt_boxes is not None and snap.gt_object_ids is not None:
        view['gt_boxes'], view['gt_ids'] = snap.gt_boxes, snap.gt_object_ids
    return view


def live_values(scorer: SessionScorer) -> dict[str, Any]:
    """Flat ``gt_label_*`` diagnostics of a live scorer (the node, with ``gt_topic``)."""
    out: dict[str, Any] = {}
    for key, c in scorer.counts.items():
        if key == 'consistent' and not scorer.has_boxes:
            continue
        d = c.as_dict()
        out[f'gt_label_{key}_accuracy'] = d['accuracy'] if d['accuracy'] is not None else ''
        for f in ('correct', 'wrong', 'unverifiable', 'missed_continuations', 'flip_backs'):
            out[f'gt_label_{key}_{f}'] = d[f]
    return out
