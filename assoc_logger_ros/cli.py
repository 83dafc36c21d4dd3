"""``python -m assoc_logger_ros COMMAND``: argument parsing only.

Each command lives in ``assoc_logger_ros/commands/<module>.py`` and provides
``add_arguments(parser)`` and ``run(args) -> int``; its module docstring's first line is the help
text. Command modules keep heavy imports inside ``run`` so that ``--help`` and unrelated commands
stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> module under assoc_logger_ros.commands
COMMANDS: dict[str, str] = {
    'mot': 'mot',
    'eval': 'evaluate',
    'inspect': 'inspect',
    'validate': 'validate',
    'filter': 'filter',
    'prune': 'prune',
    'merge': 'merge',
    'report': 'report',
    'labels': 'labels',
    'replay': 'replay',
    'mot2bag': 'mot2bag',
    'demo': 'demo',
    'pack': 'pack',
    'unpack': 'unpack',
    'index': 'index',
    'select': 'select',
    'train': 'train',
    'assoc-eval': 'assoc_eval',
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per available command."""
    parser = argparse.ArgumentParser(
        prog='python -m assoc_logger_ros',
        description='Track objects and collect association samples (ROS-free tools).')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f'assoc_logger_ros.commands.{module_name}')
        doc = (module.__doc__ or name).strip().splitlines()[0]
        p = sub.add_parser(name, help=doc, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130
