"""``prune`` of a shard directory: the npz directory's semantics, shard by shard, in place.

What goes: files of the layout that nothing lists (temp files, an index without its shard),
samples failing the ``filter`` criteria and, with ``invalid``, samples failing validation. An
open ``.tar.part`` left by a crash is finalised first (its complete samples kept), as the next
recorder start would. A shard losing samples is rewritten under its own name with the kept
members' exact bytes; a shard losing all of them is deleted. Crash safety: the new shard is
written and fsynced as a temp file, then the old index is removed, then the temp file replaces
the shard, then the new index is written. Every state in between is a shard without an index,
which every reader scans instead (and ``recover`` re-indexes), so a crash never pairs a shard
with another shard's offsets. Refuses while a writer holds the directory.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from assoc_logger_ros.dataset.select import Criteria, split
from assoc_logger_ros.dataset.store import DatasetError
from assoc_logger_ros.recording.atomic import TMP_SUFFIX, fsync_dir
from assoc_logger_ros.recording.lock import DirectoryLock, RecorderError
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.sink import IndexEntry, recover, write_index
from assoc_logger_ros.shards.source import ShardSource
from assoc_logger_ros.shards.tarformat import END_OF_ARCHIVE, member


def _unlisted(d: Path) -> list[str]:
    """Layout files nothing lists: shard temp files, indexes whose shard is gone."""
    done, _ = layout.list_shards(d)
    have = {layout.index_name(n) for n in done}
    out = []
    for name in sorted(os.listdir(d)):
        if not name.startswith(layout.SHARD_PREFIX) or not os.path.isfile(d / name) \
                or os.path.islink(d / name):
            continue
        if name.endswith(TMP_SUFFIX) or (name.endswith(layout.INDEX_SUFFIX)
                                         and name not in have):
            out.append(name)
    return out


def _rewrite(d: Path, shard: str, source: ShardSource, keep: list[dict[str, Any]]) -> None:
    """Replace ``shard`` by a shard of the ``keep`` records (exact bytes), crash-safe."""
    idx = d / layout.index_name(shard)
    if not keep:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(idx)
        os.unlink(d / shard)
        fsync_dir(d)
        return
    tmp = d / (shard + TMP_SUFFIX)
    entries: list[IndexEntry] = []
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pos = 0
        for rec in keep:
            key, npz, line = source.key(rec), source.read_bytes(rec), source.record_line(rec)
            blob = member(f'{key}.npz', npz) + member(f'{key}.json', line)
            json_off = pos + 512 + len(npz) + (-len(npz) % 512) + 512
            entries.append(IndexEntry(key, pos + 512, len(npz), json_off, len(line), rec))
            os.write(fd, blob)
            pos += len(blob)
        os.write(fd, END_OF_ARCHIVE)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(idx)
    fsync_dir(d)
    os.replace(tmp, d / shard)
    fsync_dir(d)
    write_index(d, shard, entries, True)


def prune_shards(directory: str | os.PathLike[str], criteria: Criteria, *,
                 invalid: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Prune a shard directory in place; the result has ``prune_dataset``'s keys."""
    d = Path(directory)
    if not layout.is_shard_dir(d):
        raise DatasetError(f'{d} is not a shard directory')
    try:
        lock = DirectoryLock(d, 'prune')
    except RecorderError as exc:
        raise DatasetError(str(exc)) from None
    with lock:
        notes: list[str] = []
        _, parts = layout.list_shards(d)
        if parts and not dry_run:
            recover(d, notes.append)
        elif parts:
            notes += [f'{p}: open shard left by a crash; would be finalised' for p in parts]
        unlisted = _unlisted(d)
        source = ShardSource(d)
        notes += source.problems
        keep, drop = split(source.records, criteria)
        removed = [(str(r['npz']), why, r) for r, why in drop]
        if invalid:
            still = []
            for rec in keep:
                try:
                    errors = validate(source.load(rec))
                except Exception as exc:  # noqa: BLE001 - unreadable is invalid
                    errors = [f'cannot load: {type(exc).__name__}: {exc}']
                if errors:
                    removed.append((str(rec['npz']), f'invalid: {errors[0]}', rec))
                else:
                    still.append(rec)
            keep = still
        failed: list[tuple[str, str]] = []
        if not dry_run:
            for name in unlisted:
                try:
                    os.unlink(d / name)
                except OSError as exc:
                    failed.append((name, exc.strerror or str(exc)))
            gone = {id(r) for _, _, r in removed}
            for shard in sorted({source.location(r)[0] for _, _, r in removed}):
                kept = [r for r in source.records
                        if source.location(r)[0] == shard and id(r) not in gone]
                try:
                    _rewrite(d, shard, source, kept)
                except OSError as exc:
                    failed.append((shard, str(exc)))
            if (removed or unlisted) and (d / layout.INDEX_DIR).is_dir():
                notes.append(_reindex(d))
    return {'directory': str(d), 'dry_run': dry_run, 'kept': len(keep),
            'unlisted_removed': unlisted, 'samples_removed': [(n, w) for n, w, _ in removed],
            'missing_entries_dropped': [], 'not_regular_entries_dropped': [],
            'not_removed': failed, 'manifest_problems': notes}


def _reindex(d: Path) -> str:
    from assoc_logger_ros.shards.index import build_index
    try:
        build_index(d)
        return f'{d / layout.INDEX_DIR}: rebuilt'
    except (DatasetError, OSError) as exc:
        return f'{d / layout.INDEX_DIR}: stale ({exc}); run `index {d}`'
