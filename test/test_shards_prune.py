"""``prune`` of a shard directory: the npz directory's semantics, in place, crash-safe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assoc_logger_ros import cli
from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.dataset.ops import prune_dataset
from assoc_logger_ros.dataset.select import Criteria
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.writer import SampleWriter
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards import prune as shard_prune
from assoc_logger_ros.shards.pack import pack
from assoc_logger_ros.shards.source import ShardSource
from assoc_logger_ros.shards.stream import iter_samples

pytest.importorskip('pyarrow')


def _dir(d: Path) -> Path:
    with SampleWriter(d, RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16)) as w:
        for i in range(30):
            w.submit(make_snapshot(2 + i % 7, 3 + i % 5, seed=i, frame_idx=i, embed_dim=8),
                     f's{i // 10}', {'source': 'test'})
    return d


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob('*'))
            if p.is_file() and not p.name.startswith('.')}


@pytest.fixture
def dirs(tmp_path):
    src = _dir(tmp_path / 'logs')
    pack(src, tmp_path / 'sh', shard_mb=0.02)
    sh = tmp_path / 'sh'
    assert len(layout.list_shards(sh)[0]) >= 4
    (sh / 'shard-000900.index.jsonl').write_text('{}\n')      # index of no shard
    (sh / ('shard-000001.tar' + '.tmp')).write_bytes(b'x')     # a crash's temp file
    (sh / 'notes.txt').write_text('mine')                      # not the layout's: stays
    return src, sh


def test_prune_shards_keeps_what_prune_keeps_on_the_directory(dirs):
    """Same criteria, same kept samples (exact bytes) as prune on the npz directory."""
    src, sh = dirs
    before = _tree(sh)
    assert cli.main(['prune', str(sh), '--min-matched', '3', '--dry-run']) == 0
    assert _tree(sh) == before                                 # a dry run changes nothing
    ref = prune_dataset(src, Criteria(min_matched=3))
    assert ref['samples_removed']
    assert cli.main(['prune', str(sh), '--min-matched', '3']) == 0
    s = ShardSource(sh)
    assert not s.problems
    kept = [r['npz'] for r in manifest.read_records(src)]
    assert [r['npz'] for r in s.records] == kept
    for rec in s.records:
        assert s.read_bytes(rec) == (src / rec['npz']).read_bytes()
    assert sum(1 for _ in iter_samples(sh)) == len(kept)
    names = set(os.listdir(sh))
    assert 'notes.txt' in names and 'shard-000900.index.jsonl' not in names
    assert not any(n.endswith('.tmp') for n in names)
    from assoc_logger_ros.shards.index import index_is_current, read_index
    assert index_is_current(sh) and read_index(sh).num_rows == len(kept)


def test_a_shard_losing_every_sample_is_deleted(dirs):
    """Shards whose samples all fail go with their index; untouched shards keep their bytes."""
    _, sh = dirs
    s = ShardSource(sh)
    per: dict[str, set[str]] = {}
    for r in s.records:
        per.setdefault(s.location(r)[0], set()).add(r['session'])
    only_s0 = [n for n, ss in per.items() if ss == {'s0'}]
    untouched = {n: (sh / n).read_bytes() for n, ss in per.items() if 's0' not in ss}
    assert only_s0 and untouched
    res = shard_prune.prune_shards(sh, Criteria(exclude_sessions=('s0',)))
    assert res['kept'] == 20 and len(res['samples_removed']) == 10
    names = os.listdir(sh)
    for n in only_s0:
        assert n not in names and layout.index_name(n) not in names
    for n, data in untouched.items():
        assert (sh / n).read_bytes() == data
    assert {r['session'] for r in ShardSource(sh).records} == {'s1', 's2'}


class _PowerCut(BaseException):
    pass


def test_crash_mid_rewrite_leaves_a_readable_directory(dirs, monkeypatch):
    """Killed between dropping the old index and renaming the new shard: still readable.

    Nothing that prune keeps is lost, nothing is doubled, and the shard caught mid-rewrite
    is read whole by scanning it; a second prune finishes the job.
    """
    _, sh = dirs
    before = ShardSource(sh)
    wanted = {before.key(r) for r in before.records if r['matched_pairs'] >= 3}
    real = os.replace

    def crash(a, b, *args, **kw):
        if str(a).endswith('.tar' + '.tmp'):
            raise _PowerCut
        return real(a, b, *args, **kw)

    monkeypatch.setattr(shard_prune.os, 'replace', crash)
    with pytest.raises(_PowerCut):
        shard_prune.prune_shards(sh, Criteria(min_matched=3))
    monkeypatch.undo()
    s = ShardSource(sh)               # one index is missing: that shard is scanned, whole
    keys = [s.key(r) for r in s.records]
    assert len(keys) == len(set(keys)) and wanted <= set(keys)
    assert len(keys) > len(wanted)
    assert any('read the shard itself' in p for p in s.problems)
    for rec in s.records:
        assert s.read_bytes(rec) == before.read_bytes(
            next(r for r in before.records if before.key(r) == s.key(rec)))
    res = shard_prune.prune_shards(sh, Criteria(min_matched=3))
    assert not res['not_removed']
    s = ShardSource(sh)
    assert not s.problems and {s.key(r) for r in s.records} == wanted


def test_prune_refuses_while_a_writer_holds_the_directory(dirs, capsys):
    """Like prune on npz directories: a held lock is a clear error, nothing removed."""
    from assoc_logger_ros.recording.lock import DirectoryLock
    _, sh = dirs
    with DirectoryLock(sh):
        before = _tree(sh)
        assert cli.main(['prune', str(sh), '--min-matched', '3']) == 1
        assert _tree(sh) == before
    assert 'in use by another writer' in capsys.readouterr().err
