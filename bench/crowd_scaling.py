"""Tracker time and peak memory per frame in crowds: this tree against commit 0c6d8aa.

Every (code, layout, size) runs in its own subprocess (a clean peak RSS), on the same generated
frames: ``random`` (independent uniform boxes every frame: nothing matches, every box starts a
track) and ``crowd`` (people walking, noisy boxes, 10 % missed, 10 % clutter, heavy overlap).
The canvas grows with the count so that the density stays that of a crowd. The tracker runs
with its defaults (diagnostics on, no embeddings), ``max_detections`` lifted to the count for
this tree (the old code has no cap). ``before`` is the code at 0c6d8aa, extracted with
``git archive`` into a temporary directory (fewer frames at 10,000: it is slow).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/crowd_scaling.py [--sizes 100 1000 3000 10000]
    .venv/bin/python bench/crowd_scaling.py --mot17 7 --skip-crowds   # MOT17 time vs 0c6d8aa

Prints one table: median and worst ms per update (the first update, with no tracks yet, is
left out of the median), peak RSS of the process and its growth over the RSS before the first
update. Goal: 10,000 detections in under 1 s and 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile

import numpy as np

BASE_COMMIT = '0c6d8aa'
ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from assoc_logger_ros.config import TrackerConfig
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
sys.path.insert(0, sys.argv[2])
from crowd_scaling import frames_for
layout, n, count, new = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == '1'
frames = frames_for(layout, n, count)
cfg = TrackerConfig(frame_mode=True, **({'max_detections': max(n * 2, 1)} if new else {}))
tracker = ByteTracker(cfg)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
times, tracks = [], []
for f in frames:
    t0 = time.perf_counter()
    snap = tracker.update(f)
    times.append(time.perf_counter() - t0)
    tracks.append(snap.num_tracks)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({'times': times, 'rss_mb': rss, 'rss0_mb': rss0, 'tracks': tracks,
                  'dets': [len(f) for f in frames]}))
"""


_MOT_CHILD = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import numpy as np
from assoc_logger_ros import motchallenge as mc
from assoc_logger_ros.commands.mot import track_sequence
from assoc_logger_ros.config import TrackerConfig
root, out, which, mode = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5]
if which == 'reference':     # this tree only: every measure the old code lacks switched off
    from assoc_logger_ros.tracking.reference import reference_config
    cfg = reference_config(frame_mode=(mode == 'frame'))
else:
    cfg = TrackerConfig(frame_mode=(mode == 'frame'))
seqs = ('MOT17-02', 'MOT17-04', 'MOT17-05', 'MOT17-09', 'MOT17-10', 'MOT17-11', 'MOT17-13')
times = []
out.mkdir(parents=True, exist_ok=True)
for seq in seqs:
    info = mc.read_seqinfo(root / seq)
    res = track_sequence(root / seq, root / seq / 'det/yolox_x_ablation.txt', cfg,
                         first_frame=info.half_val_first)
    mc.write_results(out / f'{seq}.txt', res.rows)
    times.append(res.update_s)
