"""Recorder contracts: schema, sample building, manifest, writer queue/resume/reconcile/limits."""

from __future__ import annotations

import json
import os
from pathlib import Path
import threading

import numpy as np
import pytest

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.npzfile import encode, load
from assoc_logger_ros.recording.reconcile import reconcile
from assoc_logger_ros.recording.sample import build
from assoc_logger_ros.recording.schema import (
    FIELDS,
    SEED_KEYS,
    readme_section,
    replace_readme_section,
    sample_index,
    sample_name,
)
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.recording.writer import RecorderError, SampleWriter

CFG = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=32)


def _write(directory: Path, n: int, cfg: RecorderConfig = CFG, start: int = 0,
           **kw) -> SampleWriter:
    w = SampleWriter(directory, cfg, **kw)
    for i in range(start, start + n):
        assert w.submit(make_snapshot(4, 5, seed=i, frame_idx=i), 'sess', {'source': 'test'})
    w.close()
    return w


def _arrays(**kw) -> dict[str, np.ndarray]:
    return build(make_snapshot(**kw), 'sess', {'source': 'test'}, 32).arrays


def test_schema_lists_every_seed_key():
    """The seed's keys keep their names, with the dtypes the issue gives."""
    want = {'frame_idx': 'int64', 'track_ids': 'int64', 'detection_count': 'int64',
            'track_features': 'float32', 'det_features': 'float32',
            'track_embeddings': 'float32', 'det_embeddings': 'float32',
            'cost_matrix': 'float32', 'mask_matrix': 'float32',
            'assigned_track_ids': 'int64', 'metadata': 'U'}
    got = {f.key: f.dtype for f in FIELDS if f.key in want}
    assert got == want
    assert set(want) <= set(SEED_KEYS)


def test_built_sample_matches_schema_exactly():
    """A built sample has exactly the schema's keys (gt only when present) and validates."""
    a = _arrays(gt=True)
    # written only by filter (label_weights), with gt boxes, or after a frame without a sample
    # or with a learned association model loaded (assoc_prob, classical_cost_matrix)
    later = {'label_weights', 'gt_boxes', 'gt_ids', 'assoc_prob',
             'classical_cost_matrix'} | {f.key for f in FIELDS if f.key.startswith('origin_')}
    assert list(a) == [f.key for f in FIELDS if f.key not in later]
    assert validate(a) == []
    assert 'det_gt_ids' not in _arrays(gt=False)


def test_sample_loads_without_pickle(tmp_path):
    """Encoded samples, strings included, load with allow_pickle=False."""
    path = tmp_path / 'x.npz'
    path.write_bytes(encode(_arrays()))
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data['metadata']))
        assert str(data['session_id']) == 'sess'
    assert {'width', 'height', 'fps'} <= set(meta)


def test_encoding_is_deterministic():
    """Identical arrays give identical bytes (no timestamps in the zip)."""
    assert encode(_arrays(seed=3)) == encode(_arrays(seed=3))
    assert encode(_arrays(seed=3)) != encode(_arrays(seed=4))


def test_uncompressed_encoding_loads():
    """log_compress=false writes a stored zip with the same arrays."""
    from assoc_logger_ros.recording.npzfile import decode
    a = _arrays()
    raw, small = encode(a, compress=False), encode(a, compress=True)
    assert len(raw) > len(small)
    assert validate(decode(raw)) == []


@pytest.mark.parametrize('width,cap,truncated', [(16, 32, False), (32, 32, False),
                                                 (48, 32, True), (0, 32, False), (16, 0, True)])
def test_embeddings_fit_cap_and_flag_truncation(width, cap, truncated):
    """Embeddings are zero-padded or cut to the cap; cutting is flagged in the sample."""
    snap = make_snapshot(3, 4, embed_dim=width)
    a = build(snap, 's', {}, cap).arrays
    assert a['track_embeddings'].shape == (3, cap)
    assert a['det_embeddings'].shape == (4, cap)
    assert bool(a['embed_truncated']) is truncated
    assert int(a['det_embed_dim']) == width
    keep = min(width, cap)
    np.testing.assert_array_equal(a['det_embeddings'][:, :keep], snap.det_embeddings[:, :keep])
    assert not a['det_embeddings'][:, keep:].any()
    assert validate(a) == []


