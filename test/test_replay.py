"""Bag replay: valid, deterministic samples; joins as the node; ground truth; the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path
import re

import numpy as np
import pytest

from assoc_logger_ros import cli
from assoc_logger_ros.bag import bagio
from assoc_logger_ros.bag.replay import (
    Progress,
    ReplayError,
    match_gt,
    replay_bag,
    session_id_for,
)
from assoc_logger_ros.config import resolve
from assoc_logger_ros.recording.npzfile import load
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

MS = 1_000_000
SEG = {'seg_enable': True, 'embedding_source': 'color_hist'}


@pytest.fixture(scope='module')
def scene():
    """A small generated scene (walkers crossing, occlusions)."""
    return generate_scene(SceneConfig(seed=3, num_frames=36, width=320, height=240,
                                      num_walkers=6))


@pytest.fixture(scope='module')
def scene_bags(scene, tmp_path_factory):
    """The scene as an mcap and an sqlite3 bag, both named ``walk``; masks arrive 10 ms late."""
    root = tmp_path_factory.mktemp('bags')
    out = {}
    for storage in bagio.STORAGES:
        path = root / storage / 'walk'
        path.parent.mkdir()
        bagio.write_scene(scene, path, storage=storage, side_delay_ns=10 * MS)
        out[storage] = path
    return out


def _settings(log_dir: Path | str, **extra):
    return resolve({'log_dir': str(log_dir), **extra}, env={})


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_replay_writes_valid_samples(scene_bags, tmp_path):
    """Every written sample passes the schema validation and is listed in the manifest."""
    result = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'a', **SEG))
    assert result.frames == 36
    assert result.samples_written > 30 and result.samples_dropped == 0
    lines = (tmp_path / 'a' / 'manifest.jsonl').read_text().splitlines()
    assert len(lines) == result.samples_written
    for line in lines:
        assert validate(tmp_path / 'a' / json.loads(line)['npz']) == []
    assert result.join == {**result.join, 'mask_joined': 36, 'image_joined': 36}


def test_second_run_is_byte_identical(scene_bags, tmp_path):
    """The same bag replayed into two empty directories gives the same bytes, file by file."""
    replay_bag(scene_bags['mcap'], _settings(tmp_path / 'a', **SEG))
    replay_bag(scene_bags['mcap'], _settings(tmp_path / 'b', **SEG))
    a, b = _files(tmp_path / 'a'), _files(tmp_path / 'b')
    assert len(a) > 30
    assert a == b


def test_mcap_and_sqlite3_give_the_same_samples(scene_bags, tmp_path):
    """Storage format does not matter: same bag content, same sample bytes.

    (The derived session ids differ, by the bags' fingerprints, so one is given.)
    """
    replay_bag(scene_bags['mcap'], _settings(tmp_path / 'a', session_id='s', **SEG))
    replay_bag(scene_bags['sqlite3'], _settings(tmp_path / 'b', session_id='s', **SEG))
    assert _files(tmp_path / 'a') == _files(tmp_path / 'b')


def test_fast_decoder_and_rosbags_give_the_same_samples(scene_bags, tmp_path):
    """The numpy CDR path and rosbags' decoder produce identical samples."""
    fast = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'a'))
    slow = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'b'), fast_decode=False)
    assert (fast.decoder, slow.decoder) == ('numpy CDR', 'rosbags')
    assert _files(tmp_path / 'a') == _files(tmp_path / 'b')


def test_process_and_thread_writers_write_the_same_files(scene_bags, tmp_path):
    """The child-process writer (default on 2+ CPUs) writes exactly what the thread writer does."""
    proc = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'a', **SEG), writer_process=True)
    thread = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'b', **SEG),
                        writer_process=False)
    assert (proc.writer, thread.writer) == ('process', 'thread')
    assert proc.samples_written == thread.samples_written > 30
    assert _files(tmp_path / 'a') == _files(tmp_path / 'b')


def test_session_id_is_derived_from_the_bag(scene_bags, tmp_path):
    """Session = bag name + bag start time, stored in every sample; a configured one wins."""
    result = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'a'))
    assert re.fullmatch(r'walk-1700000000000000000-[0-9a-f]{8}', result.session_id)
    first = json.loads((tmp_path / 'a' / 'manifest.jsonl').read_text().splitlines()[0])
    assert first['session'] == result.session_id
    mine = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'b', session_id='run7'))
    assert mine.session_id == 'run7'
    assert re.fullmatch(r'my_bag-5-[0-9a-f]{8}', session_id_for(tmp_path / 'my bag!', 5))


