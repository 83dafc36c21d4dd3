"""``launch/collect.launch.py`` executed: with fake launch modules here, with real ones on ROS.

``launch``/``launch_ros`` are on no package registry, so the fake-module tests put
minimal stand-ins into ``sys.modules`` (they record constructor arguments;
``LaunchConfiguration(name).perform(context)`` reads the context's argument values), import the
launch file, call ``generate_launch_description()`` and run its ``OpaqueFunction`` with a few
argument sets. Where the real ``launch_ros`` imports (a ROS 2 installation, or the tools
``scripts/setup.sh --ros-tools`` installs), the real-import test runs as well, and
test_ros_tools.py runs the launch file for real.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
import sys
import types
from typing import Any

import pytest

from assoc_logger_ros import config

LAUNCH_FILE = Path(__file__).resolve().parents[1] / 'launch' / 'collect.launch.py'


def _real_launch_ros() -> bool:
    try:
        importlib.import_module('launch_ros.actions')
    except ImportError:
        return False
    return True


REAL = _real_launch_ros()


class _Recorded:
    """Base of the fakes: keeps positional and keyword constructor arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


class _LaunchDescription(_Recorded):
    @property
    def entities(self) -> list:
        return list(self.args[0]) if self.args else list(self.kwargs.get('initial_entities', []))


class _LaunchContext:
    def __init__(self, configurations: dict[str, str] | None = None) -> None:
        self.launch_configurations = dict(configurations or {})


class _DeclareLaunchArgument(_Recorded):
    @property
    def name(self) -> str:
        return self.args[0]


class _OpaqueFunction(_Recorded):
    def execute(self, context: _LaunchContext) -> list:
        return self.kwargs['function'](context)


class _LaunchConfiguration:
    def __init__(self, name: str, default: str | None = None) -> None:
        self.name = name
        self.default = default

    def perform(self, context: _LaunchContext) -> str:
        return context.launch_configurations[self.name]


def _fake_modules() -> dict[str, types.ModuleType]:
    launch = types.ModuleType('launch')
    launch.LaunchDescription = _LaunchDescription
    launch.LaunchContext = _LaunchContext
    actions = types.ModuleType('launch.actions')
    actions.DeclareLaunchArgument = _DeclareLaunchArgument
    actions.OpaqueFunction = _OpaqueFunction
    for name in ('ExecuteProcess', 'EmitEvent', 'LogInfo', 'RegisterEventHandler'):
        setattr(actions, name, type(name, (_Recorded,), {}))
    event_handlers = types.ModuleType('launch.event_handlers')
    event_handlers.OnProcessExit = type('OnProcessExit', (_Recorded,), {})
    events = types.ModuleType('launch.events')
    events.Shutdown = type('Shutdown', (_Recorded,), {})
    substitutions = types.ModuleType('launch.substitutions')
    substitutions.LaunchConfiguration = _LaunchConfiguration
    launch.actions, launch.substitutions = actions, substitutions
    launch.event_handlers, launch.events = event_handlers, events
    launch_ros = types.ModuleType('launch_ros')
    ros_actions = types.ModuleType('launch_ros.actions')
    ros_actions.Node = type('Node', (_Recorded,), {})
    ros_actions.LifecycleNode = type('LifecycleNode', (_Recorded,), {})
    launch_ros.actions = ros_actions
    return {'launch': launch, 'launch.actions': actions, 'launch.substitutions': substitutions,
            'launch.event_handlers': event_handlers, 'launch.events': events,
            'launch_ros': launch_ros, 'launch_ros.actions': ros_actions}


