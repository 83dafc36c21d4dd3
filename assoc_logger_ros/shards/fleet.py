"""Fleet-wide selection with DuckDB over the Parquet indexes of many shard directories.

An existing engine does the selecting instead of a home-made scheduler: every robot's shard
directory exposes ``index/**/*.parquet``; :func:`connect` puts them behind one DuckDB view
``samples`` (every manifest field, plus ``dataset`` = the position of the directory in the
list, and where each sample lies), and :func:`select_to_shards` copies the samples a SQL
``WHERE`` clause picks into a new shard directory. Example::

    python -m assoc_logger_ros select robot1/shards robot2/shards --out picked
        --where "matched_pairs >= 5 AND mean_visibility > 0.5 AND session LIKE 'r1-%'"

The connection may read only the given index folders (``allowed_directories``, external
access off, configuration locked), so a WHERE clause cannot reach other files. Needs
``duckdb`` (imported here only).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from assoc_logger_ros.dataset.store import DatasetError, staged_output
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.schema import sample_name
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.pack import DEFAULT_SHARD_MB
from assoc_logger_ros.shards.sink import ShardSink, ensure_marker
from assoc_logger_ros.shards.source import read_bounded


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(dirs: list[str | os.PathLike[str]]) -> Any:
    """A DuckDB connection with the view ``samples`` over the indexes of ``dirs``."""
    try:
        import duckdb
    except ImportError:
        raise DatasetError('fleet selection needs duckdb (pip install duckdb)') from None
    paths = [Path(d).resolve() for d in dirs]
    for p in paths:
        if not layout.is_shard_dir(p) or not (p / layout.INDEX_DIR).is_dir():
            raise DatasetError(f'{p} is not a shard directory with a Parquet index '
                               '(run pack, or index)')
    con = duckdb.connect()
    allowed = ', '.join(_sql_text(str(p / layout.INDEX_DIR) + os.sep) for p in paths)
    con.execute(f'SET allowed_directories = [{allowed}]')
    con.execute('SET enable_external_access = false')
    con.execute('SET lock_configuration = true')
    parts = [f'SELECT *, {i} AS dataset FROM read_parquet('
             f'{_sql_text(str(p / layout.INDEX_DIR / "**" / "*.parquet"))}, '
             'hive_partitioning = true, union_by_name = true)' for i, p in enumerate(paths)]
    con.execute('CREATE VIEW samples AS ' + ' UNION ALL BY NAME '.join(parts))
    return con


def select(dirs: list[str | os.PathLike[str]], where: str = 'true') -> list[dict[str, Any]]:
    """Rows of ``samples`` satisfying the SQL ``where``, in dataset, shard, offset order."""
    con = connect(dirs)
    cur = con.execute(f'SELECT * FROM samples WHERE ({where}) '
                      'ORDER BY dataset, shard, "offset"')
    names = [c[0] for c in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def select_to_shards(dirs: list[str | os.PathLike[str]], where: str,
                     out: str | os.PathLike[str], *, shard_mb: float = DEFAULT_SHARD_MB,
                     index: bool = True) -> dict[str, Any]:
    """Copy the samples ``where`` selects from all ``dirs`` into the new shard directory."""
    rows = select(dirs, where)
    paths = [Path(d) for d in dirs]
    with staged_output(out) as dst:
        ensure_marker(dst)
        sink = ShardSink(dst, shard_bytes=int(shard_mb * 2**20), sync_period_s=3600.0,
                         first_number=0)
        for n, row in enumerate(rows):
            shard = str(row['shard'])
            if layout.shard_number(shard) is None:
                raise DatasetError(f'index row names shard {shard[:60]!r}; refused')
            path = paths[int(row['dataset'])] / shard
            data = read_bounded(path, layout.MAX_NPZ_BYTES, int(row['offset']), int(row['size']))
            line = read_bounded(path, layout.MAX_JSON_BYTES, int(row['json_offset']),
                                int(row['json_size']))
            rec = json.loads(line.decode('utf-8'))
            if not isinstance(rec, dict):
                raise DatasetError(f'{shard}: record at {row["json_offset"]} is not an object')
            rec = {**rec, 'npz': sample_name(n)}
            sink.append(layout.sample_key(str(rec.get('session', '')),
                                          int(rec.get('frame_idx', 0)), n),
                        data, manifest.dumps(rec).rstrip('\n').encode('utf-8'), rec)
        sink.close()
        built = None
        if index:
            from assoc_logger_ros.shards.index import build_index
            built = str(build_index(dst))
        return {'out': str(out), 'selected': len(rows), 'shards': len(sink.finished),
                'index': built}
