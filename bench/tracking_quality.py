r"""Tracking quality on three kinds of scene: the reference, the defaults and each candidate.

One run scores every configuration with TrackEval on
  * MOT17 half-val (``../shared/notes/mot-protocol.md``: 7 sequences, YOLOX-X ablation detections),
  * MOT15 train (11 sequences, the SORT authors' Faster R-CNN detections, whole sequences, 7 to
    30 fps: the low-frame-rate case),
  * a generated set (``assoc_logger_ros.sim.scene``): dance-like non-linear motion, dense crowds,
    a 10 fps scene and the demo scene, two seeds each, motion only (no embeddings),
and prints one table per set (combined, plus per sequence with ``--per-seq``) with the tracker's
median CPU time per update on MOT17, measured in the same run.

Rows: ``reference`` (frame mode with every candidate off: must give the official ByteTrack figures
67.80 / 77.79 / 79.89 / 170 on MOT17), ``before`` (the defaults before the candidates existed: time
mode, every candidate off), ``defaults`` (TrackerConfig()), then one row per candidate: ``before``
with that one setting changed. On MOT17 a first row gives the official ByteTrack code's own
figures (protocol note); elsewhere ``reference`` stands for it. No setting is tuned per
sequence.

    BENCH=/tmp/assoc_benchvenv/bin/python      # any venv with trackeval (scripts/bench_env.sh)
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. nice $BENCH bench/tracking_quality.py \\
        [--sets mot17 mot15 sim] [--only NAME ...] [--per-seq]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

from assoc_logger_ros import motchallenge as mc
from assoc_logger_ros.commands.evaluate import evaluate
from assoc_logger_ros.commands.mot import track_sequence
from assoc_logger_ros.config import TrackerConfig
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.reference import reference_config

MOT17_SEQS = ('MOT17-02', 'MOT17-04', 'MOT17-05', 'MOT17-09', 'MOT17-10', 'MOT17-11',
              'MOT17-13')
MOT17_DET = 'det/yolox_x_ablation.txt'
MOT15_SEQS = ('ADL-Rundle-6', 'ADL-Rundle-8', 'ETH-Bahnhof', 'ETH-Pedcross2', 'ETH-Sunnyday',
              'KITTI-13', 'KITTI-17', 'PETS09-S2L1', 'TUD-Campus', 'TUD-Stadtmitte', 'Venice-2')
MOT15_DET = 'det/sort_frcnn.txt'
OFFICIAL_MOT17 = {'HOTA': 67.80, 'MOTA': 77.79, 'IDF1': 79.89, 'IDSW': 170}

# generated scenes: (name, config); every kind with two seeds
SIM_KINDS = {
    'dance': {'num_walkers': 12, 'turn_rate': 2.5, 'sway': 0.35, 'group_fraction': 0.5,
                  'fast_fraction': 0.1, 'num_occluders': 1},
    'crowd': {'num_walkers': 32, 'group_fraction': 0.7, 'turn_rate': 0.6, 'num_occluders': 2},
    'lowfps': {'fps': 10.0, 'num_frames': 150, 'num_walkers': 14, 'turn_rate': 0.6},
    'demo': {},
}
SIM_SEEDS = (11, 12)


def default_data() -> Path:
    env = os.environ.get('ASSOC_BENCH_DATA')
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / 'shared' / 'bench-data'


def configurations() -> dict[str, TrackerConfig]:
    """Every configuration of the table, by row name."""
    before = reference_config(frame_mode=False)
    rows = {'reference': reference_config(), 'before': before, 'defaults': TrackerConfig()}
    # the defaults before issue 12's fifth pass; the fifth added the three output_lost_*
    # values (now5), the sixth the stage-3 limit of 0.8 (today's defaults)
    now = {'height_iou': True, 'cmc': True, 'track_buffer_min_frames': 30}
    now5 = {**now, 'output_lost_frames': 1, 'output_lost_min_hits': 10,
            'output_lost_inside': True}
    candidates = {
        'output_box=detection': {'output_box': 'detection'},
        'track_buffer_min_frames=30': {'track_buffer_min_frames': 30},
        'oc_reupdate': {'oc_reupdate': True},
        'nsa_kalman': {'nsa_kalman': True},
        'height_iou': {'height_iou': True},
        'score_cost_weight=0.2': {'score_cost_weight': 0.2},
        'output_lost_frames=3': {'output_lost_frames': 3},
        'hiou+nsa+lost3': {'height_iou': True, 'nsa_kalman': True, 'output_lost_frames': 3},
        'hiou+lost3': {'height_iou': True, 'output_lost_frames': 3},
        'hiou+nsa+buf30': {'height_iou': True, 'nsa_kalman': True,
                           'track_buffer_min_frames': 30},
        'cmc': {'cmc': True},
        'hiou+cmc': {'height_iou': True, 'cmc': True},
        'hiou+cmc+buf30': {'height_iou': True, 'cmc': True, 'track_buffer_min_frames': 30},
        'hiou+cmc+nsa+buf30': {'height_iou': True, 'cmc': True, 'nsa_kalman': True,
                               'track_buffer_min_frames': 30},
        'hiou (former defaults)': {'height_iou': True},
        'fourth-pass defaults': now,
        'cmc_scale': {**now, 'cmc_scale': True},
        'cmc_unconfirmed': {**now, 'cmc_unconfirmed': True},
        'ocm_weight=0.2': {**now, 'ocm_weight': 0.2},
        'ocm_weight=0.05': {**now, 'ocm_weight': 0.05},
        'nsa_strength=0.5': {**now, 'nsa_kalman': True, 'nsa_strength': 0.5},
        'ocr_thresh=0.3': {**now, 'ocr_thresh': 0.3},
        'ocr_thresh=0.5': {**now, 'ocr_thresh': 0.5},
        'ocr_thresh=0.7': {**now, 'ocr_thresh': 0.7},
        'nsa_strength=0.1': {**now, 'nsa_kalman': True, 'nsa_strength': 0.1},
        'nsa_strength=0.25': {**now, 'nsa_kalman': True, 'nsa_strength': 0.25},
        'lost_velocity_decay=0.9': {**now, 'lost_velocity_decay': 0.9},
        'lost_velocity_decay=0.95': {**now, 'lost_velocity_decay': 0.95},
        'lost_velocity_decay=0.8': {**now, 'lost_velocity_decay': 0.8},
        'lost_velocity_decay=0.98': {**now, 'lost_velocity_decay': 0.98},
        'lost_velocity_decay=0.99': {**now, 'lost_velocity_decay': 0.99},
        'kalman_state=xywh': {**now, 'kalman_state': 'xywh'},
        'xywh+nsa': {**now, 'kalman_state': 'xywh', 'nsa_kalman': True},
        'match_thresh=0.85': {**now, 'match_thresh': 0.85},
        'match_thresh=0.95': {**now, 'match_thresh': 0.95},
        'track_thresh=0.55': {**now, 'track_thresh': 0.55},
        'track_thresh=0.65': {**now, 'track_thresh': 0.65},
        'track_buffer_s=1.5': {**now, 'track_buffer_s': 1.5},
        'track_buffer_min_frames=45': {**now, 'track_buffer_min_frames': 45},
        'now+output_box=detection': {**now, 'output_box': 'detection'},
        'now+output_lost_frames=1': {**now, 'output_lost_frames': 1},
        'now+output_lost_frames=2': {**now, 'output_lost_frames': 2},
        'now+nsa+cmc_unconfirmed': {**now, 'nsa_kalman': True, 'cmc_unconfirmed': True},
        'lost1+hits10': {**now, 'output_lost_frames': 1, 'output_lost_min_hits': 10},
        'lost1+hits30': {**now, 'output_lost_frames': 1, 'output_lost_min_hits': 30},
        'lost1+inside': {**now, 'output_lost_frames': 1, 'output_lost_inside': True},
        'lost2+hits10+inside': {**now, 'output_lost_frames': 2, 'output_lost_min_hits': 10,
                                'output_lost_inside': True},
        'lost1+hits10+inside': {**now, 'output_lost_frames': 1, 'output_lost_min_hits': 10,
                                'output_lost_inside': True},
        'lost1+hits5+inside': {**now, 'output_lost_frames': 1, 'output_lost_min_hits': 5,
                               'output_lost_inside': True},
        'lost2+hits20+inside': {**now, 'output_lost_frames': 2, 'output_lost_min_hits': 20,
                                'output_lost_inside': True},
        'lost2+inside': {**now, 'output_lost_frames': 2, 'output_lost_inside': True},
        'crowd_match_thresh=0.8': {**now5, 'crowd_match_thresh': 0.8},
        'crowd_match_thresh=0.85': {**now5, 'crowd_match_thresh': 0.85},
        'crowd_match_thresh=0.7': {**now5, 'crowd_match_thresh': 0.7},
        'fifth+track_buffer_s=1.5': {**now5, 'track_buffer_s': 1.5},
        'fifth+track_buffer_s=1.25': {**now5, 'track_buffer_s': 1.25},
        'fifth+track_buffer_s=2': {**now5, 'track_buffer_s': 2.0},
        'fifth+cmc_unconfirmed': {**now5, 'cmc_unconfirmed': True},
        'fifth+nsa_strength=0.25': {**now5, 'nsa_kalman': True, 'nsa_strength': 0.25},
        'unconfirmed_match_thresh=0.8': {**now, 'unconfirmed_match_thresh': 0.8},
        'duplicate_iou_dist=0.1': {**now, 'duplicate_iou_dist': 0.1},
        'unc0.8+buf1.5': {**now, 'unconfirmed_match_thresh': 0.8, 'track_buffer_s': 1.5},
        'unc0.8+buf1.5+dup0.1': {**now, 'unconfirmed_match_thresh': 0.8, 'track_buffer_s': 1.5,
                                 'duplicate_iou_dist': 0.1},
        'fifth-pass defaults': now5,
        'fifth+unconfirmed_match_thresh=0.8': {**now5, 'unconfirmed_match_thresh': 0.8},
        'fifth+unc0.8+buf1.5': {**now5, 'unconfirmed_match_thresh': 0.8,
                                'track_buffer_s': 1.5},
    }
    for name, change in candidates.items():
        rows[name] = dataclasses.replace(before, **change)
    return rows


# -- the three sets ----------------------------------------------------------------------------
def run_mot(root: Path, seqs: tuple[str, ...], det: str, cfg: TrackerConfig, out: Path,
            half_val: bool) -> np.ndarray:
    """Track each sequence into ``out/<SEQ>.txt``; returns every update's CPU time (s)."""
    times = []
    for seq in seqs:
        first = mc.read_seqinfo(root / seq).half_val_first if half_val else 1
        res = track_sequence(root / seq, root / seq / det, cfg, first_frame=first)
        mc.write_results(out / f'{seq}.txt', res.rows)
        times.append(res.update_s)
    return np.concatenate(times)