def _broken(mutate) -> list[str]:
    a = _arrays(gt=True)
    mutate(a)
    return validate(a)


@pytest.mark.parametrize('mutate,expect', [
    (lambda a: a.pop('cost_matrix'), 'missing key cost_matrix'),
    (lambda a: a.__setitem__('track_ids', a['track_ids'].astype(np.int32)), 'dtype'),
    (lambda a: a.__setitem__('cost_matrix', a['cost_matrix'][:, :-1]), 'D='),
    (lambda a: a.__setitem__('detection_count', np.array([99])), 'detection_count'),
    (lambda a: a['assigned_track_ids'].__setitem__(
        np.flatnonzero(a['assigned_track_ids'] >= 0)[0], 12345), 'not in track_ids'),
    (lambda a: a['mask_matrix'].__setitem__((0, 0), 0.5), 'other than 0 and 1'),
    (lambda a: a['det_features'].__setitem__((0, 0), np.nan), 'det_features has NaN'),
    (lambda a: a.__setitem__('metadata', np.str_('{"width": 1}')), 'lacks height, fps'),
    (lambda a: a.__setitem__('metadata', np.str_('nope')), 'not JSON'),
    (lambda a: a.__setitem__('embed_truncated', np.array(True)), 'embed_truncated'),
    (lambda a: a['det_visibility'].__setitem__(0, 1.5), 'outside [0, 1]'),
    (lambda a: a.__setitem__('extra', np.zeros(1)), 'unknown key'),
])
def test_validator_reports_each_broken_rule(mutate, expect):
    """Each violated rule gives an error line naming it."""
    errors = _broken(mutate)
    assert any(expect in e for e in errors), errors


def test_validator_reports_unloadable_file(tmp_path):
    """A truncated npz is one readable error, not an exception."""
    path = tmp_path / 'bad.npz'
    path.write_bytes(encode(_arrays())[:100])
    errors = validate(path)
    assert len(errors) == 1 and errors[0].startswith('cannot load')


def test_readme_section_is_generated_from_schema():
    """README.md's sample-schema section equals the generated text."""
    readme = Path(__file__).resolve().parents[1] / 'README.md'
    if not readme.exists():
        pytest.skip('README.md not written yet')
    text = readme.read_text(encoding='utf-8')
    if '<!-- BEGIN sample-schema -->' not in text:
        pytest.fail('README.md lacks the sample-schema markers; run '
                    'python -m assoc_logger_ros.recording.schema README.md')
    assert readme_section() in text


def test_readme_replacement_is_idempotent():
    """Regenerating the section twice changes nothing; every key is documented."""
    once = replace_readme_section('# Title\n\ntext\n')
    assert replace_readme_section(once) == once
    for f in FIELDS:
        assert f'`{f.key}`' in once


def test_sample_names_round_trip():
    """sample_name and sample_index invert each other, leftovers included."""
    assert sample_name(42) == 'sample_0000042.npz'
    assert sample_index('sample_0000042.npz') == 42
    assert sample_index('sample_0000042.npz.tmp') == 42
    assert sample_index('manifest.jsonl') is None


def test_manifest_record_starts_with_npz_and_is_json(tmp_path):
    """Every manifest line is a JSON object whose first key is npz, with the jq fields."""
    _write(tmp_path, 3)
    lines = (tmp_path / 'manifest.jsonl').read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        rec = json.loads(line)
        assert next(iter(rec)) == 'npz'
        assert set(manifest.RECORD_KEYS) == set(rec)


