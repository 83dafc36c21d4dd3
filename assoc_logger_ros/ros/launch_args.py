"""Launch arguments -> node parameters, remappings and the bag player command (no launch import).

``launch/collect.launch.py`` declares one launch argument per schema setting (default '' =
"not given") plus the ones below, and calls these functions, so the mapping is tested without
``launch`` installed. Only arguments actually given become explicit node parameters; everything
else falls through to the params file, then the environment, then the schema default.

Extra launch arguments: ``params_file`` (a ROS params YAML, e.g. ``config/collect.yaml``),
``use_sim_time`` ('' = true when ``bag`` is given, else false), ``namespace``, ``bag`` (a rosbag2
path played with ``ros2 bag play --clock`` beside the node; checked before anything starts, and
the launch shuts down when the player exits), ``bag_rate``, ``bag_loop``, ``lifecycle`` (start
the managed node ``tracker_lifecycle_node``), ``autostart`` (configure and activate it), and the
topic remaps ``detections``, ``masks``, ``image``, ``tracks`` (remap the node's default topic
names, e.g. ``detections:=/camera/detections``).

``python -m assoc_logger_ros.ros.launch_args --write-yaml config/collect.yaml`` regenerates
the defaults file from the schema (``test/test_launch_args.py`` checks it is up to date).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
import os
import shutil
import sys
from typing import Any

from assoc_logger_ros import config

NODE_NAME = 'assoc_tracker'
TOPIC_ARGS = ('detections', 'masks', 'image', 'tracks')
EXTRA_ARGS: dict[str, tuple[str, str]] = {
    'params_file': ('', 'ROS parameters YAML for the node (e.g. the installed collect.yaml); '
                        'its values beat environment variables, explicit arguments beat it.'),
    'use_sim_time': ('', 'Use /clock time; empty: true when bag is given.'),
    'namespace': ('', 'Namespace of the node.'),
    'bag': ('', 'rosbag2 to play beside the node with ros2 bag play --clock.'),
    'bag_rate': ('1.0', 'Playback rate of bag.'),
    'bag_loop': ('false', 'Loop the bag (each restart starts a new session).'),
    'lifecycle': ('false', 'Start the managed (lifecycle) node tracker_lifecycle_node; it waits '
                           'unconfigured for ros2 lifecycle set or a lifecycle manager.'),
    'autostart': ('false', 'With lifecycle: configure and activate the node at start.'),
    'detections': ('', 'Remap the detections input topic.'),
    'masks': ('', 'Remap the instance mask input topic.'),
    'image': ('', 'Remap the image input topic.'),
    'tracks': ('', 'Remap the tracks output topic.'),
}


def launch_arguments() -> list[tuple[str, str, str]]:
    """(name, default, description) of every launch argument, schema settings first."""
    out = [(s.name, '', f'{s.description} (empty: params file, env {s.env_name}, or default '
                        f'{s.default!r})') for s in config.all_specs()]
    out += [(name, default, desc) for name, (default, desc) in EXTRA_ARGS.items()]
    return out


def _truthy(text: str, name: str) -> bool:
    try:
        return config._convert(bool, text)
    except (TypeError, ValueError):
        raise config.ConfigError(f'launch argument {name}={text!r} is not a boolean') from None


def explicit_parameters(args: Mapping[str, str]) -> dict[str, Any]:
    """Typed node parameters for the schema arguments that were given (non-empty)."""
    out: dict[str, Any] = {}
    for s in config.all_specs():
        raw = args.get(s.name, '')
        if raw != '':
            out[s.name] = s.coerce(raw, 'launch argument')
    return out


def use_sim_time(args: Mapping[str, str]) -> bool:
    """Explicit use_sim_time, else true exactly when a bag is played."""
    raw = args.get('use_sim_time', '')
    return _truthy(raw, 'use_sim_time') if raw != '' else bool(args.get('bag', ''))


def node_parameters(args: Mapping[str, str]) -> list[Any]:
    """The ``parameters=`` list of the Node action: params file first, explicit values last."""
    params: list[Any] = []
    if args.get('params_file', ''):
        params.append(args['params_file'])
    params.append({**explicit_parameters(args), 'use_sim_time': use_sim_time(args)})
    return params


def remappings(args: Mapping[str, str]) -> list[tuple[str, str]]:
    """Topic remaps for the given topic arguments."""
    return [(name, args[name]) for name in TOPIC_ARGS if args.get(name, '')]


def lifecycle(args: Mapping[str, str]) -> bool:
    """True when the managed node is wanted (``lifecycle:=true``)."""
    return _truthy(args.get('lifecycle', 'false') or 'false', 'lifecycle')


def autostart(args: Mapping[str, str]) -> bool:
    """True when the launch should configure and activate the managed node."""
    wanted = _truthy(args.get('autostart', 'false') or 'false', 'autostart')
    if wanted and not lifecycle(args):
        raise config.ConfigError('launch argument autostart:=true needs lifecycle:=true')
    return wanted


def executable(args: Mapping[str, str]) -> str:
    """The node's executable: the plain node unless ``lifecycle:=true``."""
    return 'tracker_lifecycle_node' if lifecycle(args) else 'tracker_node'


