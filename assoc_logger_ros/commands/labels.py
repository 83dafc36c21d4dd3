"""Label accuracy against ground truth: correct, wrong, unverifiable, missed, flip-backs.

Needs samples with ``det_gt_ids`` (``mot2bag --with-gt`` then ``replay``, or the node with
``gt_topic``); ground truth only scores the labels. Prints both definitions (per-frame and the
temporally consistent CLEAR-MOT one, which needs ``gt_boxes``) per session and in total, and how
well ``est_id_switches`` and the offline estimate (``dataset/offline_switches.py``) find the
wrong labels; several directories: one report each. Exit status 2 when a DIR is not a sample
directory, 1 when no sample has ground truth.

``--fit-scorer MODEL`` instead fits a learned label scorer (``dataset/label_scorer.py``) on the
directories' pairs, ground truth labelling which are wrong, and writes it for
``filter --label-scorer``: e.g. ``labels annotated1 annotated2 --fit-scorer scorer.json
--extra-train public/*``.
"""

from __future__ import annotations

import argparse


def _share(text: str) -> float:
    value = float(text)
    if not 0.5 <= value < 1.0:
        raise argparse.ArgumentTypeError(f'{value} is not in [0.5, 1)')
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``labels``."""
    from assoc_logger_ros.commands.filter import jobs_arg
    parser.add_argument('directories', nargs='+', metavar='DIR',
                        help='sample directory (has manifest.jsonl)')
    parser.add_argument('--json', action='store_true', help='print one JSON object per DIR')
    parser.add_argument('--no-context', action='store_true',
                        help='skip the session-level pass (no offline switch estimate)')
    g = parser.add_argument_group('learned label scorer (for filter --label-scorer)')
    g.add_argument('--fit-scorer', metavar='MODEL',
                   help='fit a scorer on the pairs of every DIR and write it to MODEL (JSON)')
    g.add_argument('--extra-train', nargs='+', default=[], metavar='DIR2',
                   help='more directories with ground truth that only train the scorer (public '
                   'data, say); the threshold is set on the DIR sessions alone')
    g.add_argument('--kept', type=_share, default=0.955,
                   help='share of the right labels the threshold keeps on DIR sessions the '
                   'model has not seen, out of fold (default: 0.955)')
    g.add_argument('--jobs', type=jobs_arg, default=1, metavar='N',
                   help='processes for the re-tracking runs of the session evidence; 0: one '
                   'per CPU (default: 1)')


def run(args: argparse.Namespace) -> int:
    """Print the label report, or fit and write the scorer."""
    import json
    import sys

    from assoc_logger_ros.dataset.labels import format_text, score_directory
    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.dataset.switch_events import format_events, switch_events
    if args.fit_scorer:
        return _fit(args)
    reports, status = [], 1
    for directory in args.directories:
        try:
            report, _, scorers = score_directory(directory, context=not args.no_context)
        except DatasetError as exc:
            print(f'ERROR: {exc}', file=sys.stderr)
            return 2
        for line in report['context_problems']:
            print(f'WARNING: {line}', file=sys.stderr)
        report['est_id_switches_events'] = switch_events(scorers)
        if not args.no_context:
            report['offline_switch_events'] = switch_events(scorers, offline=True)
        status = 0 if report['sessions'] else status
        reports.append(report)
    for report in reports:
        if args.json:
            print(json.dumps(report, indent=2))
            continue
        if len(reports) > 1:
            print(f'# {report["directory"]}')
        print(format_text(report))
        print(format_events(report['est_id_switches_events']))
        if 'offline_switch_events' in report:
            print(format_events(report['offline_switch_events'],
                                'offline estimate (est_id_switches or a cross-frame jump)'))
    return status


def _fit(args: argparse.Namespace) -> int:
    """Fit the scorer on DIR (calibration) and --extra-train (training only); 0, 1 or 2."""
    import sys

    import numpy as np

    from assoc_logger_ros.dataset.label_scorer import (
        DEFAULT_FEATURES,
        DEFINITIONS,
        ScorerError,
        fit_scorer,
        format_fit,
    )
    from assoc_logger_ros.dataset.labels import score_directory
    from assoc_logger_ros.dataset.store import DatasetError
    keys = (*DEFAULT_FEATURES, *DEFINITIONS.values(), 'group')
    tables: list[dict[str, np.ndarray]] = []
    calibrate: list[np.ndarray] = []
    sources = [(d, True) for d in args.directories] + [(d, False) for d in args.extra_train]
    for n, (directory, cal) in enumerate(sources):
        try:
            _, pairs, _ = score_directory(directory, pairs=True, context=True, retrack=True,
                                          jobs=args.jobs)
        except DatasetError as exc:
            print(f'ERROR: {exc}', file=sys.stderr)
            return 2
        assert pairs is not None
        if not pairs.get('verdict', np.zeros(0)).size:
            print(f'WARNING: {directory}: no matched pair with ground truth', file=sys.stderr)
            continue
        rows = pairs['verdict'].size
        table = {k: pairs[k] if k in pairs else np.full(rows, np.nan) for k in keys}
        table['group'] = np.char.add(f'{n}:', table['group'].astype(str))
        tables.append(table)
        calibrate.append(np.full(rows, cal))
    if not tables:
        print('ERROR: no matched pair with ground truth in any directory', file=sys.stderr)
        return 1
    pooled = {k: np.concatenate([t[k] for t in tables]) for k in keys}
    try:
        scorer = fit_scorer(pooled, calibrate=np.concatenate(calibrate), kept=args.kept)
        scorer.save(args.fit_scorer)
    except ScorerError as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 1
    except OSError as exc:
        print(f'ERROR: cannot write {args.fit_scorer}: {exc.strerror or exc}', file=sys.stderr)
        return 1
    print(format_fit(scorer))
    print(f'-> {args.fit_scorer}')
    return 0
