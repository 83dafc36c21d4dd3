"""Validate every sample of a directory against the schema; exit 1 on any error.

Also reports what a crash could leave: a torn manifest line, entries whose file is missing,
partial or unlisted sample files (``prune`` or a writer restart repairs those).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``validate``."""
    parser.add_argument('directory', metavar='DIR', help='sample directory (has manifest.jsonl)')
    parser.add_argument('--embed-dim', type=int, help='also check the embedding width')
    parser.add_argument('--quiet', action='store_true', help='print only the summary line')


def run(args: argparse.Namespace) -> int:
    """Validate; 0 when everything is valid, 1 on errors, 2 when DIR is not a dataset."""
    import sys

    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards.tools import summarize_any as summarize  # either layout
    try:
        stats = summarize(args.directory, embed_cap=args.embed_dim)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 2
    if not args.quiet:
        for line in stats['errors']:
            print(line)
        hidden = stats['error_count'] - len(stats['errors'])
        if hidden > 0:
            print(f'... and {hidden} more')
    ok = stats['error_count'] == 0
    print(f'{"OK" if ok else "ERROR"}: {stats["validated"]} samples checked, '
          f'{stats["invalid_samples"]} invalid, {stats["error_count"]} problem(s)')
    return 0 if ok else 1
