"""PNG plots of a sample directory: counts, cost and visibility distributions, matched pairs."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``report``."""
    parser.add_argument('directory', metavar='DIR', help='sample directory')
    parser.add_argument('--out', metavar='DIR', help='where the PNGs go (default DIR/report)')
    parser.add_argument('--max-samples', type=int, default=2000,
                        help='sample files read for the distributions (evenly spaced)')


def run(args: argparse.Namespace) -> int:
    """Write the plots; 0 on success, 1 on error."""
    from pathlib import Path
    import sys

    from assoc_logger_ros.dataset.plots import report
    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards.layout import is_shard_dir
    try:
        source = None
        if is_shard_dir(args.directory):
            from assoc_logger_ros.shards.source import ShardSource
            source = ShardSource(Path(args.directory))
        files = report(args.directory, args.out, max_samples=args.max_samples, source=source)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    for path in files:
        print(path)
    return 0
