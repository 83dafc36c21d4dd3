"""Hostile sample directories: the tools and the writer's repair stay inside, never hang.

Every hostile directory is built here inside ``tmp_path``; the "outside" files the manifests point
at are decoys in ``tmp_path/outside``, checked byte for byte (and inode, link count, name)
afterwards.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
import stat
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable

import numpy as np
import pytest

from assoc_logger_ros import cli
from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.dataset.ops import filter_dataset, merge_datasets, prune_dataset
from assoc_logger_ros.dataset.plots import _pyplot, report
from assoc_logger_ros.dataset.select import Criteria
from assoc_logger_ros.dataset.store import DatasetError
from assoc_logger_ros.dataset.summary import summarize
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.hostile import deflated, write_zip, zero_bomb
from assoc_logger_ros.recording.npzfile import encode, npy_header
from assoc_logger_ros.recording.reconcile import reconcile
from assoc_logger_ros.recording.sample import build
from assoc_logger_ros.recording.sample_file import NpzRejectedError, load_sample
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.recording.writer import SampleWriter

CFG = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16)
REPO = Path(__file__).resolve().parents[1]
HANG_S = 60.0  # generous on a loaded machine; a blocked open() never returns at all


def make_dir(d: Path, n: int = 4, session: str = 'A') -> Path:
    with SampleWriter(d, CFG) as w:
        for i in range(n):
            w.submit(make_snapshot(6, 7, seed=i, frame_idx=i, embed_dim=8,
                                   stamp_ns=10**18 + i * 10**8), session, {'source': 'test'})
    return d


class Decoy:
    """A file outside the dataset; :meth:`untouched` checks content, inode, links and name."""

    def __init__(self, path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        self.path, self.content = path, content
        st = path.stat()
        self.ident = (st.st_ino, st.st_dev, st.st_mtime_ns)

    def untouched(self) -> bool:
        st = os.lstat(self.path)
        siblings = sorted(p.name for p in self.path.parent.iterdir())
        return (stat.S_ISREG(st.st_mode) and st.st_nlink == 1
                and (st.st_ino, st.st_dev, st.st_mtime_ns) == self.ident
                and self.path.read_bytes() == self.content
                and not any(n.endswith('.corrupt') for n in siblings))


def valid_sample_bytes(d: Path) -> bytes:
    """The bytes of a valid sample with many matched pairs (a tempting prune target)."""
    return (d / manifest.read_records(d)[0]['npz']).read_bytes()


def append_lines(d: Path, *records: dict[str, Any]) -> None:
    with open(d / 'manifest.jsonl', 'a', encoding='utf-8') as fh:
        for rec in records:
            fh.write(json.dumps(rec) + '\n')


def entry_like(d: Path, npz: str, **changes: Any) -> dict[str, Any]:
    """A copy of the first record of ``d`` naming ``npz``."""
    return {**manifest.read_records(d)[0], 'npz': npz, **changes}


def run_command(name: str, *argv: str) -> int:
    """``python -m assoc_logger_ros NAME ARGV...`` in this process; its exit status."""
    return cli.main([name, *argv])


def within(timeout: float, fn: Callable[[], Any], fifos: tuple[Path, ...] = ()) -> Any:
    """``fn()`` in a thread; fail (after unblocking any reader of ``fifos``) if it hangs."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result['value'] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            result['error'] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        for fifo in fifos:  # give a blocked open() its writer so the thread can end
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        pytest.fail(f'{fn} did not finish within {timeout} s (blocked on a FIFO?)')
    if 'error' in result:
        raise result['error']
    return result.get('value')


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_dir(tmp_path / 'logs')


# -- confinement: ../ and absolute names ----------------------------------------------------


def escaping_names(tmp_path: Path, decoy: Path, data: Path) -> list[str]:
    return [os.path.relpath(decoy, data), str(decoy), f'./../{decoy.parent.name}/{decoy.name}']


