"""Crash and disk-full behaviour of the sample writer, with real processes and filesystems."""

from __future__ import annotations

import os
from pathlib import Path
import random
import select
import signal
import subprocess
import sys
import time

import pytest

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.lock import DirectoryLock
from assoc_logger_ros.recording.reconcile import reconcile
from assoc_logger_ros.recording.schema import sample_index
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.recording.writer import SampleWriter

ROOT = Path(__file__).resolve().parents[1]

# The writing process: opens the directory (reconciling what the last kill left) and submits
# snapshots as fast as the queue takes them, until it is killed.
CHILD = """
import sys, time
from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.writer import SampleWriter
snaps = [make_snapshot(6, 7, seed=k, frame_idx=k, embed_dim=16) for k in range(10)]
cfg = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16, log_queue_size=8,
                     log_sync_period_s=float(sys.argv[3]))
w = SampleWriter(sys.argv[1], cfg)
print('ready', flush=True)
i = 0
while True:
    if w.submit(snaps[i % 10], 'crash-' + sys.argv[2], {'source': 'crash-test'}):
        i += 1
    else:
        time.sleep(0.001)
"""


def _wait_ready(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, 'writer process did not start'
    assert proc.stdout.readline().strip() == b'ready'


def _check_directory(d: Path, checked: set[str]) -> list[int]:
    """The crash-consistency contract; returns the sample numbers in manifest order."""
    names = [r['npz'] for r in manifest.read_records(d)]
    assert len(names) == len(set(names)), 'a file is listed twice'
    numbers = [sample_index(n) for n in names]
    assert all(a < b for a, b in zip(numbers, numbers[1:])), 'numbering went back'
    on_disk = {n for n in os.listdir(d) if n.endswith('.npz')}
    assert on_disk == set(names), f'not in the manifest: {sorted(on_disk - set(names))}'
    assert not [n for n in os.listdir(d) if n.endswith('.tmp')]
    for rec in manifest.read_records(d):
        if rec['npz'] not in checked:
            assert validate(d / rec['npz'], embed_cap=16) == [], rec['npz']
            assert (d / rec['npz']).stat().st_size == rec['bytes']
            checked.add(rec['npz'])
    return numbers


@pytest.mark.slow
def test_sigkill_twenty_times_keeps_directory_consistent(tmp_path):
    """SIGKILL at random moments 20x, restarting each time, never breaks the directory.

    After each kill and restart: every manifest entry validates, no file is listed twice,
    numbering never goes back, no complete sample is missing from the manifest.
    """
    d = tmp_path / 'logs'
    rng = random.Random(20241125)
    env = {**os.environ, 'PYTHONPATH': f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}'}
    checked: set[str] = set()
    last_max = -1
    for it in range(20):
        sync = rng.choice(['0', '1.0'])
        proc = subprocess.Popen([sys.executable, '-c', CHILD, str(d), str(it), sync],
                                stdout=subprocess.PIPE, env=env, cwd=tmp_path)
        try:
            if rng.random() < 0.8:  # mostly mid-writing; sometimes during start-up/reconcile
                _wait_ready(proc)
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        if not d.exists():
            continue
        # before any repair, the manifest only lists complete, valid samples
        for rec in manifest.read(d).records:
            assert (d / rec['npz']).is_file(), rec['npz']
        with DirectoryLock(d, 'crash test'):  # what the next start does first
            reconcile(d)
        numbers = _check_directory(d, checked)
        if numbers:
            assert numbers[-1] >= last_max, 'numbering went back after restart'
            last_max = numbers[-1]
    assert len(checked) > 20, 'the writer barely wrote anything; the test proves little'
    w = SampleWriter(d, RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16))
    w.submit(make_snapshot(6, 7, embed_dim=16), 'after', {})
    w.close()
    assert sample_index(manifest.read_records(d)[-1]['npz']) == last_max + 1
    _check_directory(d, set())


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    res = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path)],
                         capture_output=True)
    return res.returncode == 0


def _run_tracking_with_writer(d: Path, cfg: RecorderConfig, frames: int
                              ) -> tuple[SampleWriter, list[str], int]:
    """Simulated tracking loop: one snapshot per frame, submitted, never waiting for disk."""
    warnings: list[str] = []
    w = SampleWriter(d, cfg, warn=warnings.append)
    tracked = 0
    for i in range(frames):
        snap = make_snapshot(40, 40, seed=i, frame_idx=i, embed_dim=256)
        tracked += 1  # the loop goes on whatever submit returns
        w.submit(snap, 'disk', {})
        if i % 8 == 0:
            w.flush()
    w.close()
    return w, warnings, tracked


def _assert_stopped_cleanly(d: Path, w: SampleWriter, warnings: list[str], reason: str) -> None:
    st = w.stats()
    assert st['stopped_reason'] is not None and reason in st['stopped_reason']
    assert st['written'] > 0 and st['dropped_disk'] > 0
    assert sum('sample logging stopped' in m for m in warnings) == 1
    assert reconcile(d, fix=False).messages == []
    _check_directory(d, set())


def test_byte_limit_disk_full(tmp_path):
    """With log_max_bytes, tracking continues, writing stops with one warning, dir valid."""
    cfg = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16, log_max_bytes=300_000)
    w, warnings, tracked = _run_tracking_with_writer(tmp_path / 'd', cfg, 60)
    assert tracked == 60
    _assert_stopped_cleanly(tmp_path / 'd', w, warnings, 'log_max_bytes')


def test_real_full_tmpfs(tmp_path):
    """On a 2 MiB tmpfs that fills up (ENOSPC), writing stops once, the directory stays valid."""
    mnt = tmp_path / 'fs'
    if not _mount_tmpfs(mnt, '2m'):
        pytest.skip('mounting a tmpfs needs root (and permission to mount)')
    try:
        cfg = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16)
        w, warnings, tracked = _run_tracking_with_writer(mnt / 'd', cfg, 400)
        assert tracked == 400
        _assert_stopped_cleanly(mnt / 'd', w, warnings, 'No space left')
    finally:
        subprocess.run(['umount', '-l', str(mnt)], check=False)


def test_min_free_on_tmpfs(tmp_path):
    """log_min_free_mb on a small tmpfs stops before the disk is actually full."""
    mnt = tmp_path / 'fs'
    if not _mount_tmpfs(mnt, '4m'):
        pytest.skip('mounting a tmpfs needs root (and permission to mount)')
    try:
        cfg = RecorderConfig(log_min_free_mb=2.0, log_embed_dim=16)
        w, warnings, _ = _run_tracking_with_writer(mnt / 'd', cfg, 400)
        _assert_stopped_cleanly(mnt / 'd', w, warnings, 'log_min_free_mb')
        st = os.statvfs(mnt)
        assert st.f_bavail * st.f_frsize >= 2 * 2**20
    finally:
        subprocess.run(['umount', '-l', str(mnt)], check=False)
