"""Degraded start, bounded work and visible stalls/drops of the tracker node (real rclpy)."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_node import Harness, _run_node_process, harness_factory, walk  # noqa: F401

from assoc_logger_ros.config import resolve
from assoc_logger_ros.pipeline import Pipeline
from assoc_logger_ros.recording import lock as lock_mod
from assoc_logger_ros.recording.lock import DirectoryLock, RecorderError
from assoc_logger_ros.ros.health import NodeHealth

T = lambda k: 10**9 + k * 33_333_333  # noqa: E731
WARN = b'\x01'  # DiagnosticStatus.WARN


@contextlib.contextmanager
def full_disk(root: Path):
    """A 64 KiB tmpfs under ``root``, filled to the last byte; unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which('mount') is None:
        pytest.skip('needs root to mount a tiny tmpfs')
    mnt = root / 'full'
    mnt.mkdir()
    res = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(mnt)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {res.stderr.strip()}')
    try:
        (mnt / 'logs').mkdir()
        fd = os.open(mnt / 'filler', os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b'\0' * 512)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield mnt / 'logs'
    finally:
        subprocess.run(['umount', str(mnt)], check=False)


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def _last_status(h):
    """The first status published after everything received so far was tracked."""
    n = len(h.diags)
    h.spin_until(lambda: len(h.diags) > n
                 and int(_values(h.diags[-1])['frames']) == h.node.frames_in)
    return h.diags[-1], _values(h.diags[-1])


# -- lock and pipeline, no ROS -----------------------------------------------------------------
def test_lock_survives_enospc_writing_the_pid(tmp_path, monkeypatch):
    def no_space(fd, data):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(lock_mod.os, 'write', no_space)
    lock = DirectoryLock(tmp_path)
    assert lock.held
    with pytest.raises(RecorderError, match='in use by another writer'):
        DirectoryLock(tmp_path)
    lock.release()


@pytest.mark.parametrize('writer', ['thread', 'process'])
def test_pipeline_tracks_without_logging_when_the_directory_is_locked(tmp_path, writer):
    (tmp_path / 'logs').mkdir()
    held = DirectoryLock(tmp_path / 'logs')
    warnings: list[str] = []
    settings = resolve({'log_dir': str(tmp_path / 'logs'), 'log_writer': writer}, env={})
    try:
        p = Pipeline(settings, warn=warnings.append, logging_optional=True)
        assert p.writer is None
        assert 'in use by another writer' in p.logging_off_reason
        assert any('sample logging disabled' in w for w in warnings)
        from assoc_logger_ros.frame import make_frame
        snap = p.process(make_frame(T(0), walk(0), np.full(4, 0.9), width=320, height=240))
        assert snap.output_track_ids.size == 4
        assert p.stats()['logging_off_reason'] == p.logging_off_reason
        p.close()
        with pytest.raises(RecorderError):      # offline tools still refuse
            Pipeline(settings)
    finally:
        held.release()


@pytest.mark.parametrize('writer', ['thread', 'process'])
def test_pipeline_with_an_unusable_log_dir_tracks_without_logging(tmp_path, writer):
    (tmp_path / 'file').write_text('not a directory')
    warnings: list[str] = []
    settings = resolve({'log_dir': str(tmp_path / 'file' / 'logs'), 'log_writer': writer},
                       env={})
    p = Pipeline(settings, warn=warnings.append, logging_optional=True)
    assert p.writer is None and 'cannot create log directory' in p.logging_off_reason
    assert len(warnings) == 1
    from assoc_logger_ros.frame import make_frame
    assert p.process(make_frame(T(0), walk(0), np.full(4, 0.9), width=320,
                                height=240)).output_track_ids.size == 4
    p.close()


