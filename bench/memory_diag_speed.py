"""Per-call cost of the switch estimator, the appearance memory and box visibility in the tracker.

Drives :class:`ByteTracker` (default settings, ``diag`` on, appearance memory on) with synthetic
crowds of N people walking at random on a 1920x1080 image (128-d embeddings, misses, false
positives, people crossing), and times every call of ``SwitchEstimator.observe``,
``AppearanceMemory.distance`` / ``update``, ``visibility_from_boxes`` and the whole
``ByteTracker.update``. The baseline measured in the same run is the whole update with ``diag``
off (what the estimator adds) and with neither ``diag`` nor embeddings (bare ByteTrack). Each
configuration runs ``--rounds`` times, interleaved; the round with the lowest median is kept
(the machine is shared: the minimum is the least disturbed).

    export OPENBLAS_NUM_THREADS=1 PYTHONPATH=.
    nice .venv/bin/python bench/memory_diag_speed.py [--tracks 10 50 100 200] [--frames 200]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import time

import numpy as np

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.frame import Frame, make_frame

WIDTH, HEIGHT, FPS = 1920, 1080, 30.0


def random_walk_frames(n: int, num_frames: int, *, seed: int = 0, emb_dim: int = 128,
                       miss_rate: float = 0.05, false_positives: float = 0.02) -> list[Frame]:
    """``num_frames`` frames of ``n`` people walking at random (bouncing off the borders).

    Each person has a fixed identity embedding plus noise; ``miss_rate`` of the detections are
    missed (tracks get lost and found again, new tracks start), ``false_positives * n`` false
    detections per frame have low scores and random embeddings. People walk at 0.3-2 box
    heights per second and turn at random, so they cross and overlap.
    """
    rng = np.random.default_rng(seed)
    h = rng.uniform(60, 160, n)
    w = h * rng.uniform(0.35, 0.45, n)
    pos = np.stack([rng.uniform(w, WIDTH - w), rng.uniform(h, HEIGHT)], 1)   # foot point
    speed = rng.uniform(0.3, 2.0, n) * h
    heading = rng.uniform(0, 2 * np.pi, n)
    ident = rng.normal(size=(n, emb_dim)).astype(np.float32)
    ident /= np.linalg.norm(ident, axis=1, keepdims=True)
    frames = []
    for k in range(num_frames):
        heading += rng.normal(0, 0.15, n)
        step = speed[:, None] / FPS * np.stack([np.cos(heading), 0.4 * np.sin(heading)], 1)
        pos += step
        out_x = (pos[:, 0] < w) | (pos[:, 0] > WIDTH - w)
        out_y = (pos[:, 1] < h) | (pos[:, 1] > HEIGHT)
        heading[out_x] = np.pi - heading[out_x]
        heading[out_y] = -heading[out_y]
        pos[:, 0] = np.clip(pos[:, 0], w, WIDTH - w)
        pos[:, 1] = np.clip(pos[:, 1], h, HEIGHT)
        seen = rng.random(n) >= miss_rate
        boxes = np.stack([pos[:, 0] - w / 2, pos[:, 1] - h, pos[:, 0] + w / 2, pos[:, 1]], 1)
        boxes = boxes + rng.normal(0, 0.03, (n, 1)) * h[:, None]
        scores = np.clip(rng.normal(0.8, 0.1, n), 0.05, 1.0)
        emb = ident + rng.normal(0, 0.35 / np.sqrt(emb_dim), (n, emb_dim)).astype(np.float32)
        n_fp = rng.poisson(false_positives * n)
        fp_xy = np.stack([rng.uniform(0, WIDTH - 50, n_fp), rng.uniform(0, HEIGHT - 120, n_fp)], 1)
        fp = np.concatenate([fp_xy, fp_xy + rng.uniform(30, 120, (n_fp, 2))], 1)
        frames.append(make_frame(
            int(1_700_000_000e9) + int(round(k * 1e9 / FPS)),
            np.concatenate([boxes[seen], fp]),
            np.concatenate([scores[seen], rng.uniform(0.1, 0.5, n_fp)]),
            width=WIDTH, height=HEIGHT, frame_idx=k,
            embeddings=np.concatenate([emb[seen],
                                       rng.normal(size=(n_fp, emb_dim)).astype(np.float32)]),
            gt_ids=np.concatenate([np.flatnonzero(seen), np.full(n_fp, -1)])))
    return frames


class _Timer:
    """Wraps a callable and records the wall time of each call."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.times: list[float] = []

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        self.times.append(time.perf_counter() - t0)
        return out


