"""How well ``est_id_switches`` (no ground truth) follows the true ID switch count.

Runs ByteTracker (default settings, appearance memory and ``diag`` on) on
* generated scenes, with embeddings and without (boxes-only evidence), and
* MOT17 half-val (``../shared/bench-data``, the protocol's 7 sequences and YOLOX-X detections;
  no embeddings there, so the estimator has only boxes: reappearances near a lost track, jumps,
  swaps),
and compares per sequence the estimate with the true IDSW from ``assoc_logger_ros.sim.metrics``
(CLEAR matching at IoU 0.5 against pedestrian ground truth, conf 1 and class 1; without
TrackEval's distractor preprocessing, so absolute IDSW differ a little from TrackEval's).
Also reports event precision/recall: an estimated event is confirmed when a true switch involving
one of its track IDs happens within +-15 frames, and a true switch is found when an estimated
event involves its old or new track ID within +-15 frames.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. nice python bench/memory_diag_vs_idsw.py [--data DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from assoc_logger_ros.config import MemoryConfig, TrackerConfig
from assoc_logger_ros.sim.metrics import FrameBoxes, evaluate
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

SEQS = ('MOT17-02', 'MOT17-04', 'MOT17-05', 'MOT17-09', 'MOT17-10', 'MOT17-11', 'MOT17-13')
DET = 'det/yolox_x_ablation.txt'
WINDOW = 15


def default_data() -> Path:
    env = os.environ.get('ASSOC_BENCH_DATA')
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / 'shared' / 'bench-data'


def track(frames, gt_of):
    """Run the tracker; returns (metrics, est total, est events [(k, ids)], by_kind)."""
    from assoc_logger_ros.tracking.byte_tracker import ByteTracker

    tracker = ByteTracker(TrackerConfig(), MemoryConfig())
    events: list[tuple[int, set[int]]] = []
    observe = tracker.diagnostics.observe
    k_now = [0]

    def spy(*args, **kwargs):
        rep = observe(*args, **kwargs)
        for pair in rep.pairs:
            events.append((k_now[0], {i for i in pair if i >= 0}))
        return rep

    tracker.diagnostics.observe = spy
    gt, pred = [], []
    for k, frame in enumerate(frames):
        k_now[0] = k
        snap = tracker.update(frame)
        keep = _output_filter(snap.output_boxes)
        pred.append(FrameBoxes.of(snap.output_track_ids[keep], snap.output_boxes[keep]))
        gt.append(gt_of(k, frame))
    m = evaluate(gt, pred)
    return m, tracker.est_id_switches, events, dict(tracker.diagnostics.by_kind)


def _output_filter(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    with np.errstate(divide='ignore', invalid='ignore'):
        return (w * h > 100) & ~(w / h > 1.6)


def precision_recall(m, events) -> tuple[int, int]:
    """(confirmed estimated events, found true switches)."""
    true = [(k, {old, new}) for k, _, old, new in m.idsw_events]
    confirmed = sum(any(abs(k - tk) <= WINDOW and ids & tids for tk, tids in true)
                    for k, ids in events)
    found = sum(any(abs(k - ek) <= WINDOW and tids & ids for ek, ids in events)
                for k, tids in true)
    return confirmed, found


def scene_rows(seeds: int, with_emb: bool):
    for seed in range(seeds):
        scene = generate_scene(SceneConfig(seed=seed))
        frames = scene.to_frames(with_embeddings=with_emb)

        def gt_of(k, _frame, scene=scene):
            sf = scene.frames[k]
            keep = sf.obj_visibility >= 0.2
            return FrameBoxes.of(sf.obj_ids[keep], sf.obj_boxes[keep])

        yield f'scene {seed} {"emb" if with_emb else "boxes"}', track(frames, gt_of)


def mot_rows(root: Path):
    from assoc_logger_ros import motchallenge as mc

    for seq in SEQS:
        info = mc.read_seqinfo(root / seq)
        first = info.half_val_first
        rows = mc.read_gt(root / seq / 'gt' / 'gt.txt')
        rows = rows[(rows[:, 6] == 1) & (rows[:, 7] == 1)]
        by_frame = {int(f): rows[rows[:, 0] == f] for f in np.unique(rows[:, 0])}
        frames = list(mc.iter_frames(root / seq, root / seq / DET, first_frame=first, info=info))

        def gt_of(_k, frame, by_frame=by_frame):
            r = by_frame.get(frame.frame_idx, np.zeros((0, 9)))
            boxes = np.concatenate([r[:, 2:4], r[:, 2:4] + r[:, 4:6]], axis=1)
            return FrameBoxes.of(r[:, 1], boxes)

        yield seq, track(frames, gt_of)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=default_data())
    parser.add_argument('--seeds', type=int, default=6)
    args = parser.parse_args()
    groups = {'scenes, embeddings': list(scene_rows(args.seeds, True)),
              'scenes, boxes only': list(scene_rows(args.seeds, False))}
    root = args.data / 'MOT17' / 'train'
    if root.is_dir():
        groups['MOT17 half-val (boxes only)'] = list(mot_rows(root))
    else:
        print(f'MOT17 not found at {root}; set ASSOC_BENCH_DATA (scenes only)')
    print('| sequence | true IDSW | est | appearance | reappear | jump | swap | '
          'est confirmed | true found |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for name, rows in groups.items():
        est_all, true_all, conf_all, found_all, n_ev = [], [], 0, 0, 0
        for seq, (m, est, events, kinds) in rows:
            confirmed, found = precision_recall(m, events)
            conf_all += confirmed
            found_all += found
            n_ev += len(events)
            est_all.append(est)
            true_all.append(m.idsw)
            print(f'| {seq} | {m.idsw} | {est} | {kinds["appearance"]} | {kinds["reappear"]} | '
                  f'{kinds["jump"]} | {kinds["swap"]} | {confirmed}/{len(events)} | '
                  f'{found}/{m.idsw} |')
        corr = (np.corrcoef(est_all, true_all)[0, 1] if len(rows) > 2
                and np.std(est_all) > 0 and np.std(true_all) > 0 else float('nan'))
        print(f'| **{name}: total** | {sum(true_all)} | {sum(est_all)} | | | | | '
              f'{conf_all}/{n_ev} | {found_all}/{sum(true_all)} |')
        print(f'| {name}: Pearson r (est vs true, per sequence) | {corr:.2f} | | | | | | | |')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
