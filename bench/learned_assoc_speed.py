"""Per-frame cost of the learned association model at 50 tracks x 50 detections, one core.

Runs the same frames through a tracker without the model and one with it (blend 0.5), in one
process, and times every update call (CPU time of the thread); also the model call alone
(onnxruntime, one thread) with every pair eligible (a gated model's worst case). Several models:
one row pair each, against the same tracker-alone run. The scene: 50 objects on a grid
drifting with noise, every object detected every frame with a high score, so stage 1 sees
50 x 50 each frame.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/learned_assoc_speed.py MODEL_DIR...
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from assoc_logger_ros.config import TrackerConfig
from assoc_logger_ros.frame import make_frame
from assoc_logger_ros.tracking.byte_tracker import ByteTracker


def frames(n_obj: int, n_frames: int, seed: int = 0):
    """Frames of ``n_obj`` drifting boxes (all detected, score 0.9)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_obj)))
    xy = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)[:n_obj]
    pos = 40.0 + xy * np.array([180.0, 100.0])
    vel = rng.normal(0, 1.0, (n_obj, 2))
    for k in range(n_frames):
        pos = pos + vel + rng.normal(0, 0.5, pos.shape)
        boxes = np.concatenate([pos, pos + np.array([40.0, 80.0])], axis=1)
        yield make_frame(k * 33_333_333, boxes, np.full(n_obj, 0.9), frame_idx=k,
                         width=1920, height=1080)


def timed(cfg: TrackerConfig, n_obj: int, n_frames: int) -> tuple[np.ndarray, ByteTracker]:
    """CPU time of each update call (s) after a 10-frame warm-up."""
    tracker = ByteTracker(cfg)
    out = []
    for frame in frames(n_obj, n_frames + 10):
        t0 = time.thread_time()
        tracker.update(frame)
        out.append(time.thread_time() - t0)
    return np.array(out[10:]), tracker


def model_alone(lc, n: int, n_frames: int) -> np.ndarray:
    """CPU time (s) of the model call alone on random rows, EVERY pair eligible (worst case)."""
    k = lc.embed_dim
    rng = np.random.default_rng(1)
    tf, df = rng.random((n, 10), np.float32), rng.random((n, 8), np.float32)
    cost, mask = rng.random((n, n), np.float32), np.ones((n, n), np.float32)
    emb = np.zeros((n, k), np.float32)
    out = []
    for _ in range(n_frames):
        t0 = time.thread_time()
        lc.probabilities(tf, emb, df, emb, cost, mask)
        out.append(time.thread_time() - t0)
    return np.array(out)


def main() -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('models', nargs='+', help='model folders (model.onnx + model.json)')
    parser.add_argument('--objects', type=int, default=50)
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--rounds', type=int, default=3,
                        help='interleaved rounds (tracker alone, then each model), pooled: a '
                        'busy machine drifts between runs')
    args = parser.parse_args()
    n = args.objects
    ms: dict[str, list] = {'tracker alone': []}
    tags: dict[str, str] = {}
    for _ in range(args.rounds):
        t_off, _ = timed(TrackerConfig(), n, args.frames)
        ms['tracker alone'].append(1e3 * t_off)
        for model in args.models:
            on = TrackerConfig(transformer_assoc_enable=True, transformer_assoc_weights=model,
                               transformer_assoc_weight=0.5)
            t_on, tr = timed(on, n, args.frames)
            lc = tr.learned_cost
            assert lc is not None and lc.failures == 0 and lc.calls >= args.frames
            kind = 'gated' if lc.card['architecture'].get('gated') else 'dense'
            tag = tags.setdefault(model, f'{model} ({kind}, K={lc.embed_dim})')
            ms.setdefault(f'tracker + {tag} (w=0.5)', []).append(1e3 * t_on)
            ms.setdefault(f'{tag} call alone, all pairs eligible', []).append(
                1e3 * model_alone(lc, n, args.frames))
    ms = {k: np.concatenate(v) for k, v in ms.items()}
    extra = {tag: np.median(ms[f'tracker + {tag} (w=0.5)']) - np.median(ms['tracker alone'])
             for tag in tags.values()}
    print(f'{n} tracks x {n} detections, {args.rounds} x {args.frames} frames, CPU time per '
          'call (one thread)')
    print('| run | median ms | p90 ms | p99 ms |')
    print('|---|---:|---:|---:|')
    for name, v in ms.items():
        print(f'| {name} | {np.median(v):.3f} | {np.percentile(v, 90):.3f} | '
              f'{np.percentile(v, 99):.3f} |')
    for tag, e in extra.items():
        print(f'{tag}: median extra per frame {e:.3f} ms (goal <= 2 ms): '
              f'{"met" if e <= 2.0 else "NOT met"}; ratio '
              f'{(e + np.median(ms["tracker alone"])) / np.median(ms["tracker alone"]):.2f}x')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
