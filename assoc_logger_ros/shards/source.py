"""One reader for both layouts: a sample directory (npz + manifest) or a shard directory.

:func:`open_source` returns a :class:`DirSource` or a :class:`ShardSource`; both give the
manifest records in order, the raw npz bytes of a record and its arrays, so the dataset tools
(inspect, validate, filter, merge, report, unpack, the streaming reader) are written once.
Neither ever uses a manifest entry or a member name as a path beyond one plain file name inside
the given directory, and every size is checked before it is read.
"""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from assoc_logger_ros.dataset.store import Dataset, DatasetError
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.npzdecode import decode
from assoc_logger_ros.shards.sink import scan


def plain_name(name: object) -> str | None:
    """``name`` when it is one plain file name (no separators, not '.'/'..'), else None."""
    if (not isinstance(name, str) or not name or '/' in name or '\\' in name or '\0' in name
            or name in ('.', '..')):
        return None
    return name


def read_bounded(path: Path, limit: int, offset: int = 0, size: int | None = None) -> bytes:
    """Bytes of a regular file (not a link), at most ``limit`` of them; DatasetError else."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise DatasetError(f'{path.name}: {exc.strerror}') from None
    import stat
    if not stat.S_ISREG(st.st_mode):
        raise DatasetError(f'{path.name}: not a regular file')
    want = st.st_size - offset if size is None else size
    if want > limit or offset + want > st.st_size:
        raise DatasetError(f'{path.name}: {want} bytes at {offset} out of bounds '
                           f'(limit {limit}, file {st.st_size})')
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    try:
        return os.pread(fd, want, offset)
    finally:
        os.close(fd)


class DirSource:
    """The npz + manifest layout, read through :class:`~assoc_logger_ros.dataset.store.Dataset`."""

    layout = 'npz'

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.directory = ds.directory
        self.records = ds.records
        self.problems = list(ds.problems)

    def sessions(self) -> list[str]:
        """Session ids in order of first appearance."""
        return self.ds.sessions()

    def read_bytes(self, rec: dict[str, Any]) -> bytes:
        """The npz file of a record (one plain name inside the directory, bounded)."""
        name = plain_name(rec.get('npz'))
        if name is None:
            raise DatasetError(f'manifest entry {str(rec.get("npz"))[:60]!r} is not a plain '
                               'file name; refused')
        return read_bounded(self.directory / name, layout.MAX_NPZ_BYTES)

    def exists(self, rec: dict[str, Any]) -> bool:
        """True when the record's file is a regular file in the directory."""
        name = plain_name(rec.get('npz'))
        p = self.directory / name if name else None
        return bool(p) and p.is_file() and not p.is_symlink()

    def load(self, rec: dict[str, Any]) -> dict[str, np.ndarray]:
        """The arrays of a record."""
        return decode(self.read_bytes(rec), max_bytes=8 * layout.MAX_NPZ_BYTES)

    def iter_bytes(self) -> Iterator[tuple[dict[str, Any], bytes | None, str]]:
        """(record, npz bytes or None, error) in manifest order."""
        for rec in self.records:
            try:
                yield rec, self.read_bytes(rec), ''
            except (DatasetError, OSError) as exc:
                yield rec, None, str(exc)

    def iter_loaded(self, every: int = 1) -> Iterator[tuple[dict[str, Any], dict | None, str]]:
        """(record, arrays or None, load error) for every ``every``-th record."""
        for rec in self.records[::max(1, every)]:
            try:
                yield rec, self.load(rec), ''
            except Exception as exc:  # noqa: BLE001 - reported per sample
                yield rec, None, f'{type(exc).__name__}: {exc}'


