"""Learned association on generated scenes with appearance: IDF1 against the appearance memory.

Trains the default recipe on samples of training seeds (``--train-seeds``, memory on, 64-d
noisy embeddings), then tracks held-out seeds (``--seeds``) four ways in one run: memory off,
the hand-tuned appearance memory (the default), and the memory plus the model at each blend
weight. Scores from ``assoc_logger_ros.sim.metrics`` (objects at least 20 % visible). Needs the
training extras.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. nice .venv/bin/python bench/learned_assoc_scenes.py
"""

from __future__ import annotations

import argparse
from pathlib import Path
import tempfile
import time

import numpy as np

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.sim.metrics import FrameBoxes, evaluate
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.training.scene_samples import write_scene_samples
from assoc_logger_ros.training.train import TrainConfig, train

GT_MIN_VISIBILITY = 0.2


def track(scene, tracker_cfg: TrackerConfig, memory: bool):
    """IDF1, IDSW, MOTA of one scene."""
    tracker = ByteTracker(tracker_cfg, MemoryConfig(appear_memory_enable=memory))
    gt, pred = [], []
    for sf, frame in zip(scene.frames, scene.to_frames()):
        snap = tracker.update(frame)
        keep = sf.obj_visibility >= GT_MIN_VISIBILITY
        gt.append(FrameBoxes.of(sf.obj_ids[keep], sf.obj_boxes[keep]))
        pred.append(FrameBoxes.of(snap.output_track_ids, snap.output_boxes))
    return evaluate(gt, pred)


def main() -> int:
    """Train, track, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--train-seeds', type=int, nargs='+', default=list(range(100, 106)))
    parser.add_argument('--seeds', type=int, nargs='+', default=list(range(5)))
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--weights', type=float, nargs='+', default=[0.25, 0.5])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='assoc_scenes_') as tmp:
        t0 = time.perf_counter()
        write_scene_samples(Path(tmp) / 'samples', args.train_seeds, num_frames=args.frames,
                            embed_dim=64)
        t1 = time.perf_counter()
        card = train(TrainConfig(data=[str(Path(tmp) / 'samples')], out=str(Path(tmp) / 'm'),
                                 progress=False), log=lambda line: None)
        t2 = time.perf_counter()
        best = card['metrics']['best_epoch']
        print(f'samples {t1 - t0:.0f} s, training {t2 - t1:.0f} s; val det acc '
              f'{best["det_acc"]:.4f} (classical cost {best["classical_det_acc"]:.4f})')
        runs = {'memory off': (TrackerConfig(), False), 'memory on (default)':
                (TrackerConfig(), True)}
        for w in args.weights:
            runs[f'memory + model w={w:g}'] = (TrackerConfig(
                transformer_assoc_enable=True, transformer_assoc_weights=str(Path(tmp) / 'm'),
                transformer_assoc_weight=w), True)
        res = {name: [] for name in runs}
        for seed in args.seeds:
            scene = generate_scene(SceneConfig(seed=seed, num_frames=args.frames))
            for name, (cfg, mem) in runs.items():
                res[name].append(track(scene, cfg, mem))
    print(f'held-out seeds {args.seeds}, {args.frames} frames each; mean over seeds')
    print('| tracker | IDF1 | IDSW (sum) | MOTA | IDF1 per seed |')
    print('|---|---:|---:|---:|---|')
    for name, ms in res.items():
        print(f'| {name} | {100 * np.mean([m.idf1 for m in ms]):.2f} | '
              f'{sum(m.idsw for m in ms)} | {100 * np.mean([m.mota for m in ms]):.2f} | '
              + ' '.join(f'{100 * m.idf1:.1f}' for m in ms) + ' |')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
