"""The Parquet index of a shard directory: one row per sample, partitioned by session.

Columns: every manifest field (the union over the records), plus ``shard``, ``key``,
``offset`` and ``size`` (where the npz member lies), ``json_offset`` and ``json_size`` (its
manifest line), so an engine that selects rows (DuckDB,
Polars, Spark, Ray Data) can also fetch the samples. Partitions are hive folders
``index/session_key=<slug>-<crc32>/``; the exact session id stays in the ``session`` column.
``index/_source.json`` lists the shards (names and sizes) the index was built from, so a
reader can tell a stale index. Needs ``pyarrow`` (imported here only).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
from typing import Any
import zlib

import numpy as np

from assoc_logger_ros.dataset.store import DatasetError
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.source import ShardSource

SOURCE_NAME = '_source.json'
PARTITION = 'session_key'


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.dataset  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DatasetError('the Parquet index needs pyarrow (pip install -r '
                           'requirements/runtime.in)') from None
    return pyarrow


def session_key(session: str) -> str:
    """Partition value of a session: readable slug plus a CRC32 that keeps slugs apart."""
    return f'{layout.session_slug(session)}-{zlib.crc32(session.encode("utf-8")):08x}'


def shard_listing(directory: Path) -> list[list[Any]]:
    """[[name, size], ...] of the finished shards (what the index must match)."""
    done, _ = layout.list_shards(directory)
    return [[n, (directory / n).stat().st_size] for n in done]


def _column(pa: Any, values: list[Any]) -> Any:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep them, as JSON text
        return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())


def table_of(source: ShardSource) -> Any:
    """The index as a ``pyarrow.Table`` (one row per record, in order)."""
    pa = _pyarrow()
    recs = source.records
    names = list(dict.fromkeys(k for r in recs for k in r))
    cols = {k: _column(pa, [r.get(k) for r in recs]) for k in names if k != PARTITION}
    loc = [source.location(r) for r in recs]
    cols['shard'] = pa.array([x[0] for x in loc], pa.string())
    cols['key'] = pa.array(source.keys, pa.string())
    cols['offset'] = pa.array([x[1] for x in loc], pa.int64())
    cols['size'] = pa.array([x[2] for x in loc], pa.int64())
    jloc = [source.json_location(r) for r in recs]
    cols['json_offset'] = pa.array([x[0] for x in jloc], pa.int64())
    cols['json_size'] = pa.array([x[1] for x in jloc], pa.int64())
    cols[PARTITION] = pa.array([session_key(str(r.get('session', ''))) for r in recs],
                               pa.string())
    return pa.table(cols)


def build_index(directory: str | os.PathLike[str]) -> Path:
    """(Re)write ``DIR/index`` from the shards' own indexes; returns its path."""
    pa = _pyarrow()
    d = Path(directory)
    source = ShardSource(d)
    table = table_of(source)
    final, tmp, old = d / layout.INDEX_DIR, d / (layout.INDEX_DIR + '.tmp'), \
        d / (layout.INDEX_DIR + '.old')
    for p in (tmp, old):
        if p.exists():
            shutil.rmtree(p)
    part = pa.dataset.partitioning(pa.schema([(PARTITION, pa.string())]), flavor='hive')
    pa.dataset.write_dataset(table, tmp, format='parquet', partitioning=part,
                             basename_template='part-{i}.parquet',
                             max_rows_per_file=1 << 22, max_rows_per_group=1 << 16)
    (tmp / SOURCE_NAME).write_text(json.dumps({'shards': shard_listing(d),
                                               'rows': table.num_rows}) + '\n')
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
    return final


