"""Train the association model on sample directories and export it (ONNX + JSON card).

    python -m assoc_logger_ros train --data DIR [DIR ...] --out MODEL_DIR [--epochs N]

Needs torch (``bash scripts/setup.sh --train``). Labels come from ground truth where samples
carry ``det_gt_ids``, else from the tracker's decisions; validation holds out whole sessions.
Rerunning with the same --out resumes from MODEL_DIR/checkpoint.pt. Under ``torchrun`` every
process trains on its own sessions (DistributedDataParallel, gloo). Output: MODEL_DIR/model.onnx
and model.json, what ``transformer_assoc_weights`` takes.
"""

from __future__ import annotations

import argparse

from assoc_logger_ros.config import spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``train`` (defaults: the default recipe)."""
    parser.add_argument('--data', nargs='+', required=True, metavar='DIR',
                        help='sample directories (manifest.jsonl)')
    parser.add_argument('--out', required=True, metavar='MODEL_DIR', help='output folder')
    parser.add_argument('--epochs', type=int, default=4)
    parser.add_argument('--batch-size', type=int, default=32, help='frames per batch')
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--seed', type=int, default=0, help='same seed, same data: same model')
    parser.add_argument('--arch', choices=('pair', 'seed'), default='pair',
                        help='pair: also sees the logged pair costs and mask (default); '
                        'seed: the seed architecture (baseline)')
    parser.add_argument('--loss', choices=('softmax', 'bce'), default='softmax',
                        help='softmax over tracks + a no-match column per detection '
                        '(default), or pair BCE weighted by the negative/positive ratio')
    parser.add_argument('--gated', dest='gated', action='store_true', default=True,
                        help='score only the pairs the logged gating mask allows (default; '
                        'the export runs the pair MLP on those pairs only: faster at run time)')
    parser.add_argument('--dense', dest='gated', action='store_false',
                        help='score every track x detection pair (the recipe before --gated)')
    parser.add_argument('--width', type=int, default=64, help='shared projection width')
    parser.add_argument('--hidden', type=int, default=32, help='pair MLP width')
    parser.add_argument('--layers', type=int, default=1, help='encoder layers per side')
    parser.add_argument('--heads', type=int, default=4)
    parser.add_argument('--embed-dim', type=int, default=None,
                        help="embedding columns the model takes (default: the samples')")
    parser.add_argument('--track-thresh', type=float, default=spec('track_thresh').default,
                        help="the tracker's high/low score split (selects stage-1 detections)")
    parser.add_argument('--val-fraction', type=float, default=0.2,
                        help='share of sessions held out for validation')
    parser.add_argument('--val-sessions', nargs='+', default=None, metavar='SESSION',
                        help='hold out exactly these sessions')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--no-resume', dest='resume', action='store_false',
                        help='ignore an existing checkpoint (it is overwritten)')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    parser.add_argument('--stream', action='store_true',
                        help='stream shard directories with DataLoader workers and a shuffle '
                        'buffer (bounded memory) instead of loading every example')
    parser.add_argument('--workers', type=int, default=2, metavar='N',
                        help='DataLoader workers of --stream (0: in the main process)')
    parser.add_argument('--shuffle-buffer', type=int, default=2048, metavar='N',
                        help='--stream: examples shuffled within a buffer of N')


def run(args: argparse.Namespace) -> int:
    """Train; 0 on success, 2 on unusable data or a missing torch."""
    import sys

    try:
        from assoc_logger_ros.training.data import DataError
        from assoc_logger_ros.training.train import TrainConfig, train
    except ImportError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 2
    cfg = TrainConfig(data=[str(d) for d in args.data], out=str(args.out), epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed, arch=args.arch,
                      loss=args.loss, width=args.width, hidden=args.hidden, layers=args.layers,
                      heads=args.heads, gated=args.gated,
                      embed_dim=args.embed_dim, track_thresh=args.track_thresh,
                      val_fraction=args.val_fraction, val_sessions=args.val_sessions,
                      threads=args.threads, progress=not args.quiet, resume=args.resume,
                      stream=args.stream, workers=args.workers,
                      shuffle_buffer=args.shuffle_buffer)
    try:
        card = train(cfg)
    except (DataError, ValueError, OSError) as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 2
    if card:
        best = card['metrics'].get('best_epoch', {})
        print(f'best epoch {best.get("epoch")}: det acc {best.get("det_acc")} (classical cost '
              f'{best.get("classical_det_acc")}), pair acc {best.get("pair_acc")}; '
              f'{card["training"]["time_s"]} s')
    return 0