def test_session_ids_differ_between_bags_of_one_name(scene_bags, tmp_path):
    """Two bags both called ``bag`` with the same start: other ids; a copy keeps its id."""
    import shutil
    a, b, c = tmp_path / 'x' / 'bag', tmp_path / 'y' / 'bag', tmp_path / 'z' / 'bag'
    shutil.copytree(scene_bags['mcap'], a)
    shutil.copytree(scene_bags['sqlite3'], b)
    shutil.copytree(scene_bags['mcap'], c)
    ids = [session_id_for(p, 1700000000000000000) for p in (a, b, c)]
    assert ids[0] != ids[1]
    assert ids[0] == ids[2] == session_id_for(a, 1700000000000000000)


def test_ground_truth_labels_follow_the_scene(scene, scene_bags, tmp_path):
    """det_gt_ids from /gt (IoU >= 0.5) agree with the scene's own labels for >= 90%."""
    result = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'a'))
    assert result.gt_frames == 36
    by_stamp = {f.stamp_ns: f for f in scene.frames}
    agree = total = 0
    for line in (tmp_path / 'a' / 'manifest.jsonl').read_text().splitlines():
        rec = json.loads(line)
        s = load(tmp_path / 'a' / rec['npz'])
        truth = by_stamp[rec['stamp_ns']].det_gt_ids[s['det_source_index']]
        agree += int((s['det_gt_ids'] == truth).sum())
        total += truth.size
    assert total > 100 and agree / total >= 0.9


def test_match_gt_is_one_to_one_with_iou_threshold():
    """Each gt box labels at most one detection, only at IoU >= 0.5; others get -1."""
    dets = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    gt = np.array([[0, 0, 10, 10], [52, 52, 70, 70]], float)
    assert match_gt(dets, gt, np.array([4, 9])).tolist() == [4, -1, -1]


def _side_bag(path: Path, mask_delay_ms: list[int | None]) -> None:
    """Frames 33 ms apart, each with a mask ``delay`` ms after it (None: no mask)."""
    with bagio.BagWriter(path) as bag:
        for k, delay in enumerate(mask_delay_ms):
            t = 1_000 * MS + k * 33 * MS
            boxes = np.array([[10.0 + k, 10.0, 40.0 + k, 70.0]])
            bag.write_detections(t, boxes, [0.9])
            if delay is not None:
                mask = np.zeros((120, 160), np.uint8)
                mask[10:70, 10 + k:40 + k] = 1
                bag.write(bagio.TOPIC_MASKS, bagio.image(t, mask, 'mono8'), t + delay * MS)


def test_late_and_missing_masks_are_counted(tmp_path):
    """A mask later than the tolerance or absent is a counted miss; the frame is still tracked."""
    _side_bag(tmp_path / 'bag', [5, 5, 80, None, 5, 5])
    result = replay_bag(tmp_path / 'bag', _settings('', seg_enable=True))
    assert result.frames == 6
    assert result.join['mask_joined'] == 4
    assert result.join['mask_misses'] == 2
    assert any('without a mask' in reason and n == 2 for reason, n in result.skipped.items())


def test_bad_mask_is_skipped_with_a_warning(tmp_path):
    """A mask of an unsupported encoding is counted, warned about, and the frame tracked."""
    with bagio.BagWriter(tmp_path / 'bag') as bag:
        for k in range(3):
            t = MS + k * 33 * MS
            bag.write_detections(t, [[10.0 + k, 10, 40 + k, 70]], [0.9])
            mask = bagio.image(t, np.zeros((60, 80), np.uint8), 'mono8')
            if k == 1:
                mask.encoding = 'bgr8'  # wrong for a label image (and the wrong size)
            bag.write(bagio.TOPIC_MASKS, mask)
    lines = []
    result = replay_bag(tmp_path / 'bag', _settings('', seg_enable=True), warn=lines.append)
    assert result.frames == 3
    assert result.skipped == {'bad mask messages': 1}
    assert any('bgr8' in line for line in lines)


def test_mask_tolerance_setting_decides_the_join(tmp_path):
    """With a 100 ms tolerance the 80 ms late mask joins too (same rule as the node)."""
    _side_bag(tmp_path / 'bag', [5, 5, 80, None, 5, 5])
    result = replay_bag(tmp_path / 'bag',
                        _settings('', seg_enable=True, mask_tolerance_s=0.1))
    assert result.join['mask_joined'] == 5


def test_masks_ignored_without_seg_enable(tmp_path):
    """Without seg_enable the masks topic is not read, and the summary says so."""
    _side_bag(tmp_path / 'bag', [5, 5])
    result = replay_bag(tmp_path / 'bag', _settings(''))
    assert result.skipped == {'on /masks (not used)': 2}


