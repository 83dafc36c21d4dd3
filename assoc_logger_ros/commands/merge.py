"""Merge several sample directories (e.g. one per robot) into one, renumbered.

Session ids are kept; one found in several sources is prefixed with its source's directory name.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``merge``."""
    parser.add_argument('directories', metavar='DIR', nargs='+', help='source directories')
    parser.add_argument('--out', required=True, metavar='OUT',
                        help='new directory (must not exist or be empty)')


def run(args: argparse.Namespace) -> int:
    """Merge; 0 on success, 1 on error."""
    import sys

    from assoc_logger_ros.dataset.ops import merge_datasets
    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards.layout import is_shard_dir
    if any(is_shard_dir(d) for d in args.directories):  # any shard source: shard output
        from assoc_logger_ros.shards.tools import merge_any as merge_datasets
    try:
        res = merge_datasets(args.directories, args.out)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    print(f'{res["samples"]} samples from {len(res["sources"])} directories -> {res["out"]} '
          f'({res["linked"]} linked, {res["copied"]} copied, {res["rewritten"]} rewritten)')
    for old, new in sorted(res['renamed_sessions'].items()):
        print(f'  session {old} -> {new}')
    for line in res['manifest_problems']:
        print(f'WARNING: {line}', file=sys.stderr)
    for src, name, why in res['skipped']:
        print(f'WARNING: skipped {src}/{name}: {why}', file=sys.stderr)
    if len(res['embed_dims']) > 1:
        print(f'WARNING: sources used different embedding caps {res["embed_dims"]}; training '
              'code expecting one width needs a filter per cap', file=sys.stderr)
    return 0
