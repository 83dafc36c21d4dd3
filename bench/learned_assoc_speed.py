"""Per-frame cost of the learned association model at 50 tracks x 50 detections, one core.

Runs the same frames through a tracker without the model and one with it (blend 0.5), in one
process, and times every update call (CPU time of the thread); also the model call alone
(onnxruntime, one thread). The scene: 50 objects on a grid drifting with noise, every object
detected every frame with a high score, so stage 1 sees 50 x 50 each frame.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/learned_assoc_speed.py MODEL_DIR
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


def main() -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('model', help='model folder (model.onnx + model.json)')
    parser.add_argument('--objects', type=int, default=50)
    parser.add_argument('--frames', type=int, default=300)
    args = parser.parse_args()
    base = TrackerConfig()
    on = TrackerConfig(transformer_assoc_enable=True, transformer_assoc_weights=args.model,
                       transformer_assoc_weight=0.5)
    t_off, _ = timed(base, args.objects, args.frames)
    t_on, tr = timed(on, args.objects, args.frames)
    lc = tr.learned_cost
    assert lc is not None and lc.failures == 0 and lc.calls >= args.frames
    k, n = lc.embed_dim, args.objects
    rng = np.random.default_rng(1)
    tf, df = rng.random((n, 10), np.float32), rng.random((n, 8), np.float32)
    cost, mask = rng.random((n, n), np.float32), np.ones((n, n), np.float32)
    model_s = []
    for _ in range(args.frames):
        t0 = time.thread_time()
        lc.probabilities(tf, np.zeros((n, k), np.float32), df, np.zeros((n, k), np.float32),
                         cost, mask)
        model_s.append(time.thread_time() - t0)
    ms = {name: 1e3 * np.asarray(v) for name, v in
          (('tracker alone', t_off), ('tracker + model (w=0.5)', t_on),
           ('model call alone', model_s))}
    print(f'{n} tracks x {n} detections, {args.frames} frames, embed_dim {k}, CPU time per call')
    print('| run | median ms | p90 ms | p99 ms |')
    print('|---|---:|---:|---:|')
    for name, v in ms.items():
        print(f'| {name} | {np.median(v):.3f} | {np.percentile(v, 90):.3f} | '
              f'{np.percentile(v, 99):.3f} |')
    extra = np.median(ms['tracker + model (w=0.5)']) - np.median(ms['tracker alone'])
    print(f'median extra per frame: {extra:.3f} ms (goal <= 2 ms): '
          f'{"met" if extra <= 2.0 else "NOT met"}; ratio '
          f'{np.median(ms["tracker + model (w=0.5)"]) / np.median(ms["tracker alone"]):.2f}x')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