def write_sim_set(gt_root: Path) -> dict[str, list]:
    """Generate the scenes, write their GT as MOTChallenge folders; returns frames per scene."""
    scenes = {}
    for kind, params in SIM_KINDS.items():
        for seed in SIM_SEEDS:
            name = f'SIM-{kind}-{seed}'
            cfg = SceneConfig(seed=seed, **params)
            scene = generate_scene(cfg)
            seq = gt_root / name
            (seq / 'gt').mkdir(parents=True, exist_ok=True)
            (seq / 'seqinfo.ini').write_text(
                f'[Sequence]\nname={name}\nimDir=img1\nframeRate={cfg.fps:g}\n'
                f'seqLength={len(scene.frames)}\nimWidth={cfg.width}\nimHeight={cfg.height}\n'
                'imExt=.jpg\n', encoding='utf-8')
            rows = []
            for k, f in enumerate(scene.frames):
                # every object in view, hidden or not (the MOTChallenge convention)
                vis = np.ones(len(f.obj_ids), bool)
                for ident, b, v in zip(f.obj_ids[vis], f.obj_boxes[vis].tolist(),
                                       f.obj_visibility[vis].tolist()):
                    rows.append(f'{k + 1},{int(ident) + 1},{b[0]:.3f},{b[1]:.3f},'
                                f'{b[2] - b[0]:.3f},{b[3] - b[1]:.3f},1,1,{v:.3f}')
            (seq / 'gt' / 'gt.txt').write_text('\n'.join(rows) + '\n', encoding='utf-8')
            scenes[name] = (cfg, [f.to_frame(with_embeddings=False, with_gt=False)
                                  for f in scene.frames])
    return scenes


