"""inspect / validate / filter / merge / report on shard directories (and mixed merges).

The commands call these when a directory has the shard marker; the npz layout keeps its own
code path in :mod:`assoc_logger_ros.dataset`. Outputs of filter and merge are shard
directories written like ``pack`` writes them (each shard atomic, the Parquet index last).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any
import zipfile

import numpy as np

from assoc_logger_ros.dataset.label_filter import LabelRule, relabel
from assoc_logger_ros.dataset.select import Criteria, split
from assoc_logger_ros.dataset.store import DatasetError, staged_output
from assoc_logger_ros.dataset.track_context import context_by_record
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.npzfile import encode
from assoc_logger_ros.recording.schema import sample_name
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.npzdecode import decode
from assoc_logger_ros.shards.pack import DEFAULT_SHARD_MB
from assoc_logger_ros.shards.sink import ShardSink, ensure_marker
from assoc_logger_ros.shards.source import ShardSource, open_source


def summarize_any(directory: str | os.PathLike[str], *, load: bool = True,
                  embed_cap: int | None = None) -> dict[str, Any]:
    """``summarize`` for either layout.

    A shard directory's manifest-only statistics come from its Parquet index when that is
    current (column-wise, fast at millions of rows).
    """
    from assoc_logger_ros.dataset.summary import summarize
    d = Path(directory)
    if not layout.is_shard_dir(d):
        return summarize(d, load=load, embed_cap=embed_cap)
    if not load:
        from assoc_logger_ros.shards.index import index_is_current, summarize_index
        try:
            if index_is_current(d):
                return summarize_index(d)
        except DatasetError:
            pass  # no pyarrow: fall back to the shards' own indexes
    source = ShardSource(d)
    out = summarize(d, load=load, embed_cap=embed_cap, source=source)
    out['notes'] = source.notes
    return out


def _write_index(dst: Path, index: bool) -> str | None:
    if not index:
        return None
    from assoc_logger_ros.shards.index import build_index
    try:
        return str(build_index(dst))
    except DatasetError:
        return None  # pyarrow missing: shards stay readable through their own indexes


def filter_shards(src: str | os.PathLike[str], out: str | os.PathLike[str],
                  criteria: Criteria, rule: LabelRule | None = None, *,
                  shard_mb: float = DEFAULT_SHARD_MB, index: bool = True,
                  jobs: int = 1) -> dict[str, Any]:
    """Samples of the shard directory ``src`` passing ``criteria`` -> new shard directory.

    With a per-pair ``rule`` each kept sample is rewritten with ``label_weights`` (as the
    directory ``filter`` does); a sample that cannot be read or rewritten is skipped, reported.
    """
    source = ShardSource(Path(src))
    keep, drop = split(source.records, criteria)
    rewrite = rule is not None and not rule.is_empty()
    pairs = {'matched': 0, 'ignored': 0}
    skipped: list[tuple[str, str]] = []
    n = 0
    context_problems: list[str] = []
    context = context_by_record(source.records, lambda r: decode(source.read_bytes(r)), rule,
                                context_problems, jobs)
    with staged_output(out) as dst:
        ensure_marker(dst)
        sink = ShardSink(dst, shard_bytes=int(shard_mb * 2**20), sync_period_s=3600.0,
                         first_number=0)
        for rec in keep:
            try:
                data, line = source.read_bytes(rec), source.record_line(rec)
                if rewrite:
                    arrays = decode(data)
                    matched, ignored = relabel(arrays, rule, context.get(id(rec)))
                    data = encode(arrays, _compressed(data))
                    rec = manifest.record_from_arrays(arrays, rec['npz'], len(data))
                    line = manifest.dumps(rec).rstrip('\n').encode('utf-8')
                    pairs['matched'] += matched
                    pairs['ignored'] += ignored
            except Exception as exc:  # noqa: BLE001 - one bad sample is reported, not fatal
                skipped.append((str(rec.get('npz'))[:60], f'{type(exc).__name__}: {exc}'))
                continue
            sink.append(layout.sample_key(str(rec.get('session', '')),
                                          int(rec.get('frame_idx', 0)), n), data, line, rec)
            n += 1
        sink.close()
        reasons: dict[str, int] = {}
        for _, why in drop:
            reasons[why] = reasons.get(why, 0) + 1
        return {'source': str(source.directory), 'out': str(out), 'total': len(source.records),
                'selected': n, 'linked': 0, 'copied': 0 if rewrite else n,
                'rewritten': n if rewrite else 0, 'pairs_matched': pairs['matched'],
                'pairs_ignored': pairs['ignored'], 'rejected': reasons,
                'manifest_problems': list(source.problems), 'skipped': skipped,
                'context_problems': context_problems,
                'index': _write_index(dst, index)}



def _compressed(content: bytes) -> bool:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        infos = zf.infolist()
        return bool(infos) and infos[0].compress_type != zipfile.ZIP_STORED


def merge_any(sources: list[str | os.PathLike[str]], out: str | os.PathLike[str], *,
              shard_mb: float = DEFAULT_SHARD_MB, index: bool = True) -> dict[str, Any]:
    """Merge directories of either layout into one new shard directory, renumbered.

    Session rules as ``merge``: an id found in several sources becomes ``<label>/<id>`` in
    each of them (those samples are rewritten with the new id).
    """
    from assoc_logger_ros.dataset.ops import _source_labels
    dirs = [Path(s) for s in sources]
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise DatasetError('a source directory is given twice')
    readers = [open_source(d) for d in dirs]
    labels = _source_labels(dirs)
    owners: dict[str, set[int]] = {}
    for i, r in enumerate(readers):
        for s in r.sessions():
            owners.setdefault(s, set()).add(i)
    clashing = {s for s, who in owners.items() if len(who) > 1}
    with staged_output(out) as dst:
        ensure_marker(dst)
        sink = ShardSink(dst, shard_bytes=int(shard_mb * 2**20), sync_period_s=3600.0,
                         first_number=0)
        n, rewritten, renamed, dims = 0, 0, {}, set()
        skipped: list[tuple[str, str, str]] = []
        for i, r in enumerate(readers):
            for rec, data, err in r.iter_bytes():
                if data is None:
                    skipped.append((str(dirs[i]), str(rec.get('npz'))[:60], err))
                    continue
                name = sample_name(n)
                session = str(rec.get('session', ''))
                if session in clashing:
                    new_session = f'{labels[i]}/{session}'
                    renamed[f'{labels[i]}:{session}'] = new_session
                    arrays = decode(data)
                    arrays['session_id'] = np.asarray(np.str_(new_session))
                    data = encode(arrays, _compressed(data))
                    new = manifest.record_from_arrays(arrays, name, len(data))
                    rewritten += 1
                else:
                    new = {**rec, 'npz': name}
                if 'embed_dim' in new:
                    dims.add(int(new['embed_dim']))
                sink.append(layout.sample_key(str(new.get('session', '')),
                                              int(new.get('frame_idx', 0)), n),
                            data, manifest.dumps(new).rstrip('\n').encode('utf-8'), new)
                n += 1
        sink.close()
        return {'out': str(out), 'sources': [str(d) for d in dirs], 'samples': n,
                'embed_dims': sorted(dims), 'linked': 0, 'copied': n - rewritten,
                'rewritten': rewritten, 'renamed_sessions': renamed,
                'manifest_problems': [p for r in readers for p in r.problems],
                'skipped': skipped, 'index': _write_index(dst, index)}
