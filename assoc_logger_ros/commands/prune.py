"""Delete files the manifest does not list, and samples failing given criteria.

Criteria are those of ``filter``; ``--invalid`` also removes samples failing validation. Use
``--dry-run`` first. Refuses to run while a writer holds the directory.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``prune``."""
    from assoc_logger_ros.dataset import select
    parser.add_argument('directory', metavar='DIR',
                        help='sample or shard directory to prune in place')
    parser.add_argument('--dry-run', action='store_true', help='only list what would go')
    parser.add_argument('--invalid', action='store_true',
                        help='also remove samples that fail validation')
    select.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Prune; 0 on success, 1 on error."""
    import sys

    from assoc_logger_ros.dataset import select
    from assoc_logger_ros.dataset.ops import prune_dataset
    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards import layout
    if layout.is_shard_dir(args.directory):
        from assoc_logger_ros.shards.prune import prune_shards as prune_dataset
    try:
        res = prune_dataset(args.directory, select.from_args(args), invalid=args.invalid,
                            dry_run=args.dry_run)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    verb = 'would remove' if args.dry_run else 'removed'
    for name in res['unlisted_removed']:
        print(f'{verb} {name} (not in the manifest)')
    for name, why in res['samples_removed']:
        print(f'{verb} {name} ({why})')
    for name in res['missing_entries_dropped']:
        print(f'{"would drop" if args.dry_run else "dropped"} manifest entry {name} '
              '(file missing)')
    for name in res['not_regular_entries_dropped']:
        print(f'{"would drop" if args.dry_run else "dropped"} manifest entry {name} '
              '(not a regular file; left in place)')
    for line in res['manifest_problems']:
        print(line)
    for name, why in res['not_removed']:
        print(f'WARNING: could not remove {name}: {why}', file=sys.stderr)
    n = len(res['unlisted_removed']) + len(res['samples_removed'])
    if args.dry_run:
        print(f'{res["kept"]} samples would remain; {n} file(s) would be removed (dry run)')
    else:
        print(f'{res["kept"]} samples remain; {n} file(s) removed')
    return 0