def test_prune_invalid_never_deletes_outside(data, tmp_path, capsys):
    """Prune --invalid: '../' and absolute npz names are invalid entries, the decoy survives."""
    decoy = Decoy(tmp_path / 'outside' / 'precious.npz', b'not a sample, but mine')
    names = escaping_names(tmp_path, decoy.path, data)
    append_lines(data, *(entry_like(data, n) for n in names))
    assert run_command('prune', str(data), '--invalid') == 0
    out = capsys.readouterr().out
    assert decoy.untouched()
    for line in (5, 6, 7):
        assert f'manifest line {line}: npz' in out, out
    assert [r['npz'] for r in manifest.read_records(data)] == [
        f'sample_{i:07d}.npz' for i in range(4)]
    assert summarize(data)['error_count'] == 0


def test_prune_min_matched_never_deletes_outside(data, tmp_path):
    """Prune --min-matched 999 removes the directory's samples, never a listed outside one."""
    decoy = Decoy(tmp_path / 'outside' / 'sample_0000009.npz', valid_sample_bytes(data))
    append_lines(data, *(entry_like(data, n) for n in escaping_names(tmp_path, decoy.path,
                                                                     data)))
    res = prune_dataset(data, Criteria(min_matched=999))
    assert decoy.untouched()
    assert len(res['samples_removed']) == 4 and res['kept'] == 0
    assert sorted(p.name for p in data.glob('sample_*')) == []
    assert len(res['manifest_problems']) == 3


def test_writer_repair_never_renames_outside(data, tmp_path):
    """The writer's start-up repair drops an outside entry without touching what it names.

    Also a symlink in the directory pointing outside: reported, left in place, not followed.
    """
    decoy = Decoy(tmp_path / 'outside' / 'sample_0000007.npz', b'garbage that fails to load')
    good = Decoy(tmp_path / 'outside' / 'sample_0000008.npz', valid_sample_bytes(data))
    append_lines(data, entry_like(data, f'../outside/{decoy.path.name}', bytes=1),
                 entry_like(data, str(good.path), bytes=1))
    (data / 'sample_0000005.npz').symlink_to(decoy.path)
    (data / 'sample_0000006.npz').symlink_to(good.path)
    append_lines(data, entry_like(data, 'sample_0000006.npz'))
    warnings: list[str] = []
    with SampleWriter(data, CFG, warn=warnings.append) as w:
        w.submit(make_snapshot(3, 3, seed=9), 'A', {'source': 'test'})
    text = '\n'.join(warnings)
    assert decoy.untouched() and good.untouched(), text
    assert 'manifest line 5: npz' in text and 'manifest line 6: npz' in text
    assert 'sample_0000006.npz is a symlink' in text
    assert 'sample_0000005.npz is a symlink' in text
    assert (data / 'sample_0000005.npz').is_symlink()
    names = [r['npz'] for r in manifest.read_records(data)]
    assert names == [f'sample_{i:07d}.npz' for i in (0, 1, 2, 3, 7)]  # numbering after 6
    assert all(not validate(data / n) for n in names)


def test_reconcile_drops_invalid_entry_and_readds_its_file(data):
    """A record with a null field for a real file: the entry goes, the file is re-added."""
    lines = (data / 'manifest.jsonl').read_text().splitlines()
    rec = json.loads(lines[1])
    rec['matched_pairs'] = None
    lines[1] = json.dumps(rec)
    (data / 'manifest.jsonl').write_text('\n'.join(lines) + '\n')
    state = reconcile(data)
    assert any('manifest line 2: matched_pairs is null' in m for m in state.messages)
    assert any('sample_0000001.npz was complete' in m for m in state.messages)
    assert sorted(r['npz'] for r in manifest.read_records(data)) == [
        f'sample_{i:07d}.npz' for i in range(4)]


