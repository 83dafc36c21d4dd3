"""Incremental updates of the Parquet index, for the recorder on board.

Rebuilding ``index/`` from every shard each time one is finished costs O(session) per shard
(18 s for 100,000 rows on the loaded 2-core development machine), O(n^2) over a long
recording. The recorder instead adds one file per finished shard and session,
``index/session_key=<k>/<shard>.parquet``, with the schema of the files already there, and
then rewrites ``index/_source.json`` (atomic); a deleted shard's files are removed the same
way. Each file is written as a dot-named temp file and renamed. Readers (pyarrow, DuckDB,
Polars) read the folder as one table; a crash between the files and ``_source.json`` leaves
an index that :func:`~assoc_logger_ros.shards.index.index_is_current` calls stale (readers
use the shards' own indexes) and the next start rebuilds. Anything else (no index yet, an
index not matching the shards before this one, a new column, a type that does not cast)
falls back to the full :func:`~assoc_logger_ros.shards.index.build_index`.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from assoc_logger_ros.recording.atomic import write_atomic
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.index import (
    PARTITION,
    SOURCE_NAME,
    _column,
    _pyarrow,
    build_index,
    session_key,
    shard_listing,
)
from assoc_logger_ros.shards.sink import Finished

LOCATION = ('shard', 'key', 'offset', 'size', 'json_offset', 'json_size')


def _meta(d: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((d / layout.INDEX_DIR / SOURCE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and isinstance(meta.get('shards'), list) else None


def _file_schema(pa: Any, d: Path) -> Any | None:
    """The schema of the index's files (all share it), None when there are none."""
    for p in sorted((d / layout.INDEX_DIR).glob('*/*.parquet')):
        return pa.parquet.read_schema(p)
    return None


def _table(pa: Any, done: Finished, schema: Any) -> Any | None:
    """The rows of one finished shard in ``schema`` (None when they do not fit it)."""
    recs = [e.record for e in done.entries]
    names = list(dict.fromkeys(k for r in recs for k in r if k != PARTITION))
    if not set(names) <= set(schema.names):
        return None
    values: dict[str, list[Any]] = {k: [r.get(k) for r in recs] for k in names}
    values.update({'shard': [done.name] * len(recs), 'key': [e.key for e in done.entries],
                   'offset': [e.offset for e in done.entries],
                   'size': [e.size for e in done.entries],
                   'json_offset': [e.json_offset for e in done.entries],
                   'json_size': [e.json_size for e in done.entries]})
    cols = []
    for f in schema:
        if f.name in values:
            col = _column(pa, values[f.name])
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                return None
        else:
            col = pa.nulls(len(recs), f.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)


def _write_source(d: Path, rows: int) -> None:
    write_atomic(d / layout.INDEX_DIR / SOURCE_NAME,
                 (json.dumps({'shards': shard_listing(d), 'rows': rows}) + '\n').encode())


def add_shard(directory: str | os.PathLike[str], done: Finished) -> str:
    """Add a just-finished shard to the index: 'appended', or 'rebuilt' (full build)."""
    pa = _pyarrow()
    d = Path(directory)
    meta = _meta(d)
    now = shard_listing(d)
    before = [s for s in now if s[0] != done.name]
    schema = _file_schema(pa, d) if meta is not None else None
    table = None
    if meta is not None and meta['shards'] == before and schema is not None \
            and not list((d / layout.INDEX_DIR).glob(f'*/{done.name}.parquet')):
        table = _table(pa, done, schema)
    if table is None:
        build_index(d)
        return 'rebuilt'
    keys = [session_key(str(e.record.get('session', ''))) for e in done.entries]
    for k in dict.fromkeys(keys):
        rows = [i for i, x in enumerate(keys) if x == k]
        folder = d / layout.INDEX_DIR / f'{PARTITION}={k}'
        folder.mkdir(exist_ok=True)
        tmp = folder / f'.{done.name}.parquet.tmp'
        pa.parquet.write_table(table.take(pa.array(rows, pa.int64())), tmp)
        os.replace(tmp, folder / f'{done.name}.parquet')
    _write_source(d, int(meta.get('rows', 0)) + table.num_rows)
    return 'appended'


def drop_shard(directory: str | os.PathLike[str], shard: str) -> str:
    """Remove a deleted shard's rows: 'removed' (its own files), or 'rebuilt' (full build)."""
    pa = _pyarrow()
    d = Path(directory)
    meta = _meta(d)
    files = list((d / layout.INDEX_DIR).glob(f'*/{shard}.parquet'))
    listed = [s for s in (meta or {}).get('shards', []) if s and s[0] != shard]
    if meta is None or not files or listed != shard_listing(d):
        build_index(d)
        return 'rebuilt'
    gone = sum(pa.parquet.read_metadata(p).num_rows for p in files)
    for p in files:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)
    _write_source(d, int(meta.get('rows', 0)) - gone)
    return 'removed'
