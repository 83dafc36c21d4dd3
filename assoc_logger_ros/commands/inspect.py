"""Statistics of a sample directory, with every sample validated.

Prints samples, feature and embedding widths, tracks and detections per sample, matched pairs
against the seed's 5-10k target, sessions and validation errors. Exit status 0 (use ``validate``
for a failing status on errors), 2 when DIR is not a sample directory.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``inspect``."""
    parser.add_argument('directory', metavar='DIR', help='sample directory (has manifest.jsonl)')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    parser.add_argument('--no-validate', action='store_true',
                        help='manifest only: skip reading the sample files (fast)')
    parser.add_argument('--embed-dim', type=int, help='also check the embedding width')


def run(args: argparse.Namespace) -> int:
    """Print the statistics."""
    import json
    import sys

    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.dataset.summary import format_text
    from assoc_logger_ros.shards.tools import summarize_any as summarize  # either layout
    try:
        stats = summarize(args.directory, load=not args.no_validate, embed_cap=args.embed_dim)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 2
    print(json.dumps(stats, indent=2) if args.json else format_text(stats))
    return 0