BAG_SUFFIXES = ('.mcap', '.db3')


def check_bag(path: str) -> None:
    """Fail before anything starts when ``bag`` names no rosbag2 (a clear one-line message)."""
    expanded = os.path.expanduser(path)
    if not os.path.exists(expanded):
        raise config.ConfigError(f'launch argument bag:={path}: no such file or folder')
    if os.path.isdir(expanded):
        try:
            names = os.listdir(expanded)
        except OSError as err:
            raise config.ConfigError(f'launch argument bag:={path}: {err.strerror}') from None
        if 'metadata.yaml' not in names and not any(n.endswith(BAG_SUFFIXES) for n in names):
            raise config.ConfigError(f'launch argument bag:={path}: not a rosbag2 folder '
                                     '(no metadata.yaml, .mcap or .db3 file in it)')
    elif not expanded.endswith(BAG_SUFFIXES):
        raise config.ConfigError(f'launch argument bag:={path}: not a rosbag2 file '
                                 f'(expected a folder or a {" or ".join(BAG_SUFFIXES)} file)')
    elif not os.access(expanded, os.R_OK):
        raise config.ConfigError(f'launch argument bag:={path}: not readable')


def player_exit_message(returncode: int | None, cmd: Sequence[str]) -> str:
    """What the launch says when the bag player exits (it then shuts the launch down)."""
    what = ' '.join(cmd[:3]) if cmd else 'the bag player'
    if returncode == 0:
        return f'{what} finished the bag: shutting the launch down (the node flushes its samples)'
    return (f'{what} failed (exit code {returncode}): shutting the launch down; is rosbag2 '
            'installed (ros2 bag --help) and the bag readable? Without ros2 bag, replay it with '
            'python -m assoc_logger_ros replay BAG')


def resolve_player(cmd: Sequence[str]) -> list[str]:
    """``cmd`` with its program found: on PATH, else beside this interpreter; or a clear error.

    ``ros2 launch`` started by its full path (``.venv/bin/ros2``) has no ``ros2`` on PATH; a
    program that is not there at all would only show up as a traceback once launch runs it.
    """
    found = shutil.which(cmd[0])
    if found is None:
        beside = os.path.join(os.path.dirname(sys.executable), cmd[0])
        found = beside if os.path.isfile(beside) and os.access(beside, os.X_OK) else None
    if found is None:
        raise config.ConfigError(
            f'launch argument bag:={cmd[-1]}: no {cmd[0]} command to play it with (install '
            'rosbag2, or replay it in code: python -m assoc_logger_ros replay BAG)')
    return [found, *cmd[1:]]


def bag_command(args: Mapping[str, str]) -> list[str] | None:
    """``ros2 bag play --clock`` command for the ``bag`` argument, or None (path checked)."""
    bag = args.get('bag', '')
    if not bag:
        return None
    check_bag(bag)
    rate = float(args.get('bag_rate', '1.0') or 1.0)
    if not rate > 0:
        raise config.ConfigError(f'launch argument bag_rate={rate} must be > 0')
    cmd = ['ros2', 'bag', 'play', '--clock', '--rate', repr(rate)]
    if _truthy(args.get('bag_loop', 'false') or 'false', 'bag_loop'):
        cmd.append('--loop')
    cmd.append(bag)
    return cmd


def collect_yaml_text() -> str:
    """``config/collect.yaml``: every setting with its schema default, commented."""
    import yaml

    lines = ['# Parameters of the assoc_tracker node, generated from assoc_logger_ros/config.py',
             '# by: python -m assoc_logger_ros.ros.launch_args --write-yaml '
             'config/collect.yaml',
             '# Values here beat environment variables; launch arguments beat this file.',
             '/**/assoc_tracker:', '  ros__parameters:']
    group = None
    for s in config.all_specs():
        if s.group != group:
            group = s.group
            lines.append(f'    # --- {group}')
        lines.append(f'    # {s.description} ({s.range_text()}; env {s.env_name})')
        value = yaml.safe_dump({s.name: s.default}, default_flow_style=True,
                               width=1000).strip()[1:-1]
        lines.append(f'    {value}')
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    """Write or check the generated defaults file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--write-yaml', metavar='PATH', help='write collect.yaml to PATH')
    args = parser.parse_args(argv)
    text = collect_yaml_text()
    if args.write_yaml:
        with open(args.write_yaml, 'w', encoding='utf-8') as fh:
            fh.write(text)
    else:
        print(text, end='')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
