"""The writer in a child process: same files, never blocks live tracking, survives deaths."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

from assoc_logger_ros.config import RecorderConfig, resolve
from assoc_logger_ros.pipeline import Pipeline, writer_kind
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.lock import RecorderError
from assoc_logger_ros.recording.process_writer import ProcessWriter
from assoc_logger_ros.recording.reconcile import reconcile
from assoc_logger_ros.recording.schema import sample_index
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.recording.writer import SampleWriter

ROOT = Path(__file__).resolve().parents[1]
SNAPS = [make_snapshot(6, 7, seed=k, frame_idx=k, embed_dim=16) for k in range(12)]


def _cfg(**kw) -> RecorderConfig:
    return RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16, log_fsync=False, **kw)


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.name != '.writer.lock'}


def _valid(d: Path) -> list[dict]:
    records = manifest.read_records(d)
    for rec in records:
        assert validate(d / rec['npz'], embed_cap=16) == [], rec['npz']
    return records


def test_same_bytes_as_the_thread_writer(tmp_path):
    """Process and thread writers fed the same snapshots write byte-identical directories."""
    for name, cls in (('p', ProcessWriter), ('t', SampleWriter)):
        w = cls(tmp_path / name, _cfg(log_wait_when_full=True))
        for s in SNAPS:
            assert w.submit(s, 'same', {'source': 'test'})
        assert w.close()
        assert w.stats()['written'] == len(SNAPS)
    assert _files(tmp_path / 'p') == _files(tmp_path / 't')


def test_live_submit_drops_newest_when_full_and_never_waits(tmp_path):
    """With the child stalled, submit returns at once: one sample in flight, the rest dropped."""
    warnings: list[str] = []
    w = ProcessWriter(tmp_path / 'd', _cfg(log_queue_size=1), warn=warnings.append)
    os.kill(w.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        results = [w.submit(s, 'live', {}) for s in SNAPS]
        elapsed = time.monotonic() - t0
    finally:
        os.kill(w.pid, signal.SIGCONT)
    assert results[0] and not any(results[1:])
    assert elapsed < 5.0  # generous: it must not wait for the stalled child at all
    assert w.close()
    st = w.stats()
    assert (st['written'], st['dropped_queue_full']) == (1, len(SNAPS) - 1)
    assert sum('sample queue full' in m for m in warnings) == 1
    assert len(_valid(tmp_path / 'd')) == 1


def test_dead_child_is_one_warning_and_tracking_goes_on(tmp_path):
    """Killing the child: one warning, later submits return False (counted), close returns."""
    settings = resolve({'log_dir': str(tmp_path / 'd'), 'log_min_free_mb': 0.0,
                        'log_writer': 'process', 'log_embed_dim': 16}, env={})
    warnings: list[str] = []
    p = Pipeline(settings, session_id='dead', warn=warnings.append)
    assert isinstance(p.writer, ProcessWriter)
    p.writer.submit(SNAPS[0], 'dead', {})
    assert p.writer.flush(timeout=30)
    os.kill(p.writer.pid, signal.SIGKILL)
    time.sleep(0.2)
    assert not any(p.writer.submit(s, 'dead', {}) for s in SNAPS[1:])
    st = p.stats()
    assert 'died' in st['writer_stopped_reason']
    assert st['writer_dropped_disk'] == len(SNAPS) - 1
    assert sum('sample writer process died' in m for m in warnings) == 1
    p.close()
    with SampleWriter(tmp_path / 'd', _cfg()) as again:  # lock released, directory reusable
        again.submit(SNAPS[1], 'after', {})
    assert len(_valid(tmp_path / 'd')) == 2


def test_child_ignores_sigint_and_close_writes_everything(tmp_path):
    """Ctrl-C reaches the whole process group: the child keeps going until close()."""
    w = ProcessWriter(tmp_path / 'd', _cfg(log_wait_when_full=True))
    w.submit(SNAPS[0], 'int', {})
    os.kill(w.pid, signal.SIGINT)
    for s in SNAPS[1:]:
        assert w.submit(s, 'int', {})
    assert w.close()
    assert w.stats()['written'] == len(SNAPS) == len(_valid(tmp_path / 'd'))


def test_locked_directory_and_resume(tmp_path):
    """A second writer on a locked directory raises; reopening continues the numbering."""
    d = tmp_path / 'd'
    first = ProcessWriter(d, _cfg(log_wait_when_full=True))
    with pytest.raises(RecorderError, match='in use'):
        ProcessWriter(d, _cfg())
    first.submit(SNAPS[0], 'a', {})
    first.close()
    second = ProcessWriter(d, _cfg(log_wait_when_full=True))
    second.submit(SNAPS[1], 'b', {})
    second.close()
    assert [sample_index(r['npz']) for r in _valid(d)] == [0, 1]


def test_disk_limit_in_the_child_reaches_the_parent(tmp_path):
    """log_max_bytes stops writing in the child; the parent reports why and counts drops."""
    warnings: list[str] = []
    w = ProcessWriter(tmp_path / 'd', _cfg(log_max_bytes=20_000, log_wait_when_full=True),
                      warn=warnings.append)
    for s in SNAPS * 4:
        w.submit(s, 'full', {})
    w.close()
    st = w.stats()
    assert 'log_max_bytes' in st['stopped_reason']
    assert st['written'] > 0 and st['dropped_disk'] > 0
    assert st['written'] + st['dropped_disk'] == len(SNAPS) * 4
    assert sum('sample logging stopped' in m for m in warnings) == 1
    assert reconcile(tmp_path / 'd', fix=False).messages == []


PARENT = """
import os, sys
from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording.process_writer import ProcessWriter
from assoc_logger_ros.recording.synthetic import make_snapshot
cfg = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16, log_queue_size=64)
w = ProcessWriter(sys.argv[1], cfg)
for k in range(20):
    w.submit(make_snapshot(6, 7, seed=k, frame_idx=k, embed_dim=16), 'orphan', {})
    if k == 9:
        assert w.flush(timeout=30)  # the first ten surely reached the child
