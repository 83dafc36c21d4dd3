"""The recorder writing shards on board, a real SIGKILL mid-shard, and the disk policy."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap

import pytest

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.process_writer import ProcessWriter
from assoc_logger_ros.recording.shard_writer import ShardSampleWriter, writer_class
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.writer import SampleWriter
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.source import ShardSource
from assoc_logger_ros.shards.tools import summarize_any

REPO = Path(__file__).resolve().parents[1]


def cfg(**kw) -> RecorderConfig:
    base = {'log_min_free_mb': 0.0, 'log_embed_dim': 16, 'log_format': 'shards',
            'log_shard_mb': 0.02, 'log_wait_when_full': True}
    base.update(kw)
    return RecorderConfig(**base)


def snap(i: int, stamp_s: float | None = None):
    return make_snapshot(5, 6, seed=i, frame_idx=i, embed_dim=8,
                         stamp_ns=None if stamp_s is None else int(stamp_s * 1e9))


def test_writer_class_follows_log_format():
    assert writer_class(cfg()) is ShardSampleWriter
    assert writer_class(cfg(log_format='npz')) is SampleWriter


def test_rolls_by_size_and_reopens_continuing(tmp_path):
    """Shards roll at log_shard_mb; a reopened writer finalises nothing twice, numbers go on."""
    d = tmp_path / 'rec'
    with ShardSampleWriter(d, cfg()) as w:
        for i in range(20):
            w.submit(snap(i), 's1')
    s = ShardSource(d)
    assert len(s.records) == 20 and len(s.shards) >= 3
    assert all((d / n).stat().st_size <= 0.02 * 2**20 + 1024 for n in s.shards)
    with ShardSampleWriter(d, cfg()) as w:
        for i in range(20, 25):
            w.submit(snap(i), 's2')
    s = ShardSource(d)
    assert [r['npz'] for r in s.records] == [f'sample_{i:07d}.npz' for i in range(25)]
    assert summarize_any(d)['error_count'] == 0


def test_rolls_by_sample_time(tmp_path):
    """log_shard_max_s starts a new shard once the open one spans that much sample time."""
    d = tmp_path / 'rec'
    with ShardSampleWriter(d, cfg(log_shard_mb=100.0, log_shard_max_s=1.0)) as w:
        for i in range(10):
            w.submit(snap(i, stamp_s=1000 + 0.25 * i), 's')
    s = ShardSource(d)
    counts = [sum(1 for r in s.records if s.location(r)[0] == n) for n in s.shards]
    assert counts == [4, 4, 2]


def test_process_writer_writes_shards(tmp_path):
    """The child-process writer picks the shard writer from the same setting."""
    d = tmp_path / 'rec'
    w = ProcessWriter(d, cfg())
    for i in range(6):
        w.submit(snap(i), 's')
    assert w.close(timeout=60)
    assert len(ShardSource(d).records) == 6
    assert not (d / 'manifest.jsonl').exists()


CHILD = textwrap.dedent("""
    import sys
    from assoc_logger_ros.config import RecorderConfig
    from assoc_logger_ros.recording.shard_writer import ShardSampleWriter
    from assoc_logger_ros.recording.synthetic import make_snapshot
    cfg = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16, log_format='shards',
                         log_shard_mb=0.02, log_sync_period_s=3600.0)
    w = ShardSampleWriter(sys.argv[1], cfg, background=False)
    i = 0
    while True:
        w.submit(make_snapshot(5, 6, seed=i, frame_idx=i, embed_dim=8), 'killed')
        i += 1
        print(i, flush=True)
