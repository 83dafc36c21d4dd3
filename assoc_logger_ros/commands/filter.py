"""Select samples by quality into a new directory (hard links, new manifest).

Example: ``filter logs --out clean --max-session-switches 5 --min-visibility 0.5``.
Per-pair: ``filter logs --out clean --label-preset recommended`` keeps every frame and sets
``label_weights`` 0 on the pairs whose confidence keys fail the thresholds (docs/labels.md);
``--label-scorer model.json`` (from ``labels --fit-scorer``) does so where a learned scorer
calls the label wrong; ``--jobs 0`` spreads the re-tracking over every CPU.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``filter``."""
    from assoc_logger_ros.dataset import select
    parser.add_argument('directory', metavar='DIR', help='source sample directory')
    parser.add_argument('--out', required=True, metavar='DIR2',
                        help='new directory (must not exist or be empty)')
    select.add_arguments(parser)
    from assoc_logger_ros.dataset import label_filter
    label_filter.add_arguments(parser)
    parser.add_argument('--jobs', type=jobs_arg, default=1, metavar='N',
                        help='processes for the re-tracking runs of the session evidence '
                        '(ctx_retrack_*, preset recommended); 0: one per CPU; the values do '
                        'not depend on it (default: 1)')


def jobs_arg(text: str) -> int:
    """``--jobs``: a process count in 0..256 (0: one per CPU)."""
    value = int(text)
    if not 0 <= value <= 256:
        raise argparse.ArgumentTypeError(f'{value} is not in 0..256')
    return value


def run(args: argparse.Namespace) -> int:
    """Filter; 0 on success (unusable samples are skipped, with a warning), 1 on error."""
    import sys

    from assoc_logger_ros.dataset import label_filter, select
    from assoc_logger_ros.dataset.label_scorer import ScorerError
    from assoc_logger_ros.dataset.ops import filter_dataset
    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards.layout import is_shard_dir
    if is_shard_dir(args.directory):  # shard layout in, shard layout out
        from assoc_logger_ros.shards.tools import filter_shards as filter_dataset
    try:
        rule = label_filter.from_args(args)
    except ScorerError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    try:
        res = filter_dataset(args.directory, args.out, select.from_args(args), rule,
                             jobs=args.jobs)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    print(f'{res["selected"]} of {res["total"]} samples -> {res["out"]} '
          f'({res["linked"]} linked, {res["copied"]} copied, {res["rewritten"]} rewritten)')
    if res['rewritten']:
        print(f'  label_weights 0 on {res["pairs_ignored"]} of {res["pairs_matched"]} matched '
              'pairs')
    for why, n in sorted(res['rejected'].items()):
        print(f'  rejected {n}: {why}')
    for line in res['manifest_problems']:
        print(f'WARNING: {line}', file=sys.stderr)
    for name, why in res['skipped']:
        print(f'WARNING: skipped {name}: {why}', file=sys.stderr)
    for line in res.get('context_problems', ()):
        print(f'WARNING: {line}', file=sys.stderr)
    return 0
