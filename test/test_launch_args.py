"""collect.launch.py's argument mapping and config/collect.yaml, tested without launch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from assoc_logger_ros import config
from assoc_logger_ros.ros import launch_args as la

ROOT = Path(__file__).resolve().parents[1]


def test_collect_yaml_is_generated_from_schema():
    """config/collect.yaml is exactly what the generator writes from config.py."""
    assert (ROOT / 'config' / 'collect.yaml').read_text() == la.collect_yaml_text(), (
        'regenerate: python -m assoc_logger_ros.ros.launch_args '
        '--write-yaml config/collect.yaml')


def test_collect_yaml_values_equal_schema_defaults():
    """Loading collect.yaml gives every setting with its default value and type."""
    values = config.load_yaml(ROOT / 'config' / 'collect.yaml')
    defaults = {s.name: s.default for s in config.all_specs()}
    assert values == defaults
    assert all(type(values[k]) is type(v) for k, v in defaults.items())


def test_every_setting_is_a_launch_argument():
    """Each schema setting plus the seed/extra arguments is declared, names unique."""
    names = [n for n, _, _ in la.launch_arguments()]
    assert len(names) == len(set(names))
    for required in ('log_dir', 'log_embed_dim', 'appear_memory_enable',
                     'confidence_threshold', 'seg_enable', 'diag', 'params_file',
                     'use_sim_time', 'namespace', 'bag', 'detections', 'masks', 'tracks'):
        assert required in names
    assert {s.name for s in config.all_specs()} <= set(names)


def test_only_given_arguments_become_explicit_parameters():
    """Empty launch arguments are not passed, so YAML/env/defaults still apply to them."""
    params = la.node_parameters({'seg_enable': 'true', 'confidence_threshold': '0.3',
                                 'log_dir': ''})
    assert params == [{'seg_enable': True, 'confidence_threshold': 0.3,
                       'use_sim_time': False}]


def test_params_file_comes_before_explicit_values():
    """The params file is listed first so explicit values override it."""
    params = la.node_parameters({'params_file': '/p.yaml', 'log_embed_dim': '64'})
    assert params[0] == '/p.yaml'
    assert params[1]['log_embed_dim'] == 64


def test_bad_launch_argument_is_a_config_error():
    """An out-of-range argument fails with the schema's message."""
    with pytest.raises(config.ConfigError, match='confidence_threshold'):
        la.node_parameters({'confidence_threshold': '2'})


def test_bag_starts_player_with_clock_and_sim_time(tmp_path):
    """bag:=PATH plays the bag with --clock and turns use_sim_time on by default."""
    bag = tmp_path / 'run.mcap'
    bag.write_bytes(b'')
    args = {'bag': str(bag), 'bag_rate': '2', 'bag_loop': 'true'}
    assert la.bag_command(args) == ['ros2', 'bag', 'play', '--clock', '--rate', '2.0',
                                    '--loop', str(bag)]
    assert la.node_parameters(args)[-1]['use_sim_time'] is True
    assert la.node_parameters({**args, 'use_sim_time': 'false'})[-1]['use_sim_time'] is False
    assert la.bag_command({}) is None


def test_bag_path_is_checked_before_anything_starts(tmp_path):
    """A missing bag, an empty folder or an unreadable file: a one-line ConfigError."""
    with pytest.raises(config.ConfigError, match='no such file or folder'):
        la.bag_command({'bag': str(tmp_path / 'missing')})
    with pytest.raises(config.ConfigError, match='not a rosbag2 folder'):
        la.bag_command({'bag': str(tmp_path)})
    (tmp_path / 'metadata.yaml').write_text('{}')
    assert la.bag_command({'bag': str(tmp_path)})[-1] == str(tmp_path)


def test_player_program_is_found_on_path_or_beside_python(tmp_path, monkeypatch):
    """PATH first, then this interpreter's folder (ros2 launch run by full path); else an error."""
    empty = tmp_path / 'empty'
    empty.mkdir()
    venv_bin = tmp_path / 'venv' / 'bin'
    venv_bin.mkdir(parents=True)
    monkeypatch.setenv('PATH', str(empty))
    monkeypatch.setattr(la.sys, 'executable', str(venv_bin / 'python'))
    cmd = ['ros2', 'bag', 'play', '--clock', '/data/run']
    with pytest.raises(config.ConfigError, match='no ros2 command to play it'):
        la.resolve_player(cmd)
    decoy = venv_bin / 'ros2'  # never run, only found
    decoy.write_text('#!/bin/sh\nexit 3\n')
    decoy.chmod(0o755)
    assert la.resolve_player(cmd) == [str(decoy), *cmd[1:]]


def test_player_exit_message_says_finished_or_failed():
    """The launch's message when the player exits names the outcome and what happens next."""
    cmd = ['ros2', 'bag', 'play', '--clock', 'x']
    assert 'ros2 bag play finished' in la.player_exit_message(0, cmd)
    failed = la.player_exit_message(2, cmd)
    assert 'failed (exit code 2)' in failed and 'shutting the launch down' in failed


def test_lifecycle_argument_picks_the_managed_executable():
    """lifecycle:=true -> tracker_lifecycle_node; autostart needs lifecycle."""
    assert la.executable({}) == 'tracker_node'
    assert la.executable({'lifecycle': 'true'}) == 'tracker_lifecycle_node'
    assert la.autostart({'lifecycle': 'true', 'autostart': 'true'}) is True
    with pytest.raises(config.ConfigError, match='needs lifecycle'):
        la.autostart({'autostart': 'true'})


def test_topic_arguments_become_remaps():
    """Given topic arguments remap the node's default topic names."""
    assert la.remappings({'detections': '/cam/dets', 'masks': '', 'tracks': '/t'}) == [
        ('detections', '/cam/dets'), ('tracks', '/t')]


def test_launch_file_imports_where_launch_is_installed():
    """collect.launch.py builds a LaunchDescription (skipped without launch/launch_ros)."""
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    path = ROOT / 'launch' / 'collect.launch.py'
    spec = importlib.util.spec_from_file_location('collect_launch', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    desc = module.generate_launch_description()
    assert len(desc.entities) == len(la.launch_arguments()) + 1


def test_launch_file_parses_without_launch():
    """The launch file is at least valid Python that only uses launch_args for the mapping."""
    source = (ROOT / 'launch' / 'collect.launch.py').read_text()
    compile(source, 'collect.launch.py', 'exec')
    assert 'launch_args.node_parameters' in source and 'launch_args.bag_command' in source
