"""Select samples from many shard directories with a DuckDB SQL WHERE clause (fleet-wide).

Example: ``select robot1 robot2 --out picked --where "matched_pairs >= 5 AND has_gt"``.
Columns are the manifest fields plus shard, key, offset, size and dataset (docs/shards.md).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``select``."""
    parser.add_argument('directories', metavar='SHARDS_DIR', nargs='+',
                        help='shard directories with a Parquet index')
    parser.add_argument('--where', required=True, metavar='SQL',
                        help='DuckDB boolean expression over the index columns')
    parser.add_argument('--out', metavar='DIR',
                        help='new shard directory for the selection (default: print counts)')
    parser.add_argument('--shard-mb', type=float, default=256.0, help='shard size in MiB')


def run(args: argparse.Namespace) -> int:
    """Select; 0 on success, 1 on error (bad SQL included)."""
    import sys

    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards import fleet
    try:
        if args.out:
            res = fleet.select_to_shards(args.directories, args.where, args.out,
                                         shard_mb=args.shard_mb)
            print(f'{res["selected"]} samples -> {res["out"]} ({res["shards"]} shard(s))')
        else:
            rows = fleet.select(args.directories, args.where)
            print(f'{len(rows)} samples selected')
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - duckdb's errors (bad SQL): one line, survived
        if type(exc).__module__.split('.')[0] not in ('duckdb', '_duckdb'):
            raise
        print(f'ERROR: {str(exc).splitlines()[0]}', file=sys.stderr)
        return 1
    return 0