def run(frames: list[Frame], diag: bool, embeddings: bool, warmup: int) -> dict[str, list[float]]:
    """Track ``frames``; per-call times (s) of each timed function after ``warmup`` frames."""
    from assoc_logger_ros.tracking import byte_tracker

    tracker = byte_tracker.ByteTracker(replace(TrackerConfig(), diag=diag), MemoryConfig())
    timers = {'observe': _Timer(tracker.diagnostics.observe),
              'memory.distance': _Timer(tracker.memory.distance),
              'memory.update': _Timer(tracker.memory.update),
              'visibility_from_boxes': _Timer(byte_tracker.visibility_from_boxes)}
    tracker.diagnostics.observe = timers['observe']
    tracker.memory.distance = timers['memory.distance']
    tracker.memory.update = timers['memory.update']
    vis_orig = byte_tracker.visibility_from_boxes
    byte_tracker.visibility_from_boxes = timers['visibility_from_boxes']
    update = _Timer(tracker.update)
    try:
        for k, frame in enumerate(frames):
            if not embeddings:
                frame = replace(frame, embeddings=None, embedding_valid=None)
            if k == warmup:
                for t in timers.values():
                    t.times.clear()
                update.times.clear()
            update(frame)
    finally:
        byte_tracker.visibility_from_boxes = vis_orig
    out = {name: t.times for name, t in timers.items()}
    out['update'] = update.times
    out['tracks'] = [len(tracker.tracks())]
    return out


def _stat(rounds: list[dict[str, list[float]]], name: str) -> str:
    """Median / p99 ms of the round with the lowest median."""
    runs = [r[name] for r in rounds if r[name]]
    if not runs:
        return '-'
    ms = np.asarray(min(runs, key=np.median)) * 1e3
    return f'{np.median(ms):.3f} / {np.percentile(ms, 99):.3f}'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tracks', type=int, nargs='+', default=[10, 50, 100, 200])
    parser.add_argument('--frames', type=int, default=200)
    parser.add_argument('--warmup', type=int, default=30)
    parser.add_argument('--rounds', type=int, default=2)
    args = parser.parse_args()
    print('ms per call (median / p99), after a warm-up of', args.warmup, 'frames; '
          'update = whole ByteTracker.update')
    print('| people | tracks | observe | memory.distance | memory.update | '
          'visibility_from_boxes | update | update, diag off | update, no diag, no emb |')
    print('|---:|---:|---|---|---|---|---|---|---|')
    for n in args.tracks:
        frames = random_walk_frames(n, args.frames)
        runs: dict[str, list[dict[str, list[float]]]] = {'on': [], 'off': [], 'bare': []}
        for _ in range(args.rounds):
            runs['on'].append(run(frames, True, True, args.warmup))
            runs['off'].append(run(frames, False, True, args.warmup))
            runs['bare'].append(run(frames, False, False, args.warmup))
        on = runs['on']
        print(f'| {n} | {on[0]["tracks"][0]} | {_stat(on, "observe")} | '
              f'{_stat(on, "memory.distance")} | {_stat(on, "memory.update")} | '
              f'{_stat(on, "visibility_from_boxes")} | {_stat(on, "update")} | '
              f'{_stat(runs["off"], "update")} | {_stat(runs["bare"], "update")} |', flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
