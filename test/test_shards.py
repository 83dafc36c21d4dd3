"""Shards: pack/unpack byte for byte, the Parquet index, both layouts' reader and tools.

Also the streaming reader and hostile shards (all inside temporary directories).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
from pathlib import Path
import tarfile
import warnings

import numpy as np
import pytest

from assoc_logger_ros import cli
from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.dataset.store import DatasetError
from assoc_logger_ros.recording.manifest import RECORD_KEYS
from assoc_logger_ros.recording.npzfile import load
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.writer import SampleWriter
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.npzdecode import NpzError, decode
from assoc_logger_ros.shards.pack import pack, unpack
from assoc_logger_ros.shards.sink import ShardSink, ensure_marker
from assoc_logger_ros.shards.source import ShardSource, open_source
from assoc_logger_ros.shards.stream import iter_samples
from assoc_logger_ros.shards.tarformat import ShardFormatError, member

CFG = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16)
SESSIONS = ('robot1/run a', 'B')
TRAINING = Path(__file__).resolve().parents[1] / 'training'


def make_dir(d: Path, n: int = 24, sessions: tuple[str, ...] = SESSIONS) -> Path:
    """N samples over sessions, some with ground truth."""
    per = n // len(sessions)
    with SampleWriter(d, CFG) as w:
        for i in range(n):
            w.submit(make_snapshot(4 + i % 3, 5 + i % 4, seed=i, frame_idx=i % per,
                                   embed_dim=8, gt=i % 2 == 0, est_id_switches=i % per // 5,
                                   stamp_ns=10**18 + i * 10**8),
                     sessions[min(i // per, len(sessions) - 1)], {'source': 'test'})
    return d


def run_command(name: str, *argv: str) -> int:
    """``python -m assoc_logger_ros NAME ARGV...`` in this process; its exit status."""
    return cli.main([name, *argv])


def tree(d: Path) -> dict[str, bytes]:
    return {n: (d / n).read_bytes() for n in sorted(os.listdir(d)) if not n.startswith('.')}


@pytest.fixture(scope='module')
def packed(tmp_path_factory):
    t = tmp_path_factory.mktemp('shards')
    src = make_dir(t / 'logs')
    res = pack(src, t / 'sh', shard_mb=0.03)
    return src, t / 'sh', res


def test_pack_unpack_is_byte_identical(packed, tmp_path):
    """Every npz and the manifest come back with identical bytes; several shards were made."""
    src, sh, res = packed
    assert res['samples'] == 24 and res['shards'] > 2 and not res['skipped']
    unpack(sh, tmp_path / 'back')
    assert tree(tmp_path / 'back') == tree(src)


def test_seed_loader_reads_unpacked(packed, tmp_path):
    """training/seed_loader.py reads the unpacked directory as it reads the original."""
    src, sh, _ = packed
    unpack(sh, tmp_path / 'back')
    spec = importlib.util.spec_from_file_location('seed_loader', TRAINING / 'seed_loader.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    a, b = mod.SeedAssocDataset(src), mod.SeedAssocDataset(tmp_path / 'back')
    assert len(b) == len(a) == 24
    for i in (0, 23):
        assert np.array_equal(a[i]['track_x'], b[i]['track_x'])
        assert np.array_equal(a[i]['labels'], b[i]['labels'])


def test_shards_are_plain_webdataset_tars(packed):
    """Any tar reader lists KEY.npz + KEY.json pairs keyed by session and frame."""
    src, sh, _ = packed
    first = sh / layout.shard_name(0)
    with tarfile.open(first) as tf:
        names = tf.getnames()
        npz = tf.extractfile(names[0]).read()
        rec = json.loads(tf.extractfile(names[1]).read())
    assert names[0].endswith('.npz') and names[1] == names[0][:-4] + '.json'
    assert names[0].startswith('robot1-run-a__0000000000__')
    assert npz == (src / rec['npz']).read_bytes()
    assert (sh / layout.index_name(layout.shard_name(0))).is_file()
    assert not list(sh.glob('*.part')) and not list(sh.glob('*.tmp'))


def test_parquet_index_has_every_manifest_field(packed):
    """One row per sample, every manifest field a column, one partition per session."""
    pytest.importorskip('pyarrow')
    from assoc_logger_ros.shards.index import index_is_current, read_index
    src, sh, _ = packed
    t = read_index(sh)
    assert t.num_rows == 24
    assert set(RECORD_KEYS) <= set(t.column_names)
    assert {'shard', 'key', 'offset', 'size', 'session_key'} <= set(t.column_names)
    assert sorted(set(t.column('session').to_pylist())) == sorted(SESSIONS)
    parts = sorted(p.name for p in (sh / 'index').iterdir() if p.is_dir())
    assert len(parts) == 2 and all(p.startswith('session_key=') for p in parts)
    manifest = [json.loads(x) for x in (src / 'manifest.jsonl').read_text().splitlines()]
    rows = {r['npz']: r for r in t.to_pylist()}
    for rec in manifest:
        for k in RECORD_KEYS:
            assert rows[rec['npz']][k] == rec[k], k
        row = rows[rec['npz']]
        with open(sh / row['shard'], 'rb') as fh:
            fh.seek(row['offset'])
            assert fh.read(row['size']) == (src / rec['npz']).read_bytes()
    assert index_is_current(sh)


def test_fast_decode_equals_np_load(packed):
    """decode() gives exactly dict(np.load(npz)): keys, order, dtypes, shapes, values."""
    src, _, _ = packed
    for p in sorted(src.glob('*.npz'))[:6]:
        ref = load(p)
        got = decode(p.read_bytes())
        assert list(got) == list(ref)
        for k in ref:
            assert got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape
            assert np.array_equal(got[k], ref[k], equal_nan=ref[k].dtype.kind == 'f'), k
            assert got[k].flags.writeable


def test_fast_decode_rejects_corruption(packed):
    src, _, _ = packed
    data = bytearray(next(src.glob('*.npz')).read_bytes())
    data[60] ^= 0xFF
    with pytest.raises((NpzError, ValueError)):
        decode(bytes(data))
    with pytest.raises(NpzError):
        decode(next(src.glob('*.npz')).read_bytes(), max_bytes=100)


def test_inspect_validate_both_layouts_agree(packed, capsys):
    """The inspect --json output gives the same statistics for the directory and its shards."""
    src, sh, _ = packed
    out = {}
    for name, d in (('dir', src), ('shards', sh)):
        for extra in ((), ('--no-validate',)):
            assert run_command('inspect', str(d), '--json', *extra) == 0
            out[(name, extra)] = json.loads(capsys.readouterr().out)
    for extra in ((), ('--no-validate',)):
        a, b = out[('dir', extra)], out[('shards', extra)]
        for k in ('samples', 'bytes', 'matched_pairs', 'sessions', 'samples_with_gt',
                  'tracks_per_sample', 'detections_per_sample', 'validated'):
            assert a[k] == b[k], k
    assert out[('shards', ('--no-validate',))].get('index') == 'parquet'
    assert run_command('validate', str(sh)) == 0


def test_filter_shards_matches_directory_filter(packed, tmp_path):
    """Filtering shards keeps the same samples as filter on the directory."""
    src, sh, _ = packed
    flags = ('--min-matched', '3', '--session', 'robot1*')
    assert run_command('filter', str(src), '--out', str(tmp_path / 'fd'), *flags) == 0
    assert run_command('filter', str(sh), '--out', str(tmp_path / 'fs'), *flags) == 0
    a = [r['npz'] for r in open_source(tmp_path / 'fd').records]
    b = [r['npz'] for r in open_source(tmp_path / 'fs').records]
    assert a == b and 0 < len(a) < 24
    unpack(tmp_path / 'fs', tmp_path / 'fsu')
    assert tree(tmp_path / 'fsu') == tree(tmp_path / 'fd')


def test_merge_mixed_layouts(packed, tmp_path):
    """A directory and a shard directory merge into shards; clashing sessions are renamed."""
    src, sh, _ = packed
    assert run_command('merge', str(src), str(sh), '--out', str(tmp_path / 'm')) == 0
    s = ShardSource(tmp_path / 'm')
    assert len(s.records) == 48
    sessions = set(s.sessions())
    assert sessions == {'logs/robot1/run a', 'logs/B', 'sh/robot1/run a', 'sh/B'}
    assert [r['npz'] for r in s.records][:2] == ['sample_0000000.npz', 'sample_0000001.npz']
    assert str(s.load(s.records[30])['session_id']) == s.records[30]['session']
    assert run_command('validate', str(tmp_path / 'm')) == 0


def test_report_reads_shards(packed, tmp_path):
    _, sh, _ = packed
    assert run_command('report', str(sh), '--out', str(tmp_path / 'plots')) == 0
    assert list((tmp_path / 'plots').glob('*.png'))


@pytest.mark.parametrize('world,workers', [(2, 1), (2, 2), (3, 4)])
def test_stream_splits_disjoint_and_complete(packed, world, workers):
    """Consumers read disjoint samples whose union is everything (shard or sample split)."""
    _, sh, _ = packed
    all_keys = ShardSource(sh).keys
    seen: list[str] = []
    for r in range(world):
        for w in range(workers):
            seen += [k for k, _ in iter_samples(sh, rank=r, world_size=world, worker=w,
                                                num_workers=workers, with_key=True)]
    assert sorted(seen) == sorted(all_keys)


def test_stream_shuffle_buffer(packed):
    """The buffer reorders samples (deterministically per seed/epoch), losing none."""
    _, sh, _ = packed
    plain = [k for k, _ in iter_samples(sh, with_key=True)]
    a = [k for k, _ in iter_samples(sh, with_key=True, shuffle_buffer=8, seed=1)]
    b = [k for k, _ in iter_samples(sh, with_key=True, shuffle_buffer=8, seed=1)]
    c = [k for k, _ in iter_samples(sh, with_key=True, shuffle_buffer=8, seed=1, epoch=1)]
    assert a == b and a != plain and c != a and sorted(a) == sorted(plain) == sorted(c)
    ref = load(packed[0] / ShardSource(sh).records[0]['npz'])
    first = next(iter_samples(sh))
    assert list(first) == list(ref)


def _hostile(tmp_path: Path, blob: bytes) -> Path:
    d = tmp_path / 'hostile'
    d.mkdir()
    ensure_marker(d)
    (d / layout.shard_name(0)).write_bytes(blob + b'\0' * 1024)
    return d


def test_hostile_member_names_never_become_paths(tmp_path):
    """A member called ../../evil.npz is refused; nothing is written outside."""
    evil = member('../../evil.npz', b'x' * 10) + member('../../evil.json', b'{"npz":"a"}')
    d = _hostile(tmp_path, evil)
    s = ShardSource(d)
    assert s.records == [] and s.problems
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert list(iter_samples(d)) == []
    assert caught and 'not a sample member' in str(caught[0].message)
    with pytest.raises(ShardFormatError):
        list(iter_samples(d, on_error='raise'))
    assert not (tmp_path.parent / 'evil.npz').exists()


def test_hostile_sizes_are_checked_before_reading(tmp_path, monkeypatch):
    """A header declaring more than the bound fails before its data is read."""
    from assoc_logger_ros.shards import sink
    monkeypatch.setitem(sink.LIMITS, 'npz', 1000)
    d = _hostile(tmp_path, member('k__0000000000__000000000.npz', b'x' * 5000))
    with pytest.raises(ShardFormatError, match='limit'):
        list(iter_samples(d, on_error='raise'))


def test_hostile_record_names_refused_by_unpack(packed, tmp_path):
    """A record whose npz is ../escape.npz makes unpack refuse, writing nothing."""
    src, _, _ = packed
    d = tmp_path / 'h'
    d.mkdir()
    ensure_marker(d)
    sink = ShardSink(d, shard_bytes=10**6)
    npz = next(src.glob('*.npz')).read_bytes()
    for name in ('sample_0000000.npz', '../escape.npz'):
        rec = {'npz': name, 'session': 's', 'frame_idx': 0}
        sink.append(layout.sample_key('s', 0, len(sink._entries)), npz,
                    json.dumps(rec).encode(), rec)
    sink.close()
    with pytest.raises(DatasetError, match='refused'):
        unpack(d, tmp_path / 'out' / 'x')
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'escape.npz').exists()


def test_hostile_index_offsets_fall_back_to_the_shard(packed, tmp_path):
    """An index pointing past the shard is not trusted: the shard itself is read."""
    _, sh, _ = packed
    import shutil
    d = tmp_path / 'copy'
    shutil.copytree(sh, d)
    idx = d / layout.index_name(layout.shard_name(0))
    lines = idx.read_text().splitlines()
    e = json.loads(lines[0])
    e['offset'] = 10**9
    idx.write_text('\n'.join([json.dumps(e)] + lines[1:]) + '\n')
    s = ShardSource(d)
    assert len(s.records) == 24 and any('valid entry' in p for p in s.problems)
    assert decode(s.read_bytes(s.records[0]))


def test_symlinked_shards_are_ignored(packed, tmp_path):
    _, sh, _ = packed
    d = tmp_path / 'links'
    d.mkdir()
    ensure_marker(d)
    os.symlink(sh / layout.shard_name(0), d / layout.shard_name(0))
    assert ShardSource(d).records == []


def test_pack_refuses_non_empty_output(packed, tmp_path):
    src, _, _ = packed
    (tmp_path / 'o').mkdir()
    (tmp_path / 'o' / 'x').write_text('keep')
    with pytest.raises(DatasetError):
        pack(src, tmp_path / 'o')
    assert (tmp_path / 'o' / 'x').read_text() == 'keep'


def test_decode_handles_io_roundtrip():
    arrays = {'a': np.arange(6, dtype=np.float32).reshape(2, 3), 's': np.asarray(np.str_('x')),
              'e': np.zeros((0, 4), np.int64), 'f': np.asfortranarray(np.eye(3))}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    got = decode(buf.getvalue())
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        assert np.array_equal(got[k], v, equal_nan=v.dtype.kind == 'f')


def test_stale_index_is_not_used_and_index_rebuilds_it(packed, tmp_path):
    """A shard added after the index: inspect falls back to the shards; `index` catches up."""
    pytest.importorskip('pyarrow')
    import shutil

    from assoc_logger_ros.shards.index import index_is_current
    from assoc_logger_ros.shards.tools import summarize_any
    src, sh, _ = packed
    d = tmp_path / 'grow'
    shutil.copytree(sh, d)
    sink = ShardSink(d, shard_bytes=10**6)
    npz = (src / 'sample_0000000.npz').read_bytes()
    rec = {**ShardSource(sh).records[0], 'npz': 'sample_0000100.npz'}
    sink.append(layout.sample_key('new', 0, 100), npz, json.dumps(rec).encode(), rec)
    sink.close()
    assert not index_is_current(d)
    s = summarize_any(d, load=False)
    assert s['samples'] == 25 and 'index' not in s
    assert run_command('index', str(d)) == 0
    assert index_is_current(d) and summarize_any(d, load=False)['samples'] == 25
