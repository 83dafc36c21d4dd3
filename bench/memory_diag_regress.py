"""Regression check for speed work on the tracker: record per-frame outputs, compare later.

An optimisation of the switch estimator, the appearance memory or box visibility must not
change what they compute. Record before the change, check after it:

    export OPENBLAS_NUM_THREADS=1 PYTHONPATH=.
    nice .venv/bin/python bench/memory_diag_regress.py --record /tmp/before.json
    ... change the code ...
    nice .venv/bin/python bench/memory_diag_regress.py --check /tmp/before.json

Runs ByteTracker (default settings, ``diag`` and memory on) on generated scenes with and without
embeddings (one with dropped frames and stamp jitter, one crowded), synthetic crowds of 100 and
200 people (``bench/memory_diag_speed.py``) and, when ``../shared/bench-data`` exists, the
MOT17 half-val sequences. Per frame it keeps the estimated switch count, suspected IDs and
event pairs of ``SwitchEstimator.observe`` and a digest of the tracker's outputs (output IDs and
boxes, assignments, cost matrix, track embeddings). ``--check`` lists the first differing
frames per sequence; exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import hashlib
import json
import os
from pathlib import Path
import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_diag_speed import random_walk_frames  # noqa: E402

SEQS = ('MOT17-02', 'MOT17-04', 'MOT17-05', 'MOT17-09', 'MOT17-10', 'MOT17-11', 'MOT17-13')


def default_data() -> Path:
    env = os.environ.get('ASSOC_BENCH_DATA')
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / 'shared' / 'bench-data'


def datasets(root: Path):
    """(name, frames) pairs; MOT17 only when present."""
    from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

    for seed in (0, 1, 2):
        scene = generate_scene(SceneConfig(seed=seed))
        yield f'scene{seed}-emb', scene.to_frames(with_embeddings=True)
        yield f'scene{seed}-boxes', scene.to_frames(with_embeddings=False)
    scene = generate_scene(SceneConfig(seed=4, drop_rate=0.1, stamp_jitter=0.2))
    yield 'scene4-jitter-emb', scene.to_frames(with_embeddings=True)
    scene = generate_scene(SceneConfig(seed=5, num_walkers=40, width=1280, height=720))
    yield 'scene5-crowd-emb', scene.to_frames(with_embeddings=True)
    yield 'walk100-emb', random_walk_frames(100, 200, seed=1)
    yield 'walk100-boxes', [replace(f, embeddings=None, embedding_valid=None)
                            for f in random_walk_frames(100, 200, seed=2)]
    yield 'walk200-emb', random_walk_frames(200, 100, seed=3)
    mot = root / 'MOT17' / 'train'
    if mot.is_dir():
        from assoc_logger_ros import motchallenge as mc

        for seq in SEQS:
            info = mc.read_seqinfo(mot / seq)
            yield seq, list(mc.iter_frames(mot / seq, mot / seq / 'det/yolox_x_ablation.txt',
                                           first_frame=info.half_val_first, info=info))


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def track(frames) -> list[list]:
    """Per frame: [count, suspected IDs, event pairs, output digest]."""
    from assoc_logger_ros.config import MemoryConfig, TrackerConfig
    from assoc_logger_ros.tracking.byte_tracker import ByteTracker

    tracker = ByteTracker(TrackerConfig(), MemoryConfig())
    reports = []
    observe = tracker.diagnostics.observe

    def spy(*args, **kwargs):
        rep = observe(*args, **kwargs)
        reports.append(rep)
        return rep

    tracker.diagnostics.observe = spy
    out = []
    for frame in frames:
        s = tracker.update(frame)
        rep = reports[-1]
        out.append([int(s.est_id_switches_frame), rep.suspected_ids.tolist(),
                    [list(p) for p in rep.pairs],
                    _digest(s.output_track_ids, s.output_boxes, s.assigned_track_ids,
                            s.cost_matrix, s.track_embeddings)])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument('--record', type=Path, help='write the per-frame outputs to this file')
    mode.add_argument('--check', type=Path, help='compare with a recording')
    parser.add_argument('--data', type=Path, default=default_data())
    args = parser.parse_args()
    ref = json.loads(args.check.read_text()) if args.check else None
    result, bad = {}, 0
    for name, frames in datasets(args.data):
        rows = track(frames)
        result[name] = rows
        est = sum(r[0] for r in rows)
        if ref is None:
            print(f'{name}: {len(rows)} frames, est switches {est}', flush=True)
            continue
        old = ref.get(name)
        if old is None:
            print(f'{name}: not in the recording')
            continue
        diff = [k for k, (a, b) in enumerate(zip(old, rows)) if a != b]
        diff += list(range(min(len(old), len(rows)), max(len(old), len(rows))))
        bad += len(diff)
        print(f'{name}: {len(rows)} frames, est switches {sum(r[0] for r in old)} -> {est}, '
              f'frames differing: {len(diff)}' + (f' (first: {diff[:5]})' if diff else ''),
              flush=True)
    if args.record:
        args.record.write_text(json.dumps(result))
        print(f'recorded {len(result)} sequences to {args.record}')
        return 0
    print('identical' if bad == 0 else f'{bad} frames differ')
    return int(bad > 0)


if __name__ == '__main__':
    raise SystemExit(main())
