"""Appearance memory ablation on generated scenes: IDF1 / IDSW / MOTA with and without memory.

Each seed is one 300-frame scene (walkers crossing, groups, pillars, fast walkers, noisy
per-identity embeddings contaminated by occluders). The same detections go through ByteTracker
with ``appear_memory_enable`` off and on; scores come from ``assoc_logger_ros.sim.metrics``
against the scene's exact ground truth (objects at least 20 % visible). Also prints the median
update time per frame for both, measured in the same run.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. nice python bench/memory_ablation.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.sim.metrics import FrameBoxes, MotMetrics, evaluate
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

GT_MIN_VISIBILITY = 0.2


def run(scene, memory: bool, buffer_s: float) -> tuple[MotMetrics, np.ndarray, int]:
    from assoc_logger_ros.tracking.byte_tracker import ByteTracker

    tracker = ByteTracker(TrackerConfig(track_buffer_s=buffer_s),
                          MemoryConfig(appear_memory_enable=memory))
    frames = scene.to_frames()
    gt, pred, times = [], [], []
    for sf, frame in zip(scene.frames, frames):
        t0 = time.perf_counter()
        snap = tracker.update(frame)
        times.append(time.perf_counter() - t0)
        keep = sf.obj_visibility >= GT_MIN_VISIBILITY
        gt.append(FrameBoxes.of(sf.obj_ids[keep], sf.obj_boxes[keep]))
        pred.append(FrameBoxes.of(snap.output_track_ids, snap.output_boxes))
    return evaluate(gt, pred), np.asarray(times), tracker.est_id_switches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=5)
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--buffers', type=float, nargs='+', default=[1.0, 3.0])
    args = parser.parse_args()
    print('| buffer s | seed | IDF1 off | IDF1 on | IDSW off | IDSW on | MOTA off | MOTA on |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|')
    summary = []
    times = {False: [], True: []}
    for buf in args.buffers:
        rows = []
        for seed in range(args.seeds):
            scene = generate_scene(SceneConfig(seed=seed, num_frames=args.frames))
            off, t_off, _ = run(scene, False, buf)
            on, t_on, _ = run(scene, True, buf)
            times[False].append(t_off)
            times[True].append(t_on)
            rows.append((off, on))
            print(f'| {buf:g} | {seed} | {100 * off.idf1:.1f} | {100 * on.idf1:.1f} | '
                  f'{off.idsw} | {on.idsw} | {100 * off.mota:.1f} | {100 * on.mota:.1f} |')
        summary.append((buf, rows))
    print()
    print('| buffer s | mean IDF1 off | mean IDF1 on | seeds improved | IDSW off | IDSW on |')
    print('|---:|---:|---:|---:|---:|---:|')
    for buf, rows in summary:
        f_off = np.mean([r[0].idf1 for r in rows]) * 100
        f_on = np.mean([r[1].idf1 for r in rows]) * 100
        better = sum(r[1].idf1 > r[0].idf1 for r in rows)
        print(f'| {buf:g} | {f_off:.1f} | {f_on:.1f} | {better}/{len(rows)} | '
              f'{sum(r[0].idsw for r in rows)} | {sum(r[1].idsw for r in rows)} |')
    m_off = np.median(np.concatenate(times[False])) * 1e3
    m_on = np.median(np.concatenate(times[True])) * 1e3
    print()
    print(f'median update time per frame: memory off {m_off:.3f} ms, on {m_on:.3f} ms '
          f'(ratio {m_on / m_off:.2f})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