def test_manifest_parse_reports_torn_last_line():
    """A last line without newline is torn: dropped and reported, the rest kept."""
    text = '{"npz":"a.npz"}\n{"npz":"b.npz"}\n{"npz":"c.n'
    read = manifest.parse(text)
    assert [r['npz'] for r in read.records] == ['a.npz', 'b.npz']
    assert read.torn == '{"npz":"c.n'
    assert 'torn' in read.problems[0]


def test_writer_writes_valid_samples_and_stats(tmp_path):
    """Each submitted snapshot becomes one valid npz plus one manifest line."""
    w = _write(tmp_path, 5)
    st = w.stats()
    assert st['written'] == 5 and st['queued'] == 5 and st['bytes_written'] > 0
    assert st['last_sample'] == 'sample_0000004.npz'
    recs = manifest.read_records(tmp_path)
    assert [r['npz'] for r in recs] == [sample_name(i) for i in range(5)]
    for r in recs:
        assert validate(tmp_path / r['npz'], embed_cap=32) == []
        assert (tmp_path / r['npz']).stat().st_size == r['bytes']


def test_writer_output_is_byte_identical(tmp_path):
    """Two runs over the same snapshots produce identical directories (files and manifest)."""
    _write(tmp_path / 'a', 4)
    _write(tmp_path / 'b', 4)
    names = sorted(p.name for p in (tmp_path / 'a').iterdir())
    assert names == sorted(p.name for p in (tmp_path / 'b').iterdir())
    for name in names:
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()


def test_resume_continues_numbering(tmp_path):
    """A second writer on the same directory continues after the highest number."""
    _write(tmp_path, 3)
    (tmp_path / 'sample_0000009.npz.corrupt').write_bytes(b'x')
    _write(tmp_path, 2, start=3)
    names = [r['npz'] for r in manifest.read_records(tmp_path)]
    assert names[3:] == ['sample_0000010.npz', 'sample_0000011.npz']


def test_two_writers_refused(tmp_path):
    """A second writer on a directory in use gets a clear RecorderError."""
    w = SampleWriter(tmp_path, CFG)
    try:
        with pytest.raises(RecorderError, match='in use by another writer'):
            SampleWriter(tmp_path, CFG)
    finally:
        w.close()
    SampleWriter(tmp_path, CFG).close()  # free again after close


def test_reconcile_drops_torn_line_and_readds_orphan(tmp_path):
    """After a crash: torn line dropped, complete orphan re-added, temp file deleted."""
    _write(tmp_path, 3)
    path = tmp_path / 'manifest.jsonl'
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(''.join(lines[:2]) + lines[2][:20])  # sample 2 listed by a torn line
    (tmp_path / 'sample_0000003.npz.tmp').write_bytes(b'partial')
    warnings: list[str] = []
    SampleWriter(tmp_path, CFG, warn=warnings.append).close()
    assert any('torn' in m for m in warnings)
    assert any('sample_0000002.npz' in m and 're-added' in m for m in warnings)
    assert any('deleted partial file sample_0000003.npz.tmp' in m for m in warnings)
    assert [r['npz'] for r in manifest.read_records(tmp_path)] == [
        sample_name(i) for i in range(3)]
    assert not (tmp_path / 'sample_0000003.npz.tmp').exists()


def test_reconcile_drops_missing_and_quarantines_invalid(tmp_path):
    """Entries whose file is gone are dropped; an invalid orphan is renamed .corrupt."""
    _write(tmp_path, 3)
    (tmp_path / 'sample_0000001.npz').unlink()
    (tmp_path / 'sample_0000007.npz').write_bytes(b'not a zip')
    result = reconcile(tmp_path)
    assert [r['npz'] for r in result.records] == ['sample_0000000.npz', 'sample_0000002.npz']
    assert any('sample_0000001.npz is in the manifest but missing' in m for m in result.messages)
    assert (tmp_path / 'sample_0000007.npz.corrupt').exists()
    assert result.next_index == 8
    assert reconcile(tmp_path).messages == []  # second pass: nothing left to fix