def _load_launch_file(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def launch_file(monkeypatch):
    """The launch file imported against the fake modules (also where the real ones exist)."""
    for name, module in _fake_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    return _load_launch_file('collect_launch_under_test')


def _run(launch_file, **given: str) -> tuple[dict[str, str], list]:
    """Declared defaults overridden by ``given``, then the OpaqueFunction's actions."""
    desc = launch_file.generate_launch_description()
    declared = {e.name: e.kwargs['default_value'] for e in desc.entities
                if isinstance(e, _DeclareLaunchArgument)}
    unknown = set(given) - set(declared)
    assert not unknown, f'not declared: {unknown}'
    opaque = [e for e in desc.entities if isinstance(e, _OpaqueFunction)]
    assert len(opaque) == 1
    context = _LaunchContext({**declared, **given})
    return declared, opaque[0].execute(context)


def _split(actions: list) -> tuple[Any, list]:
    """(the node, the player processes); every player has its exit handler registered."""
    nodes = [a for a in actions if type(a).__name__ in ('Node', 'LifecycleNode')]
    procs = [a for a in actions if type(a).__name__ == 'ExecuteProcess']
    handlers = [a for a in actions if type(a).__name__ == 'RegisterEventHandler']
    assert len(nodes) == 1 and len(handlers) == len(procs)
    assert len(nodes) + len(procs) + len(handlers) == len(actions)
    for proc, reg in zip(procs, handlers):
        on_exit = reg.args[0]
        assert on_exit.kwargs['target_action'] is proc
    return nodes[0], procs


@pytest.fixture
def bag_dir(tmp_path, monkeypatch) -> str:
    """A folder that passes the bag check (a metadata.yaml in it), and a decoy ``ros2`` on PATH.

    The decoy is never run: the launch file only looks the player's program up.
    """
    bag = tmp_path / 'run1'
    bag.mkdir()
    (bag / 'metadata.yaml').write_text('rosbag2_bagfile_information: {}\n')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    decoy = bin_dir / 'ros2'
    decoy.write_text('#!/bin/sh\nexit 3\n')
    decoy.chmod(0o755)
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ.get("PATH", "")}')
    return str(bag)


def test_every_setting_is_a_declared_argument_with_empty_default(launch_file):
    """One DeclareLaunchArgument per schema setting (default '' = not given) plus the extras."""
    desc = launch_file.generate_launch_description()
    args = [e for e in desc.entities if isinstance(e, _DeclareLaunchArgument)]
    names = [a.name for a in args]
    assert len(names) == len(set(names))
    for s in config.all_specs():
        assert s.name in names
    by_name = {a.name: a.kwargs for a in args}
    assert by_name['log_dir']['default_value'] == ''
    assert by_name['confidence_threshold']['description']
    assert {'params_file', 'use_sim_time', 'namespace', 'bag', 'bag_rate', 'bag_loop',
            'detections', 'masks', 'image', 'tracks'} <= set(names)


def test_defaults_start_only_the_node_with_no_explicit_parameters(launch_file):
    """Without arguments: the node alone, no params file, only use_sim_time=false, no remaps."""
    _, actions = _run(launch_file)
    node, procs = _split(actions)
    assert procs == []
    kw = node.kwargs
    assert (kw['package'], kw['executable'], kw['name']) == (
        'assoc_logger_ros', 'tracker_node', 'assoc_tracker')
    assert kw['namespace'] == ''
    assert kw['parameters'] == [{'use_sim_time': False}]
    assert kw['remappings'] == []
    stop = (kw['sigterm_timeout'], kw['sigkill_timeout'])  # time for the flush
    assert [(c.name, c.default) for c in stop] == [('sigterm_timeout', '10'),
                                                   ('sigkill_timeout', '10')]


def test_log_dir_seg_enable_and_remaps(launch_file):
    """Given arguments become typed explicit parameters; topic arguments become remaps."""
    _, actions = _run(launch_file, log_dir='/data/assoc', seg_enable='true',
                      confidence_threshold='0.4', namespace='robot1',
                      detections='/yolo/detections', masks='/seg/instances',
                      params_file='/data/my_params.yaml')
    node, procs = _split(actions)
    assert procs == []
    kw = node.kwargs
    assert kw['namespace'] == 'robot1'
    assert kw['parameters'] == [
        '/data/my_params.yaml',
        {'log_dir': '/data/assoc', 'seg_enable': True, 'confidence_threshold': 0.4,
         'use_sim_time': False}]
    assert kw['remappings'] == [('detections', '/yolo/detections'),
                                ('masks', '/seg/instances')]


def test_bag_adds_ros2_bag_play_with_clock_and_sim_time(launch_file, bag_dir):
    """bag:=PATH starts ``ros2 bag play --clock`` beside the node and turns on use_sim_time."""
    _, actions = _run(launch_file, bag=bag_dir)
    node, procs = _split(actions)
    assert len(procs) == 1
    cmd = procs[0].kwargs['cmd']
    assert Path(cmd[0]) == Path(bag_dir).parent / 'bin' / 'ros2'  # found on PATH
    assert cmd[1:] == ['bag', 'play', '--clock', '--rate', '1.0', bag_dir]
    assert node.kwargs['parameters'] == [{'use_sim_time': True}]

    _, actions = _run(launch_file, bag=bag_dir, bag_rate='2', bag_loop='true',
                      use_sim_time='false')
    node, procs = _split(actions)
    assert procs[0].kwargs['cmd'][1:] == ['bag', 'play', '--clock', '--rate', '2.0',
                                          '--loop', bag_dir]
    assert node.kwargs['parameters'] == [{'use_sim_time': False}]


