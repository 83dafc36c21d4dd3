"""Leave-one-sequence-out over the MOT17 FIRST halves: the blend weight chosen on training data.

For each of the seven sequences: train the recipe on the other six sequences' first-half
samples (``bench/learned_assoc_mot17_data.sh WORK``), then on the held-out sequence's first half
(frames 1..N//2+1, never the half-val second half) report the model's stage-1 decision accuracy
against ground truth and track it with the classical cost and with the model at each blend
weight. The seven held-out first halves are scored together by TrackEval (COMBINED) and the
weight is chosen by a rule fixed in advance: the fewest IDSW among the weights whose HOTA is at
least the classical tracker's; if none reaches it, the highest HOTA. That weight is then used,
once, on the half-val second halves (``assoc-eval --half-val --weights W``).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. nice .venv/bin/python bench/learned_assoc_loso.py WORK \
        [--tag default] [--hidden 32 ...]

Models are kept under ``WORK/loso/TAG/<held-out sequence>`` (a rerun reuses finished folds).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import tempfile
import time

import numpy as np

from assoc_logger_ros import motchallenge as mc
from assoc_logger_ros.commands.assoc_eval import pair_accuracy
from assoc_logger_ros.commands.evaluate import _write_rows, _write_seq, evaluate
from assoc_logger_ros.commands.mot import track_sequence
from assoc_logger_ros.config import TrackerConfig

SEQS = ('MOT17-02', 'MOT17-04', 'MOT17-05', 'MOT17-09', 'MOT17-10', 'MOT17-11', 'MOT17-13')
ROOT = Path(__file__).resolve().parents[1]


def first_half_gt(seq_root: Path, seqs: list[str], dst: Path) -> None:
    """A ground-truth root holding only frames 1..N//2+1 of each sequence (the training half)."""
    for seq in seqs:
        info = mc.read_seqinfo(seq_root / seq)
        last = info.seq_length // 2 + 1
        _write_seq(dst / seq, info, last)
        gt = mc.trim_gt(mc.read_gt(seq_root / seq / 'gt' / 'gt.txt'), 1, last)
        _write_rows(dst / seq / 'gt' / 'gt.txt', gt)


def choose_weight(combined: dict[str, dict[str, float]], weights: list[float]) -> float:
    """The rule: fewest IDSW at HOTA >= classical; else the highest HOTA."""
    base = combined['classical']['HOTA']
    names = {w: f'model w={w:g}' for w in weights}
    ok = [w for w in weights if combined[names[w]]['HOTA'] >= base]
    if ok:
        return min(ok, key=lambda w: (combined[names[w]]['IDSW'], -combined[names[w]]['HOTA']))
    return max(weights, key=lambda w: combined[names[w]]['HOTA'])