@pytest.mark.parametrize('writer', ['thread', 'process'])
def test_pipeline_on_a_full_disk_tracks_without_logging_or_stops_logging(tmp_path, writer):
    with full_disk(tmp_path) as logs:
        warnings: list[str] = []
        settings = resolve({'log_dir': str(logs), 'log_writer': writer}, env={})
        p = Pipeline(settings, warn=warnings.append, logging_optional=True)
        from assoc_logger_ros.frame import make_frame
        for k in range(5):
            snap = p.process(make_frame(T(k), walk(k), np.full(4, 0.9), width=320, height=240))
        assert snap.output_track_ids.size == 4
        p.close()
        stats = p.stats()
        # either the writer could not start (reason given) or it stopped for the disk
        assert p.logging_off_reason or stats.get('writer_stopped_reason'), (stats, warnings)
        assert warnings


def test_health_counts_gaps_and_slow_callbacks():
    got: list[tuple[str, str]] = []
    h = NodeHealth(0.01, lambda kind, text: got.append((kind, text)))
    for k in range(12):
        h.detection_stamp(T(k))
    h.detection_stamp(T(18))                         # 12..17 never arrived
    h.detection_stamp(T(19))
    assert h.gap_lost_estimate == 6
    h.detection_stamp(T(0))                          # bag loop: no loss, measuring restarts
    assert h.gap_lost_estimate == 6
    h.callback_done(0.5, 1)
    h.callback_done(0.5, 0)                          # nothing tracked: not a stall
    h.callback_done(0.001, 1)
    v = h.values()
    assert v['callbacks_over_budget'] == 1 and v['input_gap_lost_estimate'] == 6
    assert {k for k, _ in got} == {'gap', 'stall'}


# -- the node ----------------------------------------------------------------------------------
def test_max_detections_out_of_range_and_nan_are_counted(harness_factory):  # noqa: F811
    h = harness_factory({'max_detections': 3, 'seg_enable': False,
                         'embedding_source': 'none'})
    for k in range(4):
        h.send(T(k), walk(k), scores=np.array([0.9, 0.8, 0.95, 0.7]), mask=None, image=None)
    assert all(len(m.detections) <= 3 for m in h.tracks)
    far = walk(4)
    far[0] = [2e6, 10, 2e6 + 30, 55]                 # not pixels
    h.send(T(4), far, mask=None, image=None)
    bad = h.node.bad_messages
    nan = walk(5)
    nan[1, 0] = np.nan
    h.send(T(5), nan, mask=None, image=None)
    assert h.node.bad_messages == bad + 1            # NaN boxes count as a bad message
    status, values = _last_status(h)
    assert int(values['max_detections_dropped']) >= 4
    assert int(values['out_of_range_dropped']) == 1
    text = '\n'.join(h.node.recent_warnings)
    assert 'max_detections' in text and 'beyond 1e6 px' in text
    h.send(T(6), walk(6), mask=None, image=None)     # the WARN is about the increase
    assert any(s.level == WARN for s in h.diags)


def test_stall_and_stamp_gap_are_warned_in_diagnostics(harness_factory):  # noqa: F811
    h = harness_factory({'seg_enable': False, 'embedding_source': 'none'})
    h.node.health.budget_s = 0.0                     # every callback is over budget
    for k in list(range(12)) + list(range(20, 23)):
        h.send(T(k), walk(k % 10), mask=None, image=None)
    status, values = _last_status(h)
    assert int(values['callbacks_over_budget']) >= 15
    assert int(values['input_gap_lost_estimate']) == 8      # 12..19
    assert values['frames_skipped'] == '0'
    assert values['message_lost_events'] == 'True'    # Fast DDS reports message_lost
    assert status.level == WARN or any(s.level == WARN for s in h.diags)
    text = '\n'.join(h.node.recent_warnings)
    assert 'over the 0 ms budget' in text and 'about 8 array(s) never arrived' in text


@pytest.mark.parametrize('writer', ['thread', 'process'])
def test_node_with_a_locked_log_dir_tracks_without_logging(harness_factory,  # noqa: F811
                                                         tmp_path, writer):
    logs = tmp_path / 'locked'
    logs.mkdir()
    held = DirectoryLock(logs)
    try:
        h = harness_factory({'log_dir': str(logs), 'log_writer': writer, 'seg_enable': False,
                             'embedding_source': 'none'})
        for k in range(3):
            h.send(T(k), walk(k), mask=None, image=None)
        assert len(h.tracks[-1].detections) == 4
        status, values = _last_status(h)
        assert status.level == WARN and 'logging off' in status.message
        assert 'in use by another writer' in values['logging_off_reason']
        assert sum('sample logging disabled' in w for w in h.node.recent_warnings) == 1
    finally:
        held.release()


