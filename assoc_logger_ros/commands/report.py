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
    import sys

    from assoc_logger_ros.dataset.plots import report
    from assoc_logger_ros.dataset.store import DatasetError
    try:
        files = report(args.directory, args.out, max_samples=args.max_samples)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    for path in files:
        print(path)
    return 0