def test_backwards_stamps_start_a_new_session(tmp_path):
    """A bag whose stamps restart (a looped recording) resets the tracker: two sessions."""
    with bagio.BagWriter(tmp_path / 'bag') as bag:
        for k in range(20):
            t = (k % 10) * 33 * MS + MS
            bag.write(bagio.TOPIC_DETECTIONS, bagio.detection_array(
                t, [[10.0 + k % 10, 10, 40 + k % 10, 70]], [0.9]), log_ns=MS + k * 33 * MS)
    result = replay_bag(tmp_path / 'bag', _settings(tmp_path / 'log'))
    assert result.sessions == 2
    sessions = {json.loads(line)['session'] for line in
                (tmp_path / 'log' / 'manifest.jsonl').read_text().splitlines()}
    assert sessions == {result.session_id, result.session_id + '.2'}


def test_tiny_writer_queue_never_drops(scene_bags, tmp_path):
    """Replay waits for the writer instead of dropping: queue size 1 still writes every sample."""
    full = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'a'))
    tiny = replay_bag(scene_bags['mcap'], _settings(tmp_path / 'b', log_queue_size=1))
    assert tiny.samples_dropped == 0
    assert tiny.samples_written == full.samples_written


def test_missing_detections_topic_is_a_clear_error(scene_bags):
    """Asking for a topic the bag lacks names the topics it has."""
    with pytest.raises(ReplayError, match='/masks'):
        replay_bag(scene_bags['mcap'], _settings(''), detections_topic='/nothing')


def test_cli_replay_prints_summary(scene_bags, tmp_path, capsys):
    """``replay BAG --log-dir DIR`` with schema flags writes samples and prints the summary."""
    code = cli.main(['replay', str(scene_bags['sqlite3']), '--log-dir', str(tmp_path / 'a'),
                     '--seg-enable', '--embedding-source', 'color_hist', '--quiet'])
    out = capsys.readouterr().out
    assert code == 0
    assert 'frames' in out and 'matched pairs' in out and 'est_id_switches' in out
    assert 'joined: mask 36, image 36' in out
    assert 'not fsynced one by one' in out  # the replay's own log_fsync default


def test_cli_log_fsync_setting_overrides_replay_default(scene_bags, tmp_path, capsys,
                                                        monkeypatch):
    """log_fsync given by flag or environment variable is used as given (no replay default)."""
    assert cli.main(['replay', str(scene_bags['mcap']), '--log-dir', str(tmp_path / 'a'),
                     '--log-fsync', '-q']) == 0
    assert 'not fsynced' not in capsys.readouterr().out
    monkeypatch.setenv('ASSOC_LOG_FSYNC', '1')
    assert cli.main(['replay', str(scene_bags['mcap']), '--log-dir', str(tmp_path / 'b'),
                     '-q']) == 0
    assert 'not fsynced' not in capsys.readouterr().out


def test_cli_flag_beats_params_file(scene_bags, tmp_path, capsys):
    """Precedence: an explicit flag overrides the params YAML (the node's file format)."""
    params = tmp_path / 'p.yaml'
    params.write_text('assoc_tracker:\n  ros__parameters:\n    log_dir: ""\n'
                      '    session_id: from_yaml\n')
    assert cli.main(['replay', str(scene_bags['mcap']), '--params', str(params), '-q']) == 0
    assert 'session: from_yaml' in capsys.readouterr().out
    assert cli.main(['replay', str(scene_bags['mcap']), '--params', str(params), '-q',
                     '--session-id', 'from_flag']) == 0
    assert 'session: from_flag' in capsys.readouterr().out


def test_cli_bad_value_fails_with_message(scene_bags, capsys):
    """An out-of-range flag exits 1 with the schema's message, before reading the bag."""
    code = cli.main(['replay', str(scene_bags['mcap']), '--track-thresh', '2', '-q'])
    assert code == 1
    assert 'track_thresh' in capsys.readouterr().err


def test_cli_missing_bag_fails_with_message(tmp_path, capsys):
    """A bag path that does not exist is an ERROR line and exit status 1."""
    assert cli.main(['replay', str(tmp_path / 'none'), '--log-dir', '', '-q']) == 1
    assert 'does not exist' in capsys.readouterr().err


def test_progress_bar_shows_rate_and_eta():
    """The progress line carries done/total, a rate and an ETA; disabled means silent."""
    stream = io.StringIO()
    bar = Progress(100, stream, enabled=True)
    bar.update(50, force=True)
    bar.close(100)
    text = stream.getvalue()
    assert '50/100' in text and '/s' in text and 'ETA' in text and text.endswith('\n')
    quiet = io.StringIO()
    Progress(100, quiet, enabled=False).update(5, force=True)
    assert quiet.getvalue() == ''
