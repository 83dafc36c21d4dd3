"""Re-tracking agreement as label evidence on MOT17 train (an experiment, not shipped).

Offline, a session's samples hold every detection the tracker saw (``det_boxes``,
``det_scores``, ``det_class_ids``, stamps, image size in ``metadata``). This script tracks them
again with the package's own ``ByteTracker`` (no ROS, no ground truth) in five other runs:
backwards in time with the defaults, backwards and forwards with ``reference_config()``, and
backwards and forwards with ``match_thresh`` 0.7. A logged label links detection d (frame f)
to the detection its track was matched to before; a run *disagrees* when it does not put the
two in the same track. Per pair:

* ``retrack_votes``: how many of the five runs disagree (NaN: the track has no earlier box);
* ``retrack_window_votes``: the largest ``retrack_votes`` over the track's 3 matches either side.

Then it prints, with the ground truth only scoring, the share of wrong labels each flag
removes and of right labels it keeps, alone and joined to the ``recommended`` preset.
Samples come from ``bench/label_quality.py --work DIR`` (run it first); the per-pair table with
the vote columns is cached as DIR/pairs_retrack.npz, which
``bench/label_scorer_boost.py --retrack`` reads.

    PYTHONPATH=. .venv/bin/python bench/label_retrack.py --work /tmp/label_quality
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assoc_logger_ros.config import TrackerConfig  # noqa: E402
from assoc_logger_ros.dataset.label_filter import PRESETS, keep_mask  # noqa: E402
from assoc_logger_ros.frame import make_frame  # noqa: E402
from assoc_logger_ros.shards.source import open_source  # noqa: E402
from assoc_logger_ros.tracking.byte_tracker import ByteTracker  # noqa: E402
from assoc_logger_ros.tracking.reference import reference_config  # noqa: E402
from bench.label_quality import SEQS, row  # noqa: E402
from bench.label_scorer_boost import load_pairs as boost_pairs  # noqa: E402

WINDOW = 3      # the track's matches either side for retrack_window_votes
VOTE_KEYS = ('retrack_votes', 'retrack_window_votes')


def runs() -> list[tuple[str, TrackerConfig, bool]]:
    """(name, settings, backwards) of the five re-tracking runs."""
    base = TrackerConfig()
    ref = reference_config(frame_mode=False)
    tight = dataclasses.replace(base, match_thresh=0.7)
    return [('backward', base, True), ('backward reference', ref, True),
            ('forward reference', ref, False), ('backward match 0.7', tight, True),
            ('forward match 0.7', tight, False)]


def read_session(directory: Path
                 ) -> tuple[list[tuple], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Frames (sample, frame, stamp, boxes, scores, classes, w, h) in order, and logged ids.

    The ids are (assigned_track_ids, new_track_ids) by sample.
    """
    ds = open_source(directory)
    frames, logged = [], {}
    for i, rec in enumerate(ds.records):
        a = ds.load(rec)
        meta = json.loads(str(a['metadata']))
        frames.append((i, int(np.asarray(a['frame_idx']).reshape(-1)[0]),
                       int(np.asarray(a['stamp_ns']).reshape(-1)[0]),
                       np.asarray(a['det_boxes'], np.float64), np.asarray(a['det_scores']),
                       np.asarray(a['det_class_ids']), int(meta['width']),
                       int(meta['height'])))
        logged[i] = (np.asarray(a['assigned_track_ids']).reshape(-1),
                     np.asarray(a['new_track_ids']).reshape(-1))
    frames.sort(key=lambda f: f[1])
    return frames, logged


def retrack(frames: list[tuple], cfg: TrackerConfig, backwards: bool) -> dict[int, np.ndarray]:
    """Track id of every detection in one run (-1: left unmatched), by sample."""
    trk = ByteTracker(cfg)
    end = max(f[2] for f in frames)
    out = {}
    for i, fidx, stamp, boxes, scores, cls, w, h in (frames[::-1] if backwards else frames):
        snap = trk.update(make_frame(end - stamp + 1 if backwards else stamp, boxes, scores,
                                     width=w, height=h, class_ids=cls, frame_idx=fidx))
        a = np.asarray(snap.assigned_track_ids).reshape(-1)
        out[i] = np.where(a >= 0, a, np.asarray(snap.new_track_ids).reshape(-1))
    return out


def votes(directory: Path) -> dict[tuple[int, int], tuple[float, float]]:
    """(retrack_votes, retrack_window_votes) per (sample, detection) of a logged match."""
    frames, logged = read_session(directory)
    frame_of = {f[0]: f[1] for f in frames}
    tracks: dict[int, list[tuple[int, int, int, bool]]] = {}
    for i, ids in logged.items():
        for matched, tids in zip((True, False), ids):   # a match, or the box a track began at
            for d in np.flatnonzero(tids >= 0):
                tracks.setdefault(int(tids[d]), []).append((frame_of[i], i, int(d), matched))
    others = [retrack(frames, cfg, back) for _, cfg, back in runs()]
    out = {}
    for pts in tracks.values():
        pts.sort()
        count = np.zeros(len(pts))
        for run in others:
            oid = np.array([run[i][d] for _, i, d, _ in pts])
            count[1:] += (oid[1:] != oid[:-1]) | (oid[1:] < 0)
        count[0] = np.nan
        for k, (_, i, d, matched) in enumerate(pts):
            if matched:
                seg = count[max(0, k - WINDOW):k + WINDOW + 1]
                out[(i, d)] = (count[k], float(np.nanmax(seg)) if np.isfinite(seg).any()
                               else np.nan)
    return out


def add_votes(directory: Path, pairs: dict[str, np.ndarray]) -> None:
    """Add the :data:`VOTE_KEYS` columns to one sequence's per-pair table."""
    v = votes(directory)
    for c, key in enumerate(VOTE_KEYS):
        pairs[key] = np.array([v.get((int(i), int(j)), (np.nan, np.nan))[c]
                               for i, j in zip(pairs['sample'], pairs['det'])])


def load_pairs(work: Path, seqs: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The per-pair table of every sequence plus the vote columns (cached)."""
    return boost_pairs(work, seqs, 'pairs_retrack.npz', add_votes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work', type=Path, default=Path('/tmp/label_quality'))
    parser.add_argument('--seqs', nargs='+', default=list(SEQS))
    args = parser.parse_args()
    if not (args.work / 'samples').is_dir():
        print(f'no samples under {args.work}; run bench/label_quality.py --work {args.work}')
        return 1
    t0 = time.time()
    pairs, _ = load_pairs(args.work, args.seqs)
    keep = keep_mask(pairs, pairs['det_visibility'], pairs['det_scores'],
                     np.ones(pairs['verdict'].size, bool), PRESETS['recommended'])
    print('## Re-tracking runs that disagree with a label (of 5), MOT17 train')
    print('| filter | per-frame: wrong removed | right kept | consistent: wrong removed '
          '| right kept |')
    print('|---|---:|---:|---:|---:|')
    print(row('preset `recommended`', ~keep, pairs))
    with np.errstate(invalid='ignore'):
        for key in VOTE_KEYS:
            for t in range(1, 6):
                flag = pairs[key] >= t
                print(row(f'{key} >= {t}', flag, pairs))
                print(row(f'preset or {key} >= {t}', flag | ~keep, pairs))
    print(f'\n({time.time() - t0:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
