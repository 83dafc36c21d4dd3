"""Pack a sample directory into tar shards plus a Parquet index (``unpack`` restores it).

Writes ``OUT/shard-NNNNNN.tar`` (WebDataset layout: ``KEY.npz`` + ``KEY.json`` per sample,
keyed by session and frame; each shard atomic and indexed) and ``OUT/index/`` (Parquet, one
row per sample, every manifest field a column, partitioned by session). docs/shards.md.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``pack``."""
    parser.add_argument('directory', metavar='DIR', help='sample directory (or shard directory)')
    parser.add_argument('--out', required=True, metavar='SHARDS_DIR',
                        help='new directory (must not exist or be empty)')
    parser.add_argument('--shard-mb', type=float, default=256.0,
                        help='largest shard size in MiB (default 256)')
    parser.add_argument('--no-index', action='store_true',
                        help='skip the Parquet index (build it later with `index`)')


def run(args: argparse.Namespace) -> int:
    """Pack; 0 on success, 1 on error."""
    import sys

    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards.pack import pack
    if not 0.001 <= args.shard_mb <= 1e6:
        print('ERROR: --shard-mb must be in [0.001, 1e6]', file=sys.stderr)
        return 1
    try:
        res = pack(args.directory, args.out, shard_mb=args.shard_mb, index=not args.no_index)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    print(f'{res["samples"]} samples -> {res["shards"]} shard(s) in {res["out"]} '
          f'({res["bytes"] / 2**20:.1f} MiB); index: {res["index"] or "none"}')
    for line in res['skipped'] + res['problems']:
        print(f'  skipped: {line}')
    return 0