def run_sim(scenes: dict[str, tuple], cfg: TrackerConfig, out: Path) -> None:
    """Track each generated scene into ``out/<SCENE>.txt`` (frame numbers 1..N)."""
    for name, (scene_cfg, frames) in scenes.items():
        tracker = ByteTracker(dataclasses.replace(cfg, frame_rate=scene_cfg.fps))
        parts = []
        for k, frame in enumerate(frames):
            snap = tracker.update(frame)
            parts.append(mc.result_rows(k + 1, snap.output_track_ids, snap.output_boxes,
                                        snap.output_scores))
        mc.write_results(out / f'{name}.txt', np.concatenate(parts))


# -- output ------------------------------------------------------------------------------------
def table(scores: dict, names: dict[str, str], key: str, extra: dict | None = None,
          base: str = 'before', official: bool = False) -> list[str]:
    """Markdown rows for one sequence key (or COMBINED), with deltas to ``base``.

    ``official``: first row = the official ByteTrack code's own MOT17 half-val figures.
    """
    cols = ('HOTA', 'DetA', 'AssA', 'MOTA', 'IDF1', 'IDSW')
    head = '| config | ' + ' | '.join(cols) + ' | dHOTA | dIDF1 |'
    if extra:
        head += ' ' + ' | '.join(next(iter(extra.values()))) + ' |'
    lines = [head, '|---|' + '---:|' * (len(cols) + 2 + (len(next(iter(extra.values())))
                                                      if extra else 0))]
    b = scores[names[base]][key] if base in names else None
    if official:
        o = OFFICIAL_MOT17
        cells = [f'{o["HOTA"]:.2f}', '-', '-', f'{o["MOTA"]:.2f}', f'{o["IDF1"]:.2f}',
                 f'{o["IDSW"]}']
        cells += ([f'{o["HOTA"] - b["HOTA"]:+.2f}', f'{o["IDF1"] - b["IDF1"]:+.2f}'] if b
                  else ['', ''])
        cells += ['-'] * (len(next(iter(extra.values()))) if extra else 0)
        lines.append('| official ByteTrack code (protocol note) | ' + ' | '.join(cells) + ' |')
    for row, tid in names.items():
        m = scores[tid][key]
        cells = [f'{m[c]:.2f}' if c != 'IDSW' else f'{int(m[c])}' for c in cols]
        if b is not None:
            cells += [f'{m["HOTA"] - b["HOTA"]:+.2f}', f'{m["IDF1"] - b["IDF1"]:+.2f}']
        else:
            cells += ['', '']
        if extra:
            cells += list(extra[row].values())
        lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=default_data())
    parser.add_argument('--sets', nargs='+', default=['mot17', 'mot15', 'sim'],
                        choices=['mot17', 'mot15', 'sim'])
    parser.add_argument('--only', nargs='+', default=None,
                        help='row names to run (reference, before and defaults always run)')
    parser.add_argument('--per-seq', action='store_true', help='also print per-sequence tables')
    parser.add_argument('--timing-rounds', type=int, default=3,
                        help='extra interleaved MOT17 timing rounds of before vs defaults')
    args = parser.parse_args()
    configs = configurations()
    if args.only:
        unknown = set(args.only) - set(configs)
        if unknown:
            print(f'unknown rows: {sorted(unknown)}; known: {sorted(configs)}')
            return 1
        configs = {k: v for k, v in configs.items()
                   if k in ('reference', 'before', 'defaults') or k in args.only}
    names = {row: f'c{i:02d}' for i, row in enumerate(configs)}    # TrackEval folder names
    print('defaults:', {k: v for k, v in dataclasses.asdict(TrackerConfig()).items()
                        if k in reference_config().__dataclass_fields__
                        and v != getattr(reference_config(frame_mode=False), k)} or 'as before')
    with tempfile.TemporaryDirectory(prefix='tracking_quality_') as tmp_name:
        tmp = Path(tmp_name)
        for which in args.sets:
            t0 = time.perf_counter()
            timing = None
            if which == 'mot17':
                root = args.data / 'MOT17' / 'train'
                seqs, half, bench = MOT17_SEQS, True, 'MOT17'
                timing = {}
                for row, cfg in configs.items():
                    ms = 1e3 * run_mot(root, seqs, MOT17_DET, cfg, tmp / which / names[row],
                                       True)
                    timing[row] = float(np.median(ms))
            elif which == 'mot15':
                root = args.data / 'MOT15' / 'train'
                seqs, half, bench = MOT15_SEQS, False, 'MOT15'
                for row, cfg in configs.items():
                    run_mot(root, seqs, MOT15_DET, cfg, tmp / which / names[row], False)
            else:
                root = tmp / 'sim_gt'
                scenes = write_sim_set(root)
                seqs, half, bench = tuple(scenes), False, 'MOT17'
                for row, cfg in configs.items():
                    run_sim(scenes, cfg, tmp / which / names[row])
            if not root.is_dir():
                print(f'bench data not found at {root}; set ASSOC_BENCH_DATA')
                return 1
            scores = evaluate(root, {names[r]: tmp / which / names[r] for r in configs},
                              list(seqs), half_val=half, benchmark=bench)
            extra = None
            if timing:
                extra = {row: {'median ms': f'{t:.3f}',
                               'x before': f'{t / timing["before"]:.2f}'}
                         for row, t in timing.items()}
            title = {'mot17': 'MOT17 half-val (official ByteTrack code: HOTA 67.80, MOTA 77.79, '
                              'IDF1 79.89, IDSW 170)',
                     'mot15': 'MOT15 train, sort_frcnn detections',
                     'sim': 'generated scenes (dance, crowd, lowfps, demo; 2 seeds each)'}[which]
            print(f'\n## {title}  [{time.perf_counter() - t0:.0f} s]\n')
            print('\n'.join(table(scores, names, 'COMBINED', extra, official=which == 'mot17')))
            print("\n`reference` = the official ByteTrack code's decisions (frame mode, every "
                  'measure off);' + (" on MOT17 its output equals the official code's (checked "
                  'below and by test/test_tracking_reference.py).' if which == 'mot17' else
                  ' the official code itself is not run here (no images/YOLOX install), '
                  'so this row stands for it.'))
            if args.per_seq:
                for seq in seqs:
                    print(f'\n{seq}')
                    print('\n'.join(table(scores, names, seq)))
            if which == 'mot17':
                ref = scores[names['reference']]['COMBINED']
                same = all(round(ref[k], 2) == v for k, v in OFFICIAL_MOT17.items()
                           if k != 'IDSW') and int(ref['IDSW']) == OFFICIAL_MOT17['IDSW']
                print('\nreference row equals the official code:', 'yes' if same else 'NO')
            sys.stdout.flush()
        if 'mot17' in args.sets and args.timing_rounds > 0:
            print_timing(args.data / 'MOT17' / 'train', configs, args.timing_rounds, tmp)
    return 0


