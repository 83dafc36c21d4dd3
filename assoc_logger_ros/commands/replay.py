"""Replay a rosbag2 bag (mcap or sqlite3) through the tracker and write samples, without ROS.

Joins masks and images to detection arrays by stamp exactly as the node does (bag time is the
clock), runs the same pipeline and writes the same samples. Deterministic: the session id is
derived from the bag, so the same bag replayed into an empty directory gives byte-identical
samples. Settings: flag > --params YAML > environment variable > default (every setting of the
schema has a flag; see --help), except that a replay does not fsync each sample unless
log_fsync is set (a replay can be rerun after a power cut) and always waits for the writer
instead of dropping samples.

Example:
  python -m assoc_logger_ros replay my_bag --log-dir samples/ --seg-enable
"""

from __future__ import annotations

import argparse
from typing import Any

# Settings that make no sense for a replay: ROS interface only, or fixed by the replay
# (it always waits for the writer instead of dropping).
# gt_topic: the replay has its own --gt-topic (default /gt: bags from mot2bag and the demo
# carry ground truth there), the node's setting defaults to off.
_NOT_FOR_REPLAY = frozenset({'tracks_topic', 'qos_reliability', 'qos_depth',
                             'diagnostics_period_s', 'warn_throttle_s', 'log_wait_when_full',
                             'gt_topic'})


def add_settings_arguments(parser: argparse.ArgumentParser,
                           exclude: frozenset[str] = _NOT_FOR_REPLAY) -> None:
    """One flag per schema setting (``--track-thresh``, ``--seg-enable/--no-seg-enable``...).

    Flags default to None so that only the ones given count as explicit values.
    """
    from assoc_logger_ros.config import all_specs

    groups: dict[str, argparse._ArgumentGroup] = {}
    for s in all_specs():
        if s.name in exclude:
            continue
        group = groups.get(s.group)
        if group is None:
            group = groups[s.group] = parser.add_argument_group(f'{s.group} settings')
        unit = f' [{s.unit}]' if s.unit else ''
        help_text = (f'{s.description}{unit} (default {s.default!r}; env {s.env_name})'
                     .replace('%', '%%'))
        if s.type is bool:
            group.add_argument(s.flag, dest=s.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            metavar = '|'.join(s.choices) if s.choices else s.type.__name__.upper()
            group.add_argument(s.flag, dest=s.name, default=None, metavar=metavar,
                               help=help_text)


def explicit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (raw strings/bools; resolve() checks them)."""
    from assoc_logger_ros.config import all_specs

    return {s.name: getattr(args, s.name) for s in all_specs()
            if getattr(args, s.name, None) is not None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``replay``."""
    parser.add_argument('bag', metavar='BAG', help='rosbag2 directory (mcap or sqlite3)')
    parser.add_argument('--params', metavar='FILE',
                        help="parameters YAML (plain mapping or the node's ros__parameters "
                        'file, e.g. config/collect.yaml)')
    parser.add_argument('--gt-topic', default='/gt', metavar='TOPIC',
                        help='ground-truth Detection2DArray topic (id = identity), used for '
                        'det_gt_ids when present; "" to ignore (default /gt)')
    parser.add_argument('--quiet', '-q', action='store_true',
                        help='no progress bar and no warnings (the summary is still printed)')
    parser.add_argument('--progress', action=argparse.BooleanOptionalAction, default=None,
                        help='force the progress bar on/off (default: on when stderr is a '
                        'terminal)')
    parser.add_argument('--writer-process', action=argparse.BooleanOptionalAction,
                        default=None,
                        help='write samples from a child process so tracking and writing use '
                        'two cores (same files); default: on with 2+ CPUs')
    add_settings_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Replay the bag; 0 on success, 1 on an error (printed as ERROR: ...)."""
    import os
    import sys

    from assoc_logger_ros.bag.replay import ReplayError, replay_bag
    from assoc_logger_ros.config import ConfigError, load_yaml, resolve, spec
    from assoc_logger_ros.recording.writer import RecorderError

    def warn(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        yaml_values = load_yaml(args.params) if args.params else {}
        explicit = explicit_settings(args)
        fsync_default = not ('log_fsync' in explicit or 'log_fsync' in yaml_values
                             or spec('log_fsync').env_name in os.environ)
        if fsync_default:
            # A replay can simply be rerun after a power cut: skip the per-sample fsync (the
            # manifest and directory are still synced every log_sync_period_s and at the end).
            explicit['log_fsync'] = False
        settings = resolve(explicit, yaml_values)
        result = replay_bag(
            args.bag, settings, gt_topic=args.gt_topic,
            warn=None if args.quiet else warn,
            progress=False if args.quiet else args.progress,
            writer_process=args.writer_process)
    except (ConfigError, ReplayError, RecorderError, OSError) as err:
        print(f'ERROR: {err}', file=sys.stderr)
        return 1
    print(result.summary())
    if fsync_default and result.log_dir:
        print('  (replay default: samples are not fsynced one by one; --log-fsync to do so)')
    return 0
