"""Restore the npz + manifest layout from a shard directory, byte for byte."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``unpack``."""
    parser.add_argument('directory', metavar='SHARDS_DIR', help='shard directory (pack output)')
    parser.add_argument('--out', required=True, metavar='DIR',
                        help='new directory (must not exist or be empty)')


def run(args: argparse.Namespace) -> int:
    """Unpack; 0 on success, 1 on error."""
    import sys

    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards.pack import unpack
    try:
        res = unpack(args.directory, args.out)
    except (DatasetError, OSError) as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    print(f'{res["samples"]} samples -> {res["out"]}')
    for line in res['problems']:
        print(f'  WARNING: {line}')
    return 0