def test_reconcile_without_fix_changes_nothing(tmp_path):
    """fix=False reports problems but leaves every file as it was."""
    _write(tmp_path, 2)
    (tmp_path / 'manifest.jsonl').write_text('')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = reconcile(tmp_path, fix=False)
    assert len(result.messages) == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_queue_full_drops_newest_and_counts(tmp_path):
    """With the worker blocked, submits beyond the queue size return False and are counted."""
    warnings: list[str] = []
    w = SampleWriter(tmp_path, RecorderConfig(log_min_free_mb=0.0, log_queue_size=2),
                     warn=warnings.append)
    gate = threading.Event()
    original = w._write_one

    def slow(*args):
        gate.wait(10)
        original(*args)

    w._write_one = slow  # type: ignore[method-assign]
    results = [w.submit(make_snapshot(3, 3, seed=i, frame_idx=i), 's', {}) for i in range(6)]
    gate.set()
    w.close()
    st = w.stats()
    assert results.count(False) == st['dropped_queue_full'] >= 3
    assert st['written'] == results.count(True)
    assert sum('queue full' in m for m in warnings) == 1  # rate-limited


def test_byte_limit_stops_with_one_warning(tmp_path):
    """log_max_bytes stops writing once, later submits return False, directory stays valid."""
    warnings: list[str] = []
    one = len(encode(_arrays()))
    cfg = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=32, log_max_bytes=3 * one)
    w = SampleWriter(tmp_path, cfg, warn=warnings.append)
    for i in range(10):
        w.submit(make_snapshot(5, 6, seed=i, frame_idx=i), 's', {})
    w.flush()
    assert not w.submit(make_snapshot(5, 6, seed=11), 's', {})
    w.close()
    st = w.stats()
    assert st['stopped_reason'] and 'log_max_bytes' in st['stopped_reason']
    assert st['written'] + st['dropped_disk'] == 11
    assert sum('stopped' in m for m in warnings) == 1
    assert st['bytes_total'] <= 3 * one
    assert reconcile(tmp_path).messages == []


def test_min_free_space_stops_writing(tmp_path):
    """A free-space floor above what the disk has stops writing before the first sample."""
    warnings: list[str] = []
    w = SampleWriter(tmp_path, RecorderConfig(log_min_free_mb=1e9), warn=warnings.append)
    w.submit(make_snapshot(), 's', {})
    w.close()
    assert w.stats()['written'] == 0
    assert 'log_min_free_mb' in w.stats()['stopped_reason']
    assert len(warnings) == 1


def test_write_error_cleans_partial_file(tmp_path, monkeypatch):
    """An OSError mid-write (ENOSPC) leaves no partial file and stops with one warning."""
    import errno

    from assoc_logger_ros.recording import atomic
    warnings: list[str] = []
    w = SampleWriter(tmp_path, CFG, warn=warnings.append)
    w.submit(make_snapshot(seed=1), 's', {})
    w.flush()
    real_write = os.write

    def failing(fd, data):
        if os.fstat(fd).st_size > 0 or len(data) > 1000:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(fd, data)

    monkeypatch.setattr(atomic.os, 'write', failing)
    w.submit(make_snapshot(seed=2), 's', {})
    w.flush()
    monkeypatch.undo()
    w.close()
    assert 'No space left' in w.stats()['stopped_reason']
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        '.writer.lock', 'manifest.jsonl', 'sample_0000000.npz']
    assert reconcile(tmp_path).messages == []


def test_invalid_snapshot_is_not_written(tmp_path):
    """A snapshot that breaks the schema is counted and reported, never written."""
    import dataclasses
    snap = make_snapshot()
    bad = dataclasses.replace(snap, det_features=np.full_like(snap.det_features, np.nan))
    warnings: list[str] = []
    w = SampleWriter(tmp_path, CFG, warn=warnings.append)
    w.submit(bad, 's', {})
    w.submit(snap, 's', {})
    w.close()
    assert w.stats()['invalid'] == 1 and w.stats()['written'] == 1
    assert any('NaN' in m for m in warnings)


