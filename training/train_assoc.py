"""Association model training entry point (the seed's ``training/train_assoc.py``).

``--inspect`` prints the statistics of a sample directory and validates every sample (the same
as ``python -m assoc_logger_ros inspect DIR``); exit status 1 when a sample is invalid. Training
itself is not part of this package yet.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

try:
    import assoc_logger_ros  # noqa: F401 - installed package or PYTHONPATH
except ImportError:  # run from a source checkout: python training/train_assoc.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run the inspection."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', required=True, help='sample directory (manifest.jsonl)')
    parser.add_argument('--inspect', action='store_true',
                        help='print statistics and validate every sample')
    parser.add_argument('--json', action='store_true', help='statistics as JSON')
    parser.add_argument('--embed-dim', type=int, help='expected embedding width (the cap)')
    args = parser.parse_args(argv)
    if not args.inspect:
        print('ERROR: training is not implemented yet; use --inspect', file=sys.stderr)
        return 2
    import json

    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.dataset.summary import format_text, summarize
    try:
        stats = summarize(args.data, embed_cap=args.embed_dim)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 2
    print(json.dumps(stats, indent=2) if args.json else format_text(stats))
    return 1 if stats['error_count'] else 0


if __name__ == '__main__':
    sys.exit(main())
