"""Association model training entry point (the seed's ``training/train_assoc.py``).

``--inspect`` prints the statistics of a sample directory and validates every sample (the same
as ``python -m assoc_logger_ros inspect DIR``); exit status 1 when a sample is invalid. Without
it, trains: the same as ``python -m assoc_logger_ros train --data DIR --out MODEL_DIR``, whose
flags (``--epochs``, ``--seed``, ``--arch``...) are passed through; ``--out`` defaults to
``assoc_model``.
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
    parser.add_argument('--data', required=True, nargs='+',
                        help='sample directory (manifest.jsonl); several to train on all')
    parser.add_argument('--inspect', action='store_true',
                        help='print statistics and validate every sample')
    parser.add_argument('--json', action='store_true', help='statistics as JSON')
    parser.add_argument('--embed-dim', type=int, help='expected embedding width (the cap)')
    parser.add_argument('--out', default='assoc_model',
                        help='training: model folder (default assoc_model)')
    args, rest = parser.parse_known_args(argv)
    if not args.inspect:
        from assoc_logger_ros.cli import main as cli_main
        extra = ['--embed-dim', str(args.embed_dim)] if args.embed_dim is not None else []
        return cli_main(['train', '--data', *args.data, '--out', args.out, *extra, *rest])
    if rest:
        parser.error(f'unrecognized arguments: {" ".join(rest)}')
    if len(args.data) != 1:
        parser.error('--inspect takes one --data directory')
    import json

    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.dataset.summary import format_text, summarize
    try:
        stats = summarize(args.data[0], embed_cap=args.embed_dim)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 2
    print(json.dumps(stats, indent=2) if args.json else format_text(stats))
    return 1 if stats['error_count'] else 0


if __name__ == '__main__':
    sys.exit(main())