def test_close_is_idempotent_and_refuses_later_submits(tmp_path):
    """close() twice is fine; submit after close returns False and is counted."""
    w = _write(tmp_path, 1)
    assert w.close() is True
    assert w.submit(make_snapshot(), 's', {}) is False
    assert w.stats()['dropped_closed'] == 1


def test_samples_on_disk_load_back_equal(tmp_path):
    """What is read back equals what was built (arrays round-trip exactly)."""
    _write(tmp_path, 1)
    loaded = load(tmp_path / 'sample_0000000.npz')
    built = build(make_snapshot(4, 5, seed=0, frame_idx=0), 'sess', {'source': 'test'},
                  32).arrays
    assert list(loaded) == list(built)
    for key in built:
        np.testing.assert_array_equal(loaded[key], built[key])


def test_manifest_append_failure_rolls_back(tmp_path, monkeypatch):
    """If the manifest line cannot be appended, its sample is removed and writing stops."""
    import errno

    from assoc_logger_ros.recording import writer as writer_mod
    w = SampleWriter(tmp_path, CFG)
    w.submit(make_snapshot(seed=1), 's', {})
    w.flush()
    before = (tmp_path / 'manifest.jsonl').read_bytes()

    def full(fd, data):
        os.write(fd, data[:10])  # a partial line reaches the file first
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(writer_mod, '_write_all', full)
    w.submit(make_snapshot(seed=2), 's', {})
    w.flush()
    w.close()
    assert 'manifest failed' in w.stats()['stopped_reason']
    assert (tmp_path / 'manifest.jsonl').read_bytes() == before
    assert not (tmp_path / 'sample_0000001.npz').exists()
    assert reconcile(tmp_path).messages == []


def test_close_timeout_returns_false_then_completes(tmp_path):
    """close(timeout) on a stuck worker returns False; a later close() finishes the job."""
    w = SampleWriter(tmp_path, CFG)
    gate = threading.Event()
    original = w._write_one

    def stuck(*args):
        gate.wait(10)
        original(*args)

    w._write_one = stuck  # type: ignore[method-assign]
    w.submit(make_snapshot(), 's', {})
    assert w.close(timeout=0.2) is False
    gate.set()
    assert w.close() is True
    assert w.stats()['written'] == 1


def test_reconcile_only_deletes_its_own_temp_files(tmp_path):
    """A leftover manifest.jsonl.tmp goes; a user's unrelated *.tmp file stays."""
    _write(tmp_path, 1)
    (tmp_path / 'manifest.jsonl.tmp').write_text('partial')
    (tmp_path / 'notes.tmp').write_text('mine')
    reconcile(tmp_path)
    assert not (tmp_path / 'manifest.jsonl.tmp').exists()
    assert (tmp_path / 'notes.tmp').exists()


hypothesis = pytest.importorskip('hypothesis')
st = pytest.importorskip('hypothesis.strategies')


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(t=st.integers(0, 12), d=st.integers(0, 12), width=st.integers(0, 40),
                  cap=st.integers(0, 40), gt=st.booleans(), seed=st.integers(0, 1000))
def test_any_consistent_snapshot_round_trips(t, d, width, cap, gt, seed):
    """Any consistent snapshot builds a valid sample that encodes and decodes unchanged."""
    from assoc_logger_ros.recording.npzfile import decode
    arrays = build(make_snapshot(t, d, embed_dim=width, gt=gt, seed=seed), 's', {}, cap).arrays
    assert validate(arrays, embed_cap=cap) == []
    back = decode(encode(arrays))
    assert list(back) == list(arrays)
    for key, value in arrays.items():
        assert back[key].dtype == value.dtype
        np.testing.assert_array_equal(back[key], value)