""")


def test_sigkill_mid_shard_loses_at_most_the_sample_in_flight(tmp_path):
    """SIGKILL a recording child: finished shards read, the open one keeps its samples.

    The child reports each sample after its write returned, so the reopened directory must
    hold every reported sample and at most the one in flight besides.
    """
    d = tmp_path / 'rec'
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, '-c', CHILD, str(d)], stdout=subprocess.PIPE,
                             text=True, env=env)
    reported = 0
    try:
        for line in child.stdout:
            reported = int(line)
            if reported >= 45:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        for line in child.stdout:  # lines written before the kill
            reported = int(line)
    assert child.returncode == -signal.SIGKILL
    done, parts = layout.list_shards(d)
    assert len(done) >= 2 and len(parts) == 1
    before = ShardSource(d)
    for _, arrays, err in before.iter_loaded():
        assert arrays is not None, err
    with ShardSampleWriter(d, cfg(log_sync_period_s=3600.0)) as w:
        recovered = list(w.reconciled)
        w.submit(snap(999), 'after')
    after = ShardSource(d)
    names = [r['npz'] for r in after.records]
    assert reported <= len(names) - 1 <= reported + 1
    assert names[:reported] == [f'sample_{i:07d}.npz' for i in range(reported)]
    assert any('finalised' in m for m in recovered)
    assert summarize_any(d)['error_count'] == 0
    assert not layout.list_shards(d)[1] or layout.list_shards(d)[1] == []


def test_delete_oldest_session_npz(tmp_path):
    """The npz layout: at log_max_bytes the oldest other session goes; the current one never."""
    d = tmp_path / 'rec'
    warnings: list[str] = []
    probe = tmp_path / 'probe'
    with SampleWriter(probe, cfg(log_format='npz')) as w:
        w.submit(snap(0), 'x')
    size = manifest.read_records(probe)[0]['bytes']
    c = cfg(log_format='npz', log_max_bytes=int(size * 10.5), log_disk_policy='delete_oldest')
    with SampleWriter(d, c, warn=warnings.append) as w:
        for i in range(6):
            w.submit(snap(i), 'A')
        for i in range(6, 12):
            w.submit(snap(i), 'B')
        w.flush()
        assert w.stopped_reason is None
        for i in range(12, 20):
            w.submit(snap(i), 'B')
        w.flush()
        assert w.stopped_reason is not None and 'log_max_bytes' in w.stopped_reason
    recs = manifest.read_records(d)
    assert {r['session'] for r in recs} == {'B'} and 8 <= len(recs) <= 11
    assert sorted(p.name for p in d.glob('*.npz')) == sorted(r['npz'] for r in recs)
    assert any("deleted session 'A'" in m for m in warnings)
    assert summarize_any(d)['error_count'] == 0


def test_delete_oldest_shard_never_the_open_one(tmp_path, monkeypatch):
    """Shard layout: below log_min_free_mb the oldest finished shard goes, recording goes on."""
    d = tmp_path / 'rec'
    state = {'w': None}
    budget = 0.09 * 2**20

    def fake_free(self):
        w = state['w']
        used = sum((d / n).stat().st_size for n in os.listdir(d) if n.startswith('shard-'))
        return int(10 * 2**20 - used) if w is not None else 10 * 2**20

    monkeypatch.setattr(SampleWriter, '_free_bytes', fake_free)
    c = cfg(log_min_free_mb=(10 * 2**20 - budget) / 2**20, log_disk_policy='delete_oldest',
            log_shard_mb=0.02)
    with ShardSampleWriter(d, c) as w:
        state['w'] = w
        for i in range(80):
            w.submit(snap(i), 'one-long-session')
        w.flush()
        assert w.stopped_reason is None
        assert w.stats()['deleted_samples'] > 0
    s = ShardSource(d)
    names = [r['npz'] for r in s.records]
    first = int(names[0][7:14])
    assert names == [f'sample_{i:07d}.npz' for i in range(first, 80)] and first > 0
    assert layout.shard_name(0) not in s.shards
    assert summarize_any(d)['error_count'] == 0
    pytest.importorskip('pyarrow')
    assert _index_rows(d) == len(names)          # the deleted shards' rows left the index
    assert not list((d / layout.INDEX_DIR).glob(f'*/{layout.shard_name(0)}.parquet'))


@pytest.mark.parametrize('policy', ['stop'])
def test_stop_policy_unchanged(tmp_path, policy):
    """The default still stops at log_max_bytes (shard layout too)."""
    d = tmp_path / 'rec'
    with ShardSampleWriter(d, cfg(log_max_bytes=30000, log_disk_policy=policy)) as w:
        for i in range(30):
            w.submit(snap(i), 's')
        w.flush()
        assert w.stopped_reason and 'log_max_bytes' in w.stopped_reason
    assert 0 < len(ShardSource(d).records) < 30


def _index_rows(d: Path) -> int:
    from assoc_logger_ros.shards.index import index_is_current, read_index
    assert index_is_current(d)
    return read_index(d, columns=['npz']).num_rows


def test_parquet_index_kept_current_on_board(tmp_path):
    """log_shard_index shard: each finished shard updates index/; close covers the last."""
    pytest.importorskip('pyarrow')
    d = tmp_path / 'rec'
    with ShardSampleWriter(d, cfg(), background=False) as w:
        for i in range(20):
            w.submit(snap(i), 's1')
        done = layout.list_shards(d)[0]
        assert len(done) >= 2
        assert _index_rows(d) == len(ShardSource(d).records) < 20   # open shard not yet
    assert _index_rows(d) == 20
    shards = ShardSource(d).shards
    for n in shards[1:]:     # added one file per shard, not rebuilt every time
        assert list((d / layout.INDEX_DIR).glob(f'*/{n}.parquet'))
    from assoc_logger_ros.shards.fleet import connect
    from assoc_logger_ros.shards.index import build_index, read_index
    con = connect([d])
    assert con.execute('SELECT count(*) FROM samples').fetchone()[0] == 20
    con.close()
    got = read_index(d).sort_by('key').to_pylist()
    build_index(d)           # the full build from the shards gives the same rows
    assert read_index(d).sort_by('key').to_pylist() == got


def test_parquet_index_rebuilt_after_a_crash(tmp_path):
    """A part left by a crash is finalised at the next start and the index covers it."""
    pytest.importorskip('pyarrow')
    d = tmp_path / 'rec'
    w = ShardSampleWriter(d, cfg(log_shard_mb=100.0, log_sync_period_s=0.0), background=False)
    for i in range(7):
        w.submit(snap(i), 'crashed')
    assert layout.list_shards(d)[1] and not (d / layout.INDEX_DIR).exists()
    w._sink._fd, fd = None, w._sink._fd   # the process dies: nothing is finished or closed
    os.close(fd)
    w._lock.release()
    with ShardSampleWriter(d, cfg(log_shard_mb=100.0), background=False) as w2:
        assert _index_rows(d) == 7
        w2.submit(snap(7), 'after')
    assert _index_rows(d) == 8


def test_parquet_index_off_and_without_pyarrow(tmp_path, monkeypatch):
    """Index off writes none; a missing pyarrow is one warning and recording goes on."""
    d = tmp_path / 'off'
    with ShardSampleWriter(d, cfg(log_shard_index='off'), background=False) as w:
        for i in range(12):
            w.submit(snap(i), 's')
    assert not (d / layout.INDEX_DIR).exists() and len(ShardSource(d).records) == 12
    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards import index

    def missing():
        raise DatasetError('the Parquet index needs pyarrow')

    monkeypatch.setattr(index, '_pyarrow', missing)
    said: list[str] = []
    d = tmp_path / 'nopa'
    with ShardSampleWriter(d, cfg(), background=False, warn=said.append) as w:
        for i in range(20):
            w.submit(snap(i), 's')
    assert len(ShardSource(d).records) == 20 and not (d / layout.INDEX_DIR).exists()
    assert len([m for m in said if 'Parquet index not written' in m]) == 1
