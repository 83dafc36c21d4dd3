"""Label accuracy against ground truth: correct, wrong, unverifiable, missed, flip-backs.

Needs samples with ``det_gt_ids`` (``mot2bag --with-gt`` then ``replay``, or the node with
``gt_topic``); ground truth only scores the labels. Prints both definitions (per-frame and the
temporally consistent CLEAR-MOT one, which needs ``gt_boxes``) per session and in total, and how
well ``est_id_switches`` and the offline estimate (``dataset/offline_switches.py``) find the
wrong labels. Exit status 2 when DIR is not a sample
directory, 1 when no sample has ground truth.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``labels``."""
    parser.add_argument('directory', metavar='DIR', help='sample directory (has manifest.jsonl)')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    parser.add_argument('--no-context', action='store_true',
                        help='skip the session-level pass (no offline switch estimate)')


def run(args: argparse.Namespace) -> int:
    """Print the label report."""
    import json
    import sys

    from assoc_logger_ros.dataset.labels import format_text, score_directory
    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.dataset.switch_events import format_events, switch_events
    try:
        report, _, scorers = score_directory(args.directory, context=not args.no_context)
    except DatasetError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 2
    for line in report['context_problems']:
        print(f'WARNING: {line}', file=sys.stderr)
    report['est_id_switches_events'] = switch_events(scorers)
    if not args.no_context:
        report['offline_switch_events'] = switch_events(scorers, offline=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_text(report))
        print(format_events(report['est_id_switches_events']))
        if 'offline_switch_events' in report:
            print(format_events(report['offline_switch_events'],
                                'offline estimate (est_id_switches or a cross-frame jump)'))
    return 0 if report['sessions'] else 1