def test_filter_never_links_outside_and_survives_duplicates(data, tmp_path, capsys):
    """A file listed twice and an outside entry: filter skips them; OUT is complete."""
    decoy = Decoy(tmp_path / 'outside' / 'sample_0000011.npz', valid_sample_bytes(data))
    lines = (data / 'manifest.jsonl').read_text().splitlines()
    append_lines(data, json.loads(lines[2]), entry_like(data, str(decoy.path)),
                 entry_like(data, f'../outside/{decoy.path.name}'))
    out = tmp_path / 'out'
    assert run_command('filter', str(data), '--out', str(out)) == 0
    err = capsys.readouterr().err
    assert decoy.untouched()
    assert 'manifest line 5: sample_0000002.npz listed twice' in err, err
    assert 'manifest line 6' in err and 'manifest line 7' in err
    names = [r['npz'] for r in manifest.read_records(out)]
    assert names == [f'sample_{i:07d}.npz' for i in range(4)]
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ['manifest.jsonl'])
    assert all(p.is_file() and not p.is_symlink() for p in out.iterdir())
    assert summarize(out)['error_count'] == 0


def test_filter_copies_a_real_file_never_a_listed_symlink(data, tmp_path):
    """A listed symlink (to an outside sample) is skipped, not copied as a link or followed."""
    decoy = Decoy(tmp_path / 'outside' / 'sample_0000020.npz', valid_sample_bytes(data))
    (data / 'sample_0000020.npz').symlink_to(decoy.path)
    append_lines(data, entry_like(data, 'sample_0000020.npz'))
    res = filter_dataset(data, tmp_path / 'out', Criteria())
    assert decoy.untouched()
    assert res['skipped'] == [('sample_0000020.npz',
                               'sample_0000020.npz is a symlink; only regular files are read')]
    assert not (tmp_path / 'out' / 'sample_0000020.npz').exists()
    assert res['selected'] == 4


def test_filter_output_is_atomic(data, tmp_path, monkeypatch):
    """An error while building OUT leaves no OUT, and the message says why."""
    def full_disk(directory, records):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(manifest, 'write', full_disk)
    with pytest.raises(DatasetError, match='No space left on device.*nothing was written'):
        filter_dataset(data, tmp_path / 'out', Criteria())
    assert not (tmp_path / 'out').exists()
    assert [p.name for p in tmp_path.iterdir()] == ['logs']  # no temporary left behind


def test_merge_skips_unloadable_sample(tmp_path, capsys):
    """One garbage sample (in a clashing session, so it must be loaded) is skipped."""
    a = make_dir(tmp_path / 'a')
    b = make_dir(tmp_path / 'b')
    (b / 'sample_0000001.npz').write_bytes(b'garbage')
    (a / 'sample_0000002.npz').unlink()
    out = tmp_path / 'all'
    assert run_command('merge', str(a), str(b), '--out', str(out)) == 0
    err = capsys.readouterr().err
    assert f'skipped {b}/sample_0000001.npz' in err and f'skipped {a}/sample_0000002.npz' in err
    recs = manifest.read_records(out)
    assert len(recs) == 6 and {r['session'] for r in recs} == {'a/A', 'b/A'}
    assert summarize(out)['error_count'] == 0


def test_merge_output_is_atomic(tmp_path, monkeypatch):
    """A failure half-way through merge leaves no output directory."""
    a, b = make_dir(tmp_path / 'a'), make_dir(tmp_path / 'b', session='B')
    import assoc_logger_ros.dataset.ops as ops
    calls = []

    def failing_place(src, dst):
        calls.append(src)
        if len(calls) == 6:
            raise KeyboardInterrupt  # not a per-sample error: aborts the merge
        return real(src, dst)

    real = ops.place_sample
    monkeypatch.setattr(ops, 'place_sample', failing_place)
    with pytest.raises(KeyboardInterrupt):
        merge_datasets([a, b], tmp_path / 'all')
    assert not (tmp_path / 'all').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a', 'b']


# -- bounded reading -----------------------------------------------------------------------

