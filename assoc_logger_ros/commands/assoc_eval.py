"""Evaluate a learned association model: pair accuracy on samples, tracking with/without it.

    python -m assoc_logger_ros assoc-eval --model MODEL_DIR [--samples DIR ...]
        [--seq-root MOT17/train --seqs MOT17-02 ... --det det/yolox_x_ablation.txt --half-val]
        [--weights 0.25 0.5 0.75]

``--samples``: directories of held-out samples (ground truth where they carry ``det_gt_ids``):
the model's stage-1 decisions and pair accuracy against the labels, next to the classical
cost's decisions. ``--seqs``: MOTChallenge sequences tracked without the model and with it at
each blend weight, scored by TrackEval (HOTA, IDF1, IDSW; needs ``trackeval``, a benchmark
dependency). Runs the exported ONNX model with onnxruntime, as the tracker does: no torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``assoc-eval``."""
    parser.add_argument('--model', required=True, type=Path, help='folder train wrote')
    parser.add_argument('--samples', nargs='+', default=[], metavar='DIR',
                        help='held-out sample directories for pair accuracy')
    parser.add_argument('--seq-root', type=Path, help='folder of MOTChallenge sequences')
    parser.add_argument('--seqs', nargs='+', default=[], help='sequence folder names')
    parser.add_argument('--det', default='det/det.txt',
                        help='detection file inside each sequence folder')
    parser.add_argument('--half-val', action='store_true',
                        help='track and score frames N//2+2..N (MOT17 half-val protocol)')
    parser.add_argument('--weights', nargs='+', type=float, default=[0.25, 0.5, 0.75],
                        help='blend weights to compare with the classical cost (w = 0)')
    parser.add_argument('--keep', type=Path, help='keep the result files under this folder')


def pair_accuracy(model_dir: Path, sample_dirs: list[str]) -> dict[str, float]:
    """:func:`~assoc_logger_ros.training.metrics.score` of the ONNX model on the samples."""
    from assoc_logger_ros.tracking.learned_cost import LearnedCost
    from assoc_logger_ros.training.data import load_examples
    from assoc_logger_ros.training.metrics import score

    lc = LearnedCost(model_dir, 1.0)
    examples = load_examples(sample_dirs, track_thresh=float(lc.card['track_thresh']),
                             embed_dim=lc.embed_dim)
    pairs = ((ex, lc.probabilities(ex.track_feat, ex.track_emb, ex.det_feat, ex.det_emb,
                                   ex.cost, ex.mask)) for ex in examples)
    out = score(pairs, lc.card['architecture']['loss'])
    out['examples'] = len(examples)
    out['from_gt'] = sum(e.from_gt for e in examples)
    return out


def tracking_table(model_dir: Path, seq_root: Path, seqs: list[str], det: str,
                   weights: list[float], half_val: bool, keep: Path | None) -> str:
    """TrackEval table: the classical tracker and the model at each weight."""
    import tempfile

    import numpy as np

    from assoc_logger_ros import motchallenge as mc
    from assoc_logger_ros.commands.evaluate import evaluate, format_table
    from assoc_logger_ros.commands.mot import track_sequence
    from assoc_logger_ros.config import TrackerConfig

    with tempfile.TemporaryDirectory(prefix='assoc_eval_') as tmp:
        base = keep or Path(tmp)
        results, timing = {}, {}
        for w in [0.0] + [x for x in weights if x > 0]:
            name = 'classical' if w == 0 else f'model w={w:g}'
            cfg = TrackerConfig(transformer_assoc_enable=w > 0,
                                transformer_assoc_weights=str(model_dir) if w > 0 else '',
                                transformer_assoc_weight=w)
            out = base / name.replace(' ', '_').replace('=', '')
            times = []
            for seq in seqs:
                info = mc.read_seqinfo(seq_root / seq)
                first = info.half_val_first if half_val else 1
                res = track_sequence(seq_root / seq, seq_root / seq / det, cfg,
                                     first_frame=first)
                mc.write_results(out / f'{seq}.txt', res.rows)
                times.append(res.update_s)
            ms = 1e3 * np.concatenate(times)
            results[name] = out
            timing[name] = {'median ms': f'{np.median(ms):.3f}'}
        scores = evaluate(seq_root, results, seqs, half_val=half_val)
    return format_table(scores, 'COMBINED', timing)


def run(args: argparse.Namespace) -> int:
    """Print the pair metrics and the tracking table; 1 on an error."""
    import json
    import sys

    from assoc_logger_ros.commands.evaluate import EvalError
    from assoc_logger_ros.config import ConfigError
    from assoc_logger_ros.training.data import DataError

    if not args.samples and not args.seqs:
        print('ERROR: nothing to evaluate: give --samples and/or --seq-root/--seqs',
              file=sys.stderr)
        return 1
    try:
        if args.samples:
            m = pair_accuracy(args.model, args.samples)
            print('pair accuracy on held-out samples (stage 1):')
            print(json.dumps(m, indent=1))
        if args.seqs:
            if args.seq_root is None:
                raise ValueError('--seqs needs --seq-root')
            print(tracking_table(args.model, args.seq_root, list(args.seqs), args.det,
                                 list(args.weights), args.half_val, args.keep))
    except (ConfigError, DataError, EvalError, ValueError, OSError) as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    return 0
