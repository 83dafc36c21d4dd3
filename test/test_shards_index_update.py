"""Incremental Parquet index updates: one file per shard, full rebuild whenever unsure."""

from __future__ import annotations

import pytest

from assoc_logger_ros.shards import index_update, layout
from assoc_logger_ros.shards.index import build_index, index_is_current, read_index
from assoc_logger_ros.shards.sink import ShardSink, ensure_marker

pytest.importorskip('pyarrow')


def _rec(i: int, **extra) -> dict:
    return {'npz': f'sample_{i:07d}.npz', 'session': f's{i % 2}', 'frame_idx': i,
            'matched_pairs': i % 5, 'mean_visibility': None if i % 3 else 0.5, **extra}


def _shard(sink: ShardSink, lo: int, hi: int, **extra):
    for i in range(lo, hi):
        sink.append(layout.sample_key(f's{i % 2}', i, i), b'PK' + bytes(i),
                    b'{}', _rec(i, **extra))
    return sink.finish()


def test_append_then_drop_matches_full_builds(tmp_path):
    """Appended and dropped shards give the rows a full build gives; a crash is caught."""
    d = tmp_path / 'sh'
    d.mkdir()
    ensure_marker(d)
    sink = ShardSink(d, shard_bytes=1 << 30, sync_period_s=3600.0)
    first = _shard(sink, 0, 6)
    assert index_update.add_shard(d, first) == 'rebuilt'        # no index yet
    second = _shard(sink, 6, 13)
    assert index_update.add_shard(d, second) == 'appended'
    assert index_is_current(d)
    got = read_index(d).sort_by('key').to_pylist()
    build_index(d)
    assert read_index(d).sort_by('key').to_pylist() == got and len(got) == 13
    third = _shard(sink, 13, 20)
    assert index_update.add_shard(d, third) == 'appended'
    (d / third.name).unlink()
    (d / layout.index_name(third.name)).unlink()
    assert not index_is_current(d)                              # stale until updated
    assert index_update.drop_shard(d, third.name) == 'removed'
    assert index_is_current(d) and read_index(d).num_rows == 13
    fourth = _shard(sink, 20, 24, new_key=1)                    # a column the index lacks
    assert index_update.add_shard(d, fourth) == 'rebuilt'
    t = read_index(d)
    assert index_is_current(d) and t.num_rows == 17 and 'new_key' in t.column_names


def test_an_index_behind_the_shards_is_rebuilt(tmp_path):
    """A shard the index never saw (a crash before its update): the next one rebuilds."""
    d = tmp_path / 'sh'
    d.mkdir()
    ensure_marker(d)
    sink = ShardSink(d, shard_bytes=1 << 30, sync_period_s=3600.0)
    index_update.add_shard(d, _shard(sink, 0, 4))
    _shard(sink, 4, 8)                                          # never added
    assert index_update.add_shard(d, _shard(sink, 8, 12)) == 'rebuilt'
    assert index_is_current(d) and read_index(d).num_rows == 12