def sample_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A valid sample: 6 tracks, 7 detections, K = 16."""
    return build(make_snapshot(6, 7, seed=seed, embed_dim=8), 'A', {'source': 'test'},
                 16).arrays


def members_of(arrays: dict[str, np.ndarray], **replace: tuple[bytes, int, int]
               ) -> list[tuple[str, bytes, int, int]]:
    out = []
    for key, arr in arrays.items():
        if key in replace:
            out.append((f'{key}.npy', *replace[key]))
        else:
            out.append((f'{key}.npy', *deflated(npy_header(arr.dtype, arr.shape)
                                                + arr.tobytes())))
    return out


def bomb_sample(path: Path, t: int = 32000, d: int = 32000) -> Path:
    """A sample whose cost_matrix (t x d float32, ~4 GiB at the default) is a zip bomb."""
    arrays = sample_arrays()
    header = npy_header(np.dtype('float32'), (t, d))
    write_zip(path, members_of(arrays, cost_matrix=zero_bomb(header, t * d * 4)))
    return path


def test_bounded_reader_matches_numpy_on_valid_samples(tmp_path):
    """On a real sample the bounded reader returns exactly what np.load returns."""
    arrays = sample_arrays(3)
    path = tmp_path / 'sample_0000000.npz'
    path.write_bytes(encode(arrays))
    got = load_sample(path)
    with np.load(path, allow_pickle=False) as ref:
        assert sorted(got) == sorted(ref.files)
        for key in ref.files:
            assert got[key].dtype == ref[key].dtype and got[key].shape == ref[key].shape
            assert got[key].tobytes() == ref[key].tobytes()
            assert got[key].flags.writeable
    assert validate(path) == []


def test_zip_bomb_is_rejected_fast_with_little_memory(tmp_path):
    """Inspect on a 4 GiB cost_matrix bomb: rejected in well under a second, low RSS."""
    (tmp_path / 'logs').mkdir()
    path = bomb_sample(tmp_path / 'logs' / 'sample_0000000.npz')
    assert path.stat().st_size < 8 * 2**20
    code = (
        'import resource, sys, time\n'
        'from assoc_logger_ros.recording.validate import validate\n'
        'from assoc_logger_ros.dataset.summary import summarize\n'
        'base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n'
        't0 = time.perf_counter()\n'
        f'errors = validate({str(path)!r})\n'
        'dt = time.perf_counter() - t0\n'
        f's = summarize({str(path.parent)!r})\n'
        'peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n'
        'print(dt, (peak - base) / 1024, s["invalid_samples"], errors[0])\n')
    (path.parent / 'manifest.jsonl').write_text(
        json.dumps({'npz': path.name, 'bytes': path.stat().st_size}) + '\n')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    dt, grew_mb, invalid, error = done.stdout.split(' ', 3)
    assert float(dt) < 0.5, done.stdout
    assert float(grew_mb) < 100, done.stdout
    assert int(invalid) == 1
    assert 'cannot load' in error and 'cost_matrix' in error, error


def test_bomb_consistent_with_its_shapes_hits_the_byte_cap(tmp_path):
    """Shapes that agree (T = D = 30000) but declare ~7 GiB: refused by the cap, at once."""
    t = d = 30000
    arrays = sample_arrays()
    members = []
    for key, arr in arrays.items():
        shape = tuple(t if s == 6 and key.startswith('track') else s for s in arr.shape)
        shape = tuple(d if (s == 7 and (key.startswith('det') or key in (
            'match_stage', 'assigned_track_ids', 'new_track_ids'))) else s for s in shape)
        if key in ('cost_matrix', 'mask_matrix'):
            shape = (t, d)
        header = npy_header(arr.dtype, shape)
        nbytes = int(np.prod(shape)) * arr.dtype.itemsize
        if shape == arr.shape:
            members.append((f'{key}.npy', *deflated(header + arr.tobytes())))
        else:
            members.append((f'{key}.npy', *zero_bomb(header, nbytes)))
    path = tmp_path / 'sample_0000000.npz'
    write_zip(path, members)
    t0 = time.perf_counter()
    with pytest.raises(NpzRejectedError, match='over the cap'):
        load_sample(path)
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize('case', ['lying-size', 'pickle', 'not-npy', 'shape-mismatch'])
def test_bounded_reader_rejects_before_inflating(tmp_path, case):
    """Each inconsistency is one clear NpzRejectedError, never a pickle load or a crash."""
    arrays = sample_arrays()
    path = tmp_path / 'sample_0000000.npz'
    if case == 'lying-size':  # header says 7 rows, member holds 70
        arr = np.zeros((70, 8), np.float32)
        member = deflated(npy_header(np.dtype('float32'), (7, 8)) + arr.tobytes())
        write_zip(path, members_of(arrays, det_features=member))
        match = 'det_features: header declares shape'
    elif case == 'pickle':
        hdr = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
        hdr = b'\x93NUMPY\x01\x00' + struct.pack('<H', 118) + hdr.ljust(117) + b'\n'
        write_zip(path, members_of(arrays, metadata=deflated(hdr + b'\x80\x04N.')))
        match = 'would need pickle'
    elif case == 'not-npy':
        write_zip(path, members_of(arrays) + [('evil.py', *deflated(b'print(1)'))])
        match = 'not a KEY.npy array'
    else:
        arr = np.zeros((5, 7), np.float32)
        member = deflated(npy_header(arr.dtype, arr.shape) + arr.tobytes())
        write_zip(path, members_of(arrays, mask_matrix=member))
        match = 'mask_matrix: T=5 but T=6 elsewhere'
    with pytest.raises(NpzRejectedError, match=match):
        load_sample(path)
    errors = validate(path)
    assert len(errors) == 1 and errors[0].startswith('cannot load: NpzRejectedError'), errors


# -- FIFOs and other non-regular entries ---------------------------------------------------


def test_writer_start_up_with_fifo_sample_does_not_hang(data, tmp_path):
    """A FIFO named like a sample (unlisted) is reported and left alone; the writer starts."""
    fifo = data / 'sample_0000009.npz'
    os.mkfifo(fifo)
    warnings: list[str] = []

    def start() -> None:
        with SampleWriter(data, CFG, warn=warnings.append) as w:
            w.submit(make_snapshot(3, 3, seed=9), 'A', {'source': 'test'})

    within(HANG_S, start, (fifo,))
    assert any('sample_0000009.npz is a FIFO' in w for w in warnings), warnings
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert manifest.read_records(data)[-1]['npz'] == 'sample_0000010.npz'


def test_process_writer_start_up_with_fifo_does_not_hang(data):
    """Same with the writer in a child process (it used to exit after a 60 s timeout)."""
    from assoc_logger_ros.recording.process_writer import ProcessWriter
    fifo = data / 'sample_0000001.npz'
    fifo.unlink()
    os.mkfifo(fifo)
    warnings: list[str] = []
    t0 = time.perf_counter()

    def start() -> None:
        w = ProcessWriter(data, CFG, warn=warnings.append)
        w.close()

    within(HANG_S, start, (fifo,))
    assert time.perf_counter() - t0 < 30.0  # the old behaviour was a 60 s timeout
    assert any('sample_0000001.npz is a FIFO' in w for w in warnings), warnings


@pytest.mark.parametrize('kind', ['fifo', 'symlink-to-fifo', 'directory'])
def test_tools_never_block_on_listed_non_regular_files(data, tmp_path, kind, capsys):
    """inspect, validate, report, train_assoc --inspect: one error line each, no hang."""
    target = data / 'sample_0000001.npz'
    target.unlink()
    fifos: tuple[Path, ...] = ()
    if kind == 'fifo':
        os.mkfifo(target)
        fifos = (target,)
    elif kind == 'symlink-to-fifo':
        outside = tmp_path / 'outside' / 'pipe'
        outside.parent.mkdir()
        os.mkfifo(outside)
        target.symlink_to(outside)
        fifos = (outside,)
    else:
        target.mkdir()
    label = {'fifo': 'a FIFO', 'symlink-to-fifo': 'a symlink', 'directory': 'a directory'}[kind]
    train = importlib.import_module('training.train_assoc')
    assert within(HANG_S, lambda: run_command('inspect', str(data)), fifos) == 0
    assert within(HANG_S, lambda: run_command('validate', str(data)), fifos) == 1
    assert within(HANG_S, lambda: train.main(['--data', str(data), '--inspect']), fifos) == 1
    text = capsys.readouterr().out
    assert f'sample_0000001.npz: cannot load: NotRegularFileError: sample_0000001.npz is {label}' \
        in text, text
    _pyplot()  # the first matplotlib import (font cache) is slow; keep it out of the timing
    files = within(HANG_S, lambda: report(data, tmp_path / 'rep'), fifos)
    assert len(files) == 4
    res = within(HANG_S, lambda: filter_dataset(data, tmp_path / 'out', Criteria()), fifos)
    assert res['selected'] == 3 and res['skipped'][0][0] == 'sample_0000001.npz'


def test_manifest_that_is_a_fifo_or_symlink_is_refused(tmp_path):
    """A manifest.jsonl FIFO or symlink: a clean error for tools and the writer, no hang."""
    from assoc_logger_ros.recording.lock import RecorderError
    d = tmp_path / 'fifo'
    d.mkdir()
    os.mkfifo(d / 'manifest.jsonl')
    with pytest.raises(DatasetError, match='is a FIFO'):
        within(HANG_S, lambda: summarize(d), (d / 'manifest.jsonl',))
    with pytest.raises(RecorderError, match='is a FIFO'):
        within(HANG_S, lambda: SampleWriter(d, CFG), (d / 'manifest.jsonl',))
    decoy = Decoy(tmp_path / 'outside' / 'notes.txt', b'{"npz": "x.npz"}\n')
    s = tmp_path / 'link'
    s.mkdir()
    (s / 'manifest.jsonl').symlink_to(decoy.path)
    with pytest.raises(RecorderError, match='is a symlink'):
        SampleWriter(s, CFG)
    assert decoy.untouched()


# -- typed manifest fields -----------------------------------------------------------------


WRONG_FIELDS = [
    ('matched_pairs', None), ('matched_pairs', '7'), ('matched_pairs', True),
    ('matched_pairs', -1), ('tracks', 1.5), ('mean_visibility', float('nan')),
    ('mean_visibility', 'high'), ('stamp_ns', None), ('session', 5), ('has_gt', 1),
    ('est_id_switches', [1]), ('bytes', {}), ('npz', 5), ('npz', ''), ('npz', '..'),
    ('npz', 'a/b.npz'), ('npz', '/abs.npz'),
]


def break_line(data: Path, line: int, key: str, value: Any) -> None:
    lines = (data / 'manifest.jsonl').read_text().splitlines()
    rec = json.loads(lines[line - 1])
    rec[key] = value
    lines[line - 1] = json.dumps(rec)
    (data / 'manifest.jsonl').write_text('\n'.join(lines) + '\n')


@pytest.mark.parametrize('key,value', WRONG_FIELDS)
def test_manifest_parse_reports_wrong_typed_fields(key, value):
    """Each wrong-typed field makes its line an invalid entry, with the line number."""
    good = {'npz': 'sample_0000000.npz', 'session': 'A', 'matched_pairs': 3,
            'mean_visibility': None, 'has_gt': False}
    bad = {**good, 'npz': 'sample_0000001.npz', key: value}
    read = manifest.parse(json.dumps(good) + '\n' + json.dumps(bad) + '\n')
    assert [r['npz'] for r in read.records] == ['sample_0000000.npz']
    assert len(read.invalid) == 1 and read.invalid[0][0] == 2
    assert read.problems[0].startswith('manifest line 2: ') and read.changed


@pytest.mark.parametrize('key,value', [('matched_pairs', None), ('stamp_ns', 'soon'),
                                       ('mean_visibility', float('inf')), ('npz', 7)])
def test_tools_report_wrong_typed_manifest_fields(data, tmp_path, capsys, key, value):
    """inspect/validate/report/train_assoc --inspect report the line, never a TypeError."""
    break_line(data, 3, key, value)
    train = importlib.import_module('training.train_assoc')
    assert run_command('inspect', str(data)) == 0
    assert run_command('validate', str(data)) == 1
    assert train.main(['--data', str(data), '--inspect']) == 1
    assert len(report(data, tmp_path / 'rep')) == 4
    out = capsys.readouterr().out
    assert 'manifest line 3' in out, out
    assert summarize(data)['samples'] == 3
    res = filter_dataset(data, tmp_path / 'out', Criteria(min_matched=0, min_visibility=0.0))
    assert res['total'] == 3 and res['manifest_problems'][0].startswith('manifest line 3')


# -- the writer's own files -----------------------------------------------------------------


@pytest.mark.parametrize('kind', ['symlink', 'fifo'])
def test_writer_lock_file_is_never_written_through(data, tmp_path, kind):
    """A .writer.lock symlink (to a decoy) or FIFO: a clean RecorderError, decoy untouched."""
    from assoc_logger_ros.recording.lock import RecorderError
    decoy = Decoy(tmp_path / 'outside' / 'config.txt', b'do not truncate me\n')
    lock = data / '.writer.lock'
    lock.unlink()
    if kind == 'symlink':
        lock.symlink_to(decoy.path)
    else:
        os.mkfifo(lock)
    with pytest.raises(RecorderError, match='cannot create lock file'):
        within(HANG_S, lambda: SampleWriter(data, CFG), (lock,))
    with pytest.raises(DatasetError, match='cannot create lock file'):
        within(HANG_S, lambda: prune_dataset(data, Criteria()), (lock,))
    assert decoy.untouched()


def test_prune_never_writes_through_a_planted_temp_manifest(data, tmp_path):
    """manifest.jsonl.tmp symlinked to a decoy: prune refuses cleanly, removes nothing."""
    decoy = Decoy(tmp_path / 'outside' / 'notes.txt', b'mine\n')
    (data / 'manifest.jsonl.tmp').symlink_to(decoy.path)
    with pytest.raises(DatasetError, match='nothing was removed'):
        prune_dataset(data, Criteria(min_matched=999))
    assert decoy.untouched()
    assert len(manifest.read_records(data)) == 4
    assert len(list(data.glob('sample_*.npz'))) == 4


def test_no_tool_opens_an_outside_entry(data, tmp_path):
    """Entries naming an outside FIFO: any tool that opened one would block; none does."""
    outside = tmp_path / 'outside'
    outside.mkdir()
    pipe = outside / 'sample_0000030.npz'
    os.mkfifo(pipe)
    decoy = Decoy(outside / 'sample_0000031.npz', valid_sample_bytes(data))
    append_lines(data, *(entry_like(data, n) for n in (
        str(pipe), f'../outside/{pipe.name}', str(decoy.path), f'../outside/{decoy.path.name}')))
    other = make_dir(tmp_path / 'other')
    train = importlib.import_module('training.train_assoc')
    _pyplot()
    steps: list[Callable[[], Any]] = [
        lambda: run_command('inspect', str(data)),
        lambda: run_command('validate', str(data)),
        lambda: train.main(['--data', str(data), '--inspect']),
        lambda: report(data, tmp_path / 'rep'),
        lambda: filter_dataset(data, tmp_path / 'f', Criteria()),
        lambda: merge_datasets([data, other], tmp_path / 'm'),
        lambda: prune_dataset(data, Criteria(min_matched=999), invalid=True, dry_run=True),
        lambda: SampleWriter(data, CFG).close(),
    ]
    for step in steps:
        within(HANG_S, step, (pipe,))
    assert decoy.untouched() and stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert len(manifest.read_records(tmp_path / 'f')) == 4
    assert len(manifest.read_records(tmp_path / 'm')) == 8
    assert sorted(p.name for p in outside.iterdir()) == [pipe.name, decoy.path.name]


def test_output_that_is_a_symlink_is_refused(data, tmp_path):
    """--out pointing at a symlink (to an empty outside directory): refused, nothing written."""
    target = tmp_path / 'outside' / 'empty'
    target.mkdir(parents=True)
    (tmp_path / 'out').symlink_to(target)
    with pytest.raises(DatasetError, match='is a symlink'):
        filter_dataset(data, tmp_path / 'out', Criteria())
    assert list(target.iterdir()) == [] and (tmp_path / 'out').is_symlink()
