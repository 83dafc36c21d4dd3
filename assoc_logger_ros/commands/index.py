"""(Re)build the Parquet index of a shard directory (e.g. one the recorder wrote on board)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``index``."""
    parser.add_argument('directory', metavar='SHARDS_DIR', help='shard directory')


def run(args: argparse.Namespace) -> int:
    """Build the index; 0 on success, 1 on error."""
    import sys

    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards import layout
    from assoc_logger_ros.shards.index import build_index
    if not layout.is_shard_dir(args.directory):
        print(f'ERROR: {args.directory} is not a shard directory', file=sys.stderr)
        return 1
    try:
        path = build_index(args.directory)
    except (DatasetError, OSError) as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    print(path)
    return 0