print(float(np.median(np.concatenate(times))) * 1e3)
"""

# (row, tree, config) per mode: the code at BASE_COMMIT with its defaults, this tree with
# every later measure off (the same decisions: its result files must equal the old ones), and
# this tree's defaults
_MOT_ROWS = (('before', 'old', 'defaults'), ('reference', 'new', 'reference'),
             ('defaults', 'new', 'defaults'))


def mot17(old: Path, data: Path, rounds: int) -> None:
    """MOT17 half-val: median ms per update, old code vs this tree (interleaved subprocesses).

    Rows: the old code's defaults, this tree's reference settings and this tree's defaults;
    also whether the reference settings reproduce the old code's result files.
    """
    root = data / 'MOT17' / 'train'
    if not root.is_dir():
        print(f'MOT17 data not found at {root}; set ASSOC_BENCH_DATA')
        return
    env = {**os.environ, 'OPENBLAS_NUM_THREADS': '1'}
    trees = {'old': old, 'new': ROOT}
    modes = ('time', 'frame')
    med: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix='crowd_mot_') as tmp:
        for _ in range(rounds):
            for mode in modes:
                for row, tree, which in _MOT_ROWS:
                    proc = subprocess.run(
                        [sys.executable, '-c', _MOT_CHILD, str(trees[tree]), str(root),
                         str(Path(tmp) / mode / row), which, mode],
                        capture_output=True, text=True, env=env, check=True)
                    med.setdefault((mode, row), []).append(float(proc.stdout.split()[-1]))
        same = {mode: all((Path(tmp) / mode / 'before' / f.name).read_bytes() == f.read_bytes()
                          for f in (Path(tmp) / mode / 'reference').iterdir())
                for mode in modes}
    print(f'\nMOT17 half-val, tracker median ms per update ({rounds} interleaved rounds, '
          f'median of the per-round medians); before = {BASE_COMMIT} with its defaults')
    print('| mode | before ms | reference ms | defaults ms | defaults / before '
          '| defaults / reference | reference files = before |')
    print('|---|---:|---:|---:|---:|---:|---|')
    for mode in modes:
        b, r, d = (float(np.median(med[(mode, row)])) for row, _, _ in _MOT_ROWS)
        print(f'| {mode} | {b:.3f} | {r:.3f} | {d:.3f} | {d / b:.2f} | {d / r:.2f} | '
              f'{"yes" if same[mode] else "NO"} |')
    for (mode, row), vals in med.items():
        print(f'  per round, {mode} {row}:', ' '.join(f'{v:.3f}' for v in vals))


def frames_for(layout: str, n: int, count: int, seed: int = 0) -> list:
    """``count`` frames of about ``n`` detections (deterministic for a given seed)."""
    from assoc_logger_ros.frame import make_frame
    rng = np.random.default_rng(seed + n)
    area = n * (8000.0 if layout == 'random' else 3000.0)
    w = float(np.sqrt(area * 16 / 9))
    h = area / w
    out = []
    if layout == 'random':
        for f in range(count):
            xy = rng.uniform([0, 0], [w, h], (n, 2))
            wh = rng.uniform([15, 40], [45, 110], (n, 2))
            out.append(make_frame(f * 33_333_333, np.c_[xy, xy + wh],
                                  rng.uniform(0.05, 1.0, n), width=int(w), height=int(h)))
        return out
    people = n                      # 90 % seen + 10 % clutter: about n boxes
    pos = rng.uniform([0, 0], [w, h], (people, 2))
    size = rng.uniform([15, 40], [45, 110], (people, 2))
    vel = rng.normal(0, 2.0, (people, 2))
    for f in range(count):
        pos += vel
        seen = rng.random(people) > 0.1
        c = pos[seen] + rng.normal(0, 1.5, (int(seen.sum()), 2))
        s = size[seen] * rng.uniform(0.9, 1.1, (int(seen.sum()), 1))
        k = max(n // 10, 1)
        cl = rng.uniform([0, 0], [w, h], (k, 2))
        boxes = np.r_[np.c_[c - s / 2, c + s / 2], np.c_[cl, cl + rng.uniform(10, 80, (k, 2))]]
        scores = np.r_[rng.uniform(0.3, 1.0, int(seen.sum())), rng.uniform(0.05, 0.7, k)]
        out.append(make_frame(f * 33_333_333, boxes, scores, width=int(w), height=int(h)))
    return out


def run_one(tree: Path, layout: str, n: int, count: int, new: bool, timeout: float
            ) -> dict | None:
    env = {**os.environ, 'OPENBLAS_NUM_THREADS': '1', 'PYTHONPATH': str(tree)}
    try:
        proc = subprocess.run(
            [sys.executable, '-c', _CHILD, str(tree), str(ROOT / 'bench'), layout, str(n),
             str(count), '1' if new else '0'],
            capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def frames_at(n: int, before: bool) -> int:
    if n >= 10000:
        return 4 if before else 8
    if n >= 3000:
        return 6 if before else 12
    return 20


def _cell(r: dict | None) -> tuple[str, str, str, str]:
    if r is None:
        return 'n/a', '-', '-', '-'
    ms = 1e3 * np.asarray(r['times'])
    rest = ms[1:] if ms.size > 1 else ms
    return (f'{np.median(rest):.1f}', f'{ms.max():.1f}', f'{r["rss_mb"]:.0f}',
            f'{r["rss_mb"] - r["rss0_mb"]:.0f}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', type=int, default=[100, 1000, 3000, 10000])
    parser.add_argument('--layouts', nargs='+', default=['random', 'crowd'],
                        choices=['random', 'crowd'])
    parser.add_argument('--timeout', type=float, default=900.0,
                        help='seconds per subprocess (a run past it, or that failed, shows "n/a")')
    parser.add_argument('--no-before', action='store_true', help='only this tree')
    parser.add_argument('--mot17', type=int, default=0, metavar='ROUNDS',
                        help='also time MOT17 half-val before/after (ROUNDS interleaved runs) '
                        'and compare the result files')
    parser.add_argument('--data', type=Path, default=Path(os.environ.get(
        'ASSOC_BENCH_DATA', ROOT.parent / 'shared' / 'bench-data')))
    parser.add_argument('--skip-crowds', action='store_true', help='only the MOT17 part')
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix='crowd_base_') as tmp:
        old = Path(tmp)
        if not args.no_before:
            arch = subprocess.run(['git', '-C', str(ROOT), 'archive', BASE_COMMIT],
                                  capture_output=True, check=True).stdout
            subprocess.run(['tar', '-x', '-C', str(old)], input=arch, check=True)
        if args.mot17 and not args.no_before:
            mot17(old, args.data, args.mot17)
        for layout in ([] if args.skip_crowds else args.layouts):
            for n in args.sizes:
                after = run_one(ROOT, layout, n, frames_at(n, False), True, args.timeout)
                before = (None if args.no_before else
                          run_one(old, layout, n, frames_at(n, True), False, args.timeout))
                a, b = _cell(after), _cell(before)
                ratio = '-'
                if after and before:
                    ma = np.median(np.asarray(after['times'])[1:])
                    mb = np.median(np.asarray(before['times'])[1:])
                    ratio = f'{mb / ma:.1f}x'
                t = max(after['tracks']) if after else '-'
                d = int(np.mean(after['dets'])) if after else '-'
                rows.append((layout, str(n), str(d), str(t), *b, *a, ratio))
                print('  '.join(rows[-1]), file=sys.stderr, flush=True)
    head = ('layout', 'N', 'dets/frame', 'max tracks', 'before med ms', 'before max ms',
            'before RSS MB', 'before +MB', 'after med ms', 'after max ms', 'after RSS MB',
            'after +MB', 'speed-up')
    if not rows:
        return 0
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print(f'tracker update per frame, before = {BASE_COMMIT}, after = this tree '
          '(median over updates 2.., peak RSS of the process, +MB over the RSS before tracking)')
    print('  '.join(h.rjust(w) for h, w in zip(head, widths)))
    for r in rows:
        print('  '.join(c.rjust(w) for c, w in zip(r, widths)))
    goal = [r for r in rows if r[1] == '10000']
    if goal:
        ok = all(r[8] not in ('n/a', '-') and float(r[9]) < 1000 and float(r[10]) < 1024
                 for r in goal)
        print('goal (10,000 detections: every update < 1 s, peak RSS < 1 GB):',
              'met' if ok else 'NOT met')
    return 0


if __name__ == '__main__':
    sys.exit(main())