print(w.pid, flush=True)
os.kill(os.getpid(), 9)
"""


def test_parent_killed_child_finishes_and_unlocks(tmp_path):
    """SIGKILL of the tracking process: the child writes what it got, then frees the lock."""
    d = tmp_path / 'd'
    env = {**os.environ, 'PYTHONPATH': f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}'}
    out = subprocess.run([sys.executable, '-c', PARENT, str(d)], capture_output=True,
                         env=env, cwd=tmp_path, timeout=60)
    child = int(out.stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with SampleWriter(d, _cfg()) as w:  # raises RecorderError while the orphan holds the lock
        assert w.reconciled == []
    records = _valid(d)
    assert 10 <= len(records) <= 20
    assert [sample_index(r['npz']) for r in records] == list(range(len(records)))


UNGUARDED = """
import sys
from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording.process_writer import ProcessWriter
from assoc_logger_ros.recording.synthetic import make_snapshot
print('script body ran', flush=True)
w = ProcessWriter(sys.argv[1], RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16))
w.submit(make_snapshot(6, 7, embed_dim=16), 'script', {})
assert w.close()
"""


def test_works_from_a_script_without_main_guard(tmp_path):
    """A plain script (no __main__ guard) is not re-run in the writer child and still works."""
    script = tmp_path / 'collect.py'
    script.write_text(UNGUARDED)
    env = {**os.environ, 'PYTHONPATH': f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}'}
    out = subprocess.run([sys.executable, str(script), str(tmp_path / 'd')], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count('script body ran') == 1
    assert len(_valid(tmp_path / 'd')) == 1


def test_auto_picks_the_process_writer_only_for_live_multi_cpu(monkeypatch):
    """log_writer auto: process on 2+ CPUs without log_wait_when_full; explicit values win."""
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 1}, raising=False)
    assert writer_kind(RecorderConfig()) == 'process'
    assert writer_kind(RecorderConfig(log_wait_when_full=True)) == 'thread'
    assert writer_kind(RecorderConfig(log_writer='thread')) == 'thread'
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0}, raising=False)
    assert writer_kind(RecorderConfig()) == 'thread'
    assert writer_kind(RecorderConfig(log_writer='process')) == 'process'