@pytest.mark.parametrize('writer', ['thread', 'process'])
def test_node_process_on_a_full_disk_tracks_and_exits_cleanly(tmp_path, writer):
    """A real tracker_node on a 100 % full log disk: tracks, warns, no traceback, exit 0."""
    from conftest import ros_missing_reason

    if ros_missing_reason():
        pytest.skip(ros_missing_reason())
    with full_disk(tmp_path) as logs:
        import time

        def action(proc):
            time.sleep(8)
            assert proc.poll() is None, proc.communicate()

        rc, err = _run_node_process(tmp_path, {}, ['-p', f'log_dir:={logs}',
                                                   '-p', f'log_writer:={writer}'], action)
        assert rc == 0, err
        assert 'Traceback' not in err, err
        assert f'logging to {logs}' in err, err


@pytest.mark.parametrize('writer', ['thread', 'process'])
def test_node_on_a_full_disk_tracks_and_says_why(rclpy_context, tmp_path, writer):
    with full_disk(tmp_path) as logs:
        h = Harness(rclpy_context, {'log_dir': str(logs), 'log_writer': writer,
                                    'diagnostics_period_s': 0.1, 'warn_throttle_s': 0.0})
        try:
            for k in range(4):
                h.send(T(k), walk(k), mask=None, image=None)
            assert len(h.tracks[-1].detections) == 4
            h.spin_until(lambda: any('sample logging stopped' in w
                                     for w in h.node.recent_warnings))
            h.spin_until(lambda: h.diags and 'below log_min_free_mb' in {
                kv.key: kv.value for kv in h.diags[-1].values}['writer_stopped_reason'])
            assert 'disk almost full' in h.diags[-1].message
            assert sum('sample logging stopped' in w for w in h.node.recent_warnings) == 1
        finally:
            h.close()       # before the tiny disk is unmounted


def test_start_failure_has_no_teardown_traceback(tmp_path):
    from conftest import ros_missing_reason

    if ros_missing_reason():
        pytest.skip(ros_missing_reason())
    rc, err = _run_node_process(tmp_path, {'CONFIDENCE_THRESHOLD': '5'}, [],
                                lambda p: p.wait(timeout=60))
    assert rc == 2, err
    assert 'Traceback' not in err and 'AttributeError' not in err, err
    assert sys.executable


def test_messages_lost_in_a_busy_node_are_counted_and_warned(harness_factory):  # noqa: F811
    """Item 5: a burst the node cannot keep up with; what never arrived is counted and warned."""
    h = harness_factory({'qos_depth': 3, 'seg_enable': False, 'embedding_source': 'none'})
    for k in range(10):                              # a regular stream: the input interval
        h.send(T(k), walk(k % 8), mask=None, image=None)
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    from assoc_logger_ros.messages import convert as conv
    for k in range(10, 70):                          # a burst while the node does not spin
        h.pub_det.publish(conv.fill_detection_array(
            Detection2DArray(), Detection2D, ObjectHypothesisWithPose, T(k), walk(k % 8),
            np.full(4, 0.9), ['person'] * 4))
    h.send(T(70), walk(0), mask=None, image=None)
    status, values = _last_status(h)
    seen = h.node.frames_in
    lost = int(values['input_gap_lost_estimate']) + int(values['messages_lost'])
    assert seen < 60                                 # the queue really overflowed
    assert abs(seen + int(values['input_gap_lost_estimate']) - 71) <= 1, (seen, values)
    assert lost > 0
    assert any(s.level == WARN and 'input gap lost estimate' in s.message for s in h.diags)
    assert any('never arrived' in w for w in h.node.recent_warnings)