class ShardSource:
    """A shard directory: records from the shards' index files, bytes by offset."""

    layout = 'shards'

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.records: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.keys: list[str] = []
        self._loc: list[tuple[str, int, int]] = []
        self._json: list[tuple[int, int]] = []
        self._pos: dict[int, int] = {}
        done, parts = layout.list_shards(directory)
        self.shards = done
        for part in parts:
            self.notes.append(f'{part}: open shard (being written, or left by a crash: the '
                                 'next recorder start finalises it)')
        for shard in done:
            self._add_shard(shard)
        self._pos = {id(r): i for i, r in enumerate(self.records)}

    def _add_shard(self, shard: str) -> None:
        path = self.directory / shard
        size = path.stat().st_size
        idx = self.directory / layout.index_name(shard)
        entries: list[tuple[str, int, int, int, int, dict[str, Any]]] = []
        try:
            text = read_bounded(idx, layout.MAX_INDEX_BYTES).decode('utf-8')
            for n, line in enumerate(text.splitlines(), 1):
                e = json.loads(line)
                key, off, nb, rec = e['key'], int(e['offset']), int(e['size']), e['record']
                joff, jnb = int(e['json_offset']), int(e['json_size'])
                if (not isinstance(key, str) or not layout.is_key(key)
                        or not isinstance(rec, dict) or not isinstance(rec.get('npz'), str)
                        or off < 512 or nb < 0 or nb > layout.MAX_NPZ_BYTES
                        or off + nb > size or joff < 512 or jnb < 0
                        or jnb > layout.MAX_JSON_BYTES or joff + jnb > size):
                    raise ValueError(f'line {n} is not a valid entry')
                entries.append((key, off, nb, joff, jnb, rec))
        except (DatasetError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            scanned, _, problem = scan(path)
            self.problems.append(f'{layout.index_name(shard)}: {exc}; read the shard itself'
                                 + (f' ({problem})' if problem else ''))
            entries = [(e.key, e.offset, e.size, e.json_offset, e.json_size, e.record)
                       for e in scanned]
        for key, off, nb, joff, jnb, rec in entries:
            self.records.append(rec)
            self.keys.append(key)
            self._loc.append((shard, off, nb))
            self._json.append((joff, jnb))

    def sessions(self) -> list[str]:
        """Session ids in order of first appearance."""
        return list(dict.fromkeys(str(r.get('session', '')) for r in self.records))

    def location(self, rec: dict[str, Any]) -> tuple[str, int, int]:
        """(shard name, byte offset, size) of a record's npz member."""
        try:
            return self._loc[self._pos[id(rec)]]
        except KeyError:
            raise DatasetError('record is not from this shard directory') from None

    def key(self, rec: dict[str, Any]) -> str:
        """The WebDataset key of a record."""
        return self.keys[self._pos[id(rec)]]

    def json_location(self, rec: dict[str, Any]) -> tuple[int, int]:
        """(byte offset, size) of a record's ``.json`` member in its shard."""
        return self._json[self._pos[id(rec)]]

    def record_line(self, rec: dict[str, Any]) -> bytes:
        """The record's manifest line exactly as packed (its ``.json`` member, no newline)."""
        shard = self.location(rec)[0]
        off, nb = self._json[self._pos[id(rec)]]
        return read_bounded(self.directory / shard, layout.MAX_JSON_BYTES, off, nb)

    def exists(self, rec: dict[str, Any]) -> bool:
        """Every indexed record is inside a finished shard."""
        return id(rec) in self._pos

    def read_bytes(self, rec: dict[str, Any]) -> bytes:
        """The npz member of a record."""
        shard, off, nb = self.location(rec)
        return read_bounded(self.directory / shard, layout.MAX_NPZ_BYTES, off, nb)

    def load(self, rec: dict[str, Any]) -> dict[str, np.ndarray]:
        """The arrays of a record."""
        return decode(self.read_bytes(rec), max_bytes=8 * layout.MAX_NPZ_BYTES)

    def iter_bytes(self) -> Iterator[tuple[dict[str, Any], bytes | None, str]]:
        """(record, npz bytes or None, error) in order, one open file per shard."""
        i = 0
        while i < len(self.records):
            shard = self._loc[i][0]
            fd = None
            try:
                fd = os.open(self.directory / shard, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
            except OSError as exc:
                err = f'{shard}: {exc.strerror}'
            while i < len(self.records) and self._loc[i][0] == shard:
                rec, (_, off, nb) = self.records[i], self._loc[i]
                i += 1
                if fd is None:
                    yield rec, None, err
                    continue
                data = os.pread(fd, nb, off)
                yield (rec, data, '') if len(data) == nb else (rec, None, f'{shard}: short')
            if fd is not None:
                os.close(fd)

    def iter_loaded(self, every: int = 1) -> Iterator[tuple[dict[str, Any], dict | None, str]]:
        """(record, arrays or None, load error) for every ``every``-th record."""
        step = max(1, every)
        for n, (rec, data, err) in enumerate(self.iter_bytes()):
            if n % step:
                continue
            if data is None:
                yield rec, None, err
                continue
            try:
                yield rec, decode(data, max_bytes=8 * layout.MAX_NPZ_BYTES), ''
            except Exception as exc:  # noqa: BLE001 - reported per sample
                yield rec, None, f'{type(exc).__name__}: {exc}'


Source = DirSource | ShardSource


def open_source(directory: str | os.PathLike[str]) -> Source:
    """The reader for ``directory``, whichever layout it has; DatasetError when neither."""
    d = Path(directory)
    if layout.is_shard_dir(d):
        return ShardSource(d)
    return DirSource(Dataset.open(d))