@pytest.mark.parametrize('returncode, words', [(0, 'finished'), (2, 'failed (exit code 2)')])
def test_player_exit_shuts_the_launch_down_with_a_message(launch_file, bag_dir, returncode,
                                                          words):
    """When the player exits, the handler logs why and emits Shutdown with the same reason."""
    _, actions = _run(launch_file, bag=bag_dir)
    handler = next(a for a in actions if type(a).__name__ == 'RegisterEventHandler')
    on_exit = handler.args[0].kwargs['on_exit']
    out = on_exit(types.SimpleNamespace(returncode=returncode), None)
    assert [type(a).__name__ for a in out] == ['LogInfo', 'EmitEvent']
    text = out[0].kwargs['msg']
    assert words in text and 'shutting the launch down' in text
    assert out[1].kwargs['event'].kwargs['reason'] == text


def test_missing_or_wrong_bag_fails_before_starting(launch_file, tmp_path):
    """A bag path that does not exist, or is no rosbag2, stops the launch with one line."""
    with pytest.raises(config.ConfigError, match='no such file or folder'):
        _run(launch_file, bag=str(tmp_path / 'nope'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(config.ConfigError, match='not a rosbag2 folder'):
        _run(launch_file, bag=str(tmp_path / 'empty'))
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(config.ConfigError, match='not a rosbag2 file'):
        _run(launch_file, bag=str(tmp_path / 'notes.txt'))


def test_lifecycle_starts_the_managed_node(launch_file):
    """lifecycle:=true: a LifecycleNode action running tracker_lifecycle_node, same parameters."""
    _, actions = _run(launch_file, lifecycle='true', log_dir='/data/assoc')
    node, procs = _split(actions)
    assert type(node).__name__ == 'LifecycleNode' and procs == []
    assert node.kwargs['executable'] == 'tracker_lifecycle_node'
    assert node.kwargs['name'] == 'assoc_tracker'
    assert node.kwargs['parameters'] == [{'log_dir': '/data/assoc', 'use_sim_time': False}]
    with pytest.raises(config.ConfigError, match='autostart'):
        _run(launch_file, autostart='true')


def test_bad_argument_value_is_a_clear_error(launch_file):
    """An out-of-range or mistyped argument stops the launch with the schema's message."""
    with pytest.raises(config.ConfigError, match='confidence_threshold'):
        _run(launch_file, confidence_threshold='5')
    with pytest.raises(config.ConfigError, match='lifecycle'):
        _run(launch_file, lifecycle='maybe')


@pytest.mark.skipif(not REAL, reason='launch_ros is not installed (fake-module tests ran)')
def test_real_launch_file_imports(bag_dir):
    """With a ROS 2 installation the launch file imports and its actions build.

    In real launch_ros, ``Node`` is a subclass of ``ExecuteProcess``: the player is the one
    ExecuteProcess that is not a Node.
    """
    from launch.actions import (
        DeclareLaunchArgument,
        ExecuteProcess,
        OpaqueFunction,
        RegisterEventHandler,
    )
    from launch_ros.actions import Node

    from launch import LaunchContext, LaunchDescription

    module = _load_launch_file('collect_launch_real')
    desc = module.generate_launch_description()
    assert isinstance(desc, LaunchDescription)
    declared = {e.name: e.default_value for e in desc.entities
                if isinstance(e, DeclareLaunchArgument)}
    assert {s.name for s in config.all_specs()} <= set(declared)
    opaque = [e for e in desc.entities if isinstance(e, OpaqueFunction)]
    assert len(opaque) == 1
    context = LaunchContext()
    context.launch_configurations.update(
        dict.fromkeys(declared, '') | {'bag_rate': '1.0', 'bag_loop': 'false', 'lifecycle': '',
                                           'autostart': '', 'bag': bag_dir, 'seg_enable': 'true'})
    actions = opaque[0].execute(context)
    assert sum(isinstance(a, Node) for a in actions) == 1
    players = [a for a in actions if isinstance(a, ExecuteProcess) and not isinstance(a, Node)]
    assert len(players) == 1
    assert sum(isinstance(a, RegisterEventHandler) for a in actions) == 1