def index_is_current(directory: str | os.PathLike[str]) -> bool:
    """True when ``DIR/index`` was built from exactly the shards now present."""
    d = Path(directory)
    try:
        meta = json.loads((d / layout.INDEX_DIR / SOURCE_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get('shards') == shard_listing(d)


def read_index(directory: str | os.PathLike[str], columns: list[str] | None = None) -> Any:
    """The Parquet index as one ``pyarrow.Table`` (partition column restored)."""
    pa = _pyarrow()
    path = Path(directory) / layout.INDEX_DIR
    if not path.is_dir():
        raise DatasetError(f'{directory} has no Parquet index; run `index {directory}`')
    dataset = pa.dataset.dataset(path, format='parquet', partitioning='hive')
    return dataset.to_table(columns=columns)


def _np(table: Any, name: str, fill: float = 0) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, fill)
    return table.column(name).to_numpy(zero_copy_only=False)


def _spread(v: np.ndarray) -> dict[str, float]:
    if not v.size:
        return {'min': 0, 'median': 0, 'max': 0}
    return {'min': int(v.min()), 'median': float(np.median(v)), 'max': int(v.max())}


def summarize_index(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``inspect --no-validate`` prints, computed column-wise from the Parquet index."""
    from assoc_logger_ros.dataset.summary import SEED_TARGET
    t = read_index(directory)
    n = t.num_rows
    matched = _np(t, 'matched_pairs').astype(np.int64)
    total = _np(t, 'est_id_switches').astype(np.int64)
    before = total - _np(t, 'est_id_switches_frame').astype(np.int64)
    stamps = _np(t, 'stamp_ns').astype(np.int64)
    sessions = t.column('session').combine_chunks().dictionary_encode() if n else None
    lo, hi = SEED_TARGET
    out: dict[str, Any] = {
        'directory': str(directory), 'samples': n,
        'bytes': int(_np(t, 'bytes').astype(np.int64).sum()),
        'tracks_per_sample': _spread(_np(t, 'tracks').astype(np.int64)),
        'detections_per_sample': _spread(_np(t, 'detections').astype(np.int64)),
        'matched_pairs': int(matched.sum()),
        'seed_target': {'min': lo, 'max': hi,
                        'status': 'below' if matched.sum() < lo else 'reached'},
        'samples_with_gt': int(_np(t, 'has_gt', False).astype(bool).sum()),
        'embed_truncated_samples': int(_np(t, 'embed_truncated', False).astype(bool).sum()),
        'sessions': {},
    }
    if n:
        codes = sessions.indices.to_numpy(zero_copy_only=False)
        names = sessions.dictionary.to_pylist()
        first = np.full(len(names), n)
        np.minimum.at(first, codes, np.arange(n))
        cnt = np.bincount(codes, minlength=len(names))
        msum = np.bincount(codes, weights=matched, minlength=len(names))
        big = np.iinfo(np.int64)
        hi_t = np.full(len(names), big.min)
        lo_b = np.full(len(names), big.max)
        s_lo = np.full(len(names), big.max)
        s_hi = np.full(len(names), big.min)
        np.maximum.at(hi_t, codes, total)
        np.minimum.at(lo_b, codes, before)
        np.minimum.at(s_lo, codes, stamps)
        np.maximum.at(s_hi, codes, stamps)
        for c in np.argsort(first, kind='stable'):
            out['sessions'][names[c]] = {
                'samples': int(cnt[c]), 'est_id_switches': int(hi_t[c] - lo_b[c]),
                'matched_pairs': int(msum[c]), 'first_stamp_ns': int(s_lo[c]),
                'last_stamp_ns': int(s_hi[c])}
    widths = {}
    for k in ('embed_dim', 'track_embed_dim', 'det_embed_dim'):
        widths[k] = sorted(int(x) for x in np.unique(_np(t, k)[~np.isnan(
            _np(t, k).astype(float))])) if n and k in t.column_names else []
    out['widths'] = {'track_features': [], 'det_features': [], **widths}
    out.update({'validated': 0, 'invalid_samples': 0, 'error_count': 0, 'errors': [],
                'manifest_problems': [], 'index': 'parquet'})
    return out
