"""``pack`` and ``unpack``: a sample directory to shards + Parquet index and back, byte for byte.

``pack`` keeps each sample's npz bytes and its manifest line verbatim (members ``KEY.npz`` and
``KEY.json``), in manifest order, so ``unpack`` writes the very same files and the very same
``manifest.jsonl``. Only records whose line is a valid record and whose file exists are
packed; anything skipped is reported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from assoc_logger_ros.dataset.store import DatasetError, staged_output
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.atomic import fsync_dir, write_atomic
from assoc_logger_ros.recording.schema import MANIFEST_NAME, SAMPLE_SUFFIX
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.sink import ShardSink, ensure_marker
from assoc_logger_ros.shards.source import (
    DirSource,
    ShardSource,
    open_source,
    plain_name,
    read_bounded,
)

DEFAULT_SHARD_MB = 256.0
MAX_MANIFEST_BYTES = 4 * 2**30


def raw_lines(directory: Path) -> list[bytes]:
    """The manifest's lines that are records (the same rule as ``manifest.parse``), verbatim."""
    try:
        text = read_bounded(directory / MANIFEST_NAME, MAX_MANIFEST_BYTES)
    except DatasetError:
        return []
    lines = text.split(b'\n')
    complete = text.endswith(b'\n') or not text
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or (n == len(lines) and not complete):
            continue
        try:
            rec = json.loads(line.decode('utf-8', errors='replace'))
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get('npz'), str):
            out.append(line)
    return out


def pack(src: str | os.PathLike[str], out: str | os.PathLike[str], *,
         shard_mb: float = DEFAULT_SHARD_MB, index: bool = True,
         fsync: bool = True) -> dict[str, Any]:
    """Write the samples of ``src`` (either layout) as shards in the new directory ``out``."""
    source = open_source(src)
    lines = raw_lines(source.directory) if isinstance(source, DirSource) else None
    if lines is not None and len(lines) != len(source.records):
        raise DatasetError('manifest lines and records disagree; run prune first')
    with staged_output(out) as dst:
        ensure_marker(dst)
        sink = ShardSink(dst, shard_bytes=int(shard_mb * 2**20), fsync=fsync,
                         sync_period_s=3600.0, first_number=0)
        packed, skipped = 0, []
        for n, (rec, data, err) in enumerate(source.iter_bytes()):
            if data is None:
                skipped.append(f'{str(rec.get("npz"))[:60]}: {err}')
                continue
            if lines is not None:
                line = lines[n]
            elif isinstance(source, ShardSource):
                line = source.record_line(rec)
            else:
                line = manifest.dumps(rec).rstrip('\n').encode('utf-8')
            key = layout.sample_key(str(rec.get('session', '')), int(rec.get('frame_idx', 0)),
                                    packed)
            sink.append(key, data, line, rec)
            packed += 1
        sink.close()
        result: dict[str, Any] = {
            'source': str(source.directory), 'out': str(out), 'samples': packed,
            'shards': len(sink.finished), 'bytes': sum(f.nbytes for f in sink.finished),
            'skipped': skipped, 'problems': source.problems, 'index': None}
        if index:
            from assoc_logger_ros.shards.index import build_index
            result['index'] = str(build_index(dst))
        return result


def unpack(src: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Restore ``sample_*.npz`` + ``manifest.jsonl`` from a shard directory, byte for byte."""
    d = Path(src)
    if not layout.is_shard_dir(d):
        raise DatasetError(f'{d} is not a shard directory (no {layout.MARKER_NAME})')
    source = ShardSource(d)
    seen: set[str] = set()
    for rec in source.records:
        name = plain_name(rec.get('npz'))
        if name is None or not name.endswith(SAMPLE_SUFFIX) or name in seen:
            raise DatasetError(f'record names {str(rec.get("npz"))[:60]!r}: not a unique plain '
                               f'{SAMPLE_SUFFIX} file name; refused')
        seen.add(name)
    with staged_output(out) as dst:
        lines = []
        for rec, data, err in source.iter_bytes():
            if data is None:
                raise DatasetError(err)
            write_atomic(dst / rec['npz'], data, fsync=False)
            lines.append(source.record_line(rec) + b'\n')
        write_atomic(dst / MANIFEST_NAME, b''.join(lines))
        fsync_dir(dst)
        return {'source': str(d), 'out': str(out), 'samples': len(lines),
                'problems': source.problems}
