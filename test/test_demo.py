"""The one-command demo: generated bag -> collection -> inspect summary and plots."""

from __future__ import annotations

import json

import pytest

from assoc_logger_ros import cli


def _demo(out, *extra) -> int:
    return cli.main(['demo', '--out', str(out), '--frames', '24', '--walkers', '5', '-q',
                     *extra])


def test_replay_mode_writes_bag_samples_and_plots(tmp_path, capsys):
    """Replay mode: says which path ran, writes valid samples with gt ids, plots and a summary."""
    assert _demo(tmp_path / 'd', '--mode', 'replay') == 0
    out = capsys.readouterr().out
    assert 'collecting with the in-code replay' in out
    assert 'validation:' in out and '0 invalid' in out
    records = [json.loads(line) for line in
               (tmp_path / 'd' / 'samples' / 'manifest.jsonl').read_text().splitlines()]
    assert len(records) > 15 and all(r['has_gt'] for r in records)
    assert list((tmp_path / 'd' / 'report').glob('*.png'))
    assert (tmp_path / 'd' / 'demo_bag' / 'metadata.yaml').is_file()


def test_second_run_reuses_the_bag_and_gives_the_same_samples(tmp_path, capsys):
    """Rerunning keeps the bag and starts from empty samples: the same manifest again."""
    assert _demo(tmp_path / 'd', '--mode', 'replay') == 0
    first = (tmp_path / 'd' / 'samples' / 'manifest.jsonl').read_bytes()
    capsys.readouterr()
    assert _demo(tmp_path / 'd', '--mode', 'replay') == 0
    assert 'using the existing bag' in capsys.readouterr().out
    assert (tmp_path / 'd' / 'samples' / 'manifest.jsonl').read_bytes() == first


def test_refuses_a_foreign_non_empty_folder(tmp_path, capsys):
    """A non-empty folder that the demo did not create is never cleaned."""
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'keep.txt').write_text('x')
    assert _demo(tmp_path / 'mine', '--mode', 'replay') == 1
    assert 'not a demo folder' in capsys.readouterr().err
    assert (tmp_path / 'mine' / 'keep.txt').exists()


@pytest.mark.ros
@pytest.mark.slow
def test_ros_mode_runs_the_node_process(tmp_path, capsys):
    """ROS mode: a tracker_node process processes every published frame and writes samples."""
    assert _demo(tmp_path / 'd', '--mode', 'ros', '--rate', '3') == 0
    out = capsys.readouterr().out
    assert 'collecting through the ROS node' in out
    assert '24 tracks messages back, all processed' in out
    assert 'node exit code' in out  # the node's SIGINT exit status is test_node's contract
    lines = (tmp_path / 'd' / 'samples' / 'manifest.jsonl').read_text().splitlines()
    assert len(lines) > 15