def main() -> int:
    """Train the folds, track, score, print the tables and the chosen weight."""
    from assoc_logger_ros.training.train import TrainConfig, train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work', type=Path, help='folder with samples/<SEQ> (the data script)')
    parser.add_argument('--seq-root', type=Path,
                        default=ROOT.parent / 'shared' / 'bench-data' / 'MOT17' / 'train')
    parser.add_argument('--det', default='det/yolox_x_ablation.txt')
    parser.add_argument('--weights', type=float, nargs='+', default=[0.1, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument('--tag', default='default', help='name of this recipe (model folder)')
    parser.add_argument('--hidden', type=int, default=None, help='TrainConfig.hidden')
    parser.add_argument('--epochs', type=int, default=None, help='TrainConfig.epochs')
    parser.add_argument('--dense', action='store_true', help='TrainConfig.gated = False')
    args = parser.parse_args()
    extra = {k: v for k, v in (('hidden', args.hidden), ('epochs', args.epochs))
             if v is not None}
    if args.dense:
        extra['gated'] = False
    base_dir = args.work / 'loso' / args.tag
    results: dict[str, Path] = {}
    folds = []
    for seq in SEQS:
        model_dir = base_dir / seq
        t0 = time.perf_counter()
        if not (model_dir / 'model.json').is_file():
            others = [str(args.work / 'samples' / s) for s in SEQS if s != seq]
            train(TrainConfig(data=others, out=str(model_dir), progress=False, **extra),
                  log=lambda line: None)
        train_s = time.perf_counter() - t0
        pa = pair_accuracy(model_dir, [str(args.work / 'samples' / seq)])
        card = json.loads((model_dir / 'model.json').read_text())
        folds.append((seq, pa, card['training'].get('time_s', train_s)))
        info = mc.read_seqinfo(args.seq_root / seq)
        last = info.seq_length // 2 + 1
        for w in [0.0] + list(args.weights):
            name = 'classical' if w == 0 else f'model w={w:g}'
            cfg = TrackerConfig(transformer_assoc_enable=w > 0,
                                transformer_assoc_weights=str(model_dir) if w > 0 else '',
                                transformer_assoc_weight=w)
            out = base_dir / 'results' / name.replace(' ', '_').replace('=', '')
            res = track_sequence(args.seq_root / seq, args.seq_root / seq / args.det, cfg,
                                 first_frame=1, last_frame=last)
            mc.write_results(out / f'{seq}.txt', res.rows)
            results[name] = out
        print(f'{seq}: fold trained in {train_s:.0f} s, det acc {pa["det_acc"]:.4f} '
              f'(classical {pa["classical_det_acc"]:.4f})', flush=True)
    with tempfile.TemporaryDirectory(prefix='assoc_loso_') as tmp:
        first_half_gt(args.seq_root, list(SEQS), Path(tmp))
        scores = evaluate(Path(tmp), results, list(SEQS))
    print(f'\nleave-one-sequence-out, recipe {args.tag} {extra or ""}: held-out FIRST halves')
    print('| held-out | examples | det acc model | det acc classical | pair acc | '
          'IDSW classical | ' + ' | '.join(f'IDSW w={w:g}' for w in args.weights) + ' |')
    print('|---|---:|---:|---:|---:|---:|' + '---:|' * len(args.weights))
    for seq, pa, _ in folds:
        print(f'| {seq} | {pa["examples"]} | {pa["det_acc"]:.4f} | '
              f'{pa["classical_det_acc"]:.4f} | {pa["pair_acc"]:.4f} | '
              f'{int(scores["classical"][seq]["IDSW"])} | '
              + ' | '.join(f'{int(scores[f"model w={w:g}"][seq]["IDSW"])}'
                           for w in args.weights) + ' |')
    n = sum(pa['labelled_detections'] for _, pa, _ in folds)
    acc = sum(pa['det_acc'] * pa['labelled_detections'] for _, pa, _ in folds) / n
    cls = sum(pa['classical_det_acc'] * pa['labelled_detections'] for _, pa, _ in folds) / n
    print(f'pooled det acc {acc:.4f} (classical {cls:.4f}) over {n} labelled detections; '
          f'median fold training {np.median([t for *_, t in folds]):.0f} s\n')
    print('TrackEval COMBINED over the seven held-out first halves:')
    header = ['HOTA', 'AssA', 'MOTA', 'IDF1', 'IDSW']
    print('| tracker | ' + ' | '.join(header) + ' |')
    print('|---|' + '---:|' * len(header))
    combined = {name: per['COMBINED'] for name, per in scores.items()}
    for name, m in combined.items():
        print(f'| {name} | ' + ' | '.join(f'{m[h]:.2f}' if h != 'IDSW' else f'{int(m[h])}'
                                         for h in header) + ' |')
    w = choose_weight(combined, list(args.weights))
    print(f'\nchosen blend weight (fewest IDSW at HOTA >= classical, else highest HOTA): {w:g}')
    (base_dir / 'summary.json').write_text(json.dumps(
        {'chosen_weight': w, 'combined': combined, 'folds': [
            {'seq': s, **pa, 'train_s': t} for s, pa, t in folds]}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