def print_timing(root: Path, configs: dict[str, TrackerConfig], rounds: int, tmp: Path) -> None:
    """Interleaved rounds over MOT17 half-val: median update time per round, then the median.

    Rows: ``before``, former defaults (height IoU alone; passes 4, 5) when selected, defaults.

    One pass per configuration is noisy on a shared machine; alternating the configurations and
    taking the median over rounds compares them under the same load.
    """
    rows = [r for r in ('before', 'hiou (former defaults)', 'fourth-pass defaults',
                        'fifth-pass defaults', 'defaults') if r in configs]
    med: dict[str, list[float]] = {r: [] for r in rows}
    for _ in range(rounds):
        for row in rows:
            ms = 1e3 * run_mot(root, MOT17_SEQS, MOT17_DET, configs[row], tmp / 'timing', True)
            med[row].append(float(np.median(ms)))
    base = float(np.median(med['before']))
    print(f'\n## MOT17 update time, {rounds} interleaved rounds (median of the per-round '
          'medians, CPU time of the update call)\n')
    print('| config | median ms | x before | per round |\n|---|---:|---:|---|')
    for row in rows:
        m = float(np.median(med[row]))
        print(f'| {row} | {m:.3f} | {m / base:.2f} | '
              + ' '.join(f'{v:.3f}' for v in med[row]) + ' |')


if __name__ == '__main__':
    sys.exit(main())
