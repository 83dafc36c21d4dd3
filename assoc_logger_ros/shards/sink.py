"""ShardSink: appends samples to an open shard and finalises it; used by ``pack`` and on board.

Each sample is one ``os.write`` of its two members (``KEY.npz`` then ``KEY.json``) to
``shard-N.tar.part``, so a killed process leaves complete members plus at most one torn tail;
the file is fsynced every ``sync_period_s`` (a power cut loses at most that last unsynced
block). Finalising writes the end-of-archive blocks, fsyncs, writes the shard's index
atomically and only then renames the part to ``shard-N.tar``. :func:`recover` (run by the
next writer to open the directory) truncates a part to its last complete sample and finalises
it, so every sample that reached the file before a crash is kept.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import time
from typing import Any

from assoc_logger_ros.recording.atomic import TMP_SUFFIX, fsync_dir, write_atomic
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.tarformat import (
    END_OF_ARCHIVE,
    ShardFormatError,
    iter_members,
    member,
)

LIMITS = {layout.NPZ_EXT: layout.MAX_NPZ_BYTES, layout.JSON_EXT: layout.MAX_JSON_BYTES}


@dataclass
class IndexEntry:
    """Where one sample's members are in its shard, and its manifest record."""

    key: str
    offset: int
    size: int
    json_offset: int
    json_size: int
    record: dict[str, Any]

    def line(self) -> str:
        """The entry as one index line."""
        return json.dumps({'key': self.key, 'offset': self.offset, 'size': self.size,
                           'json_offset': self.json_offset, 'json_size': self.json_size,
                           'record': self.record}, separators=(',', ':')) + '\n'


@dataclass
class Finished:
    """A finalised shard: its name, entries and size on disk."""

    name: str
    entries: list[IndexEntry] = field(default_factory=list)
    nbytes: int = 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def ensure_marker(directory: Path) -> None:
    """Create ``shards.json`` if missing (atomic)."""
    if not (directory / layout.MARKER_NAME).exists():
        write_atomic(directory / layout.MARKER_NAME, layout.marker_text(), sync_dir=True)


def next_shard_number(directory: Path) -> int:
    """One past the highest shard or part number in ``directory``."""
    done, parts = layout.list_shards(directory)
    nums = [layout.shard_number(n) or 0 for n in done] + [layout.part_number(n) or 0
                                                          for n in parts]
    return max(nums) + 1 if nums else 0


def scan(path: Path) -> tuple[list[IndexEntry], int, str | None]:
    """(complete samples, byte offset after the last one, problem) of a shard or part file."""
    entries: list[IndexEntry] = []
    good_end = 0
    pending: tuple[str, int, int] | None = None
    problem = None
    size = path.stat().st_size
    with open(path, 'rb') as fh:
        try:
            for h, data in iter_members(fh, LIMITS, file_size=size):
                parts = layout.split_member(h.name)
                if parts is None:
                    raise ShardFormatError(f'member {h.name[:60]!r} is not a sample member')
                key, ext = parts
                if ext == layout.NPZ_EXT:
                    if pending is not None:
                        raise ShardFormatError(f'{pending[0]}.npz has no .json member')
                    pending = (key, h.data_offset, h.size)
                    continue
                if pending is None or pending[0] != key:
                    raise ShardFormatError(f'{key}.json does not follow its .npz member')
                try:
                    record = json.loads(data.decode('utf-8'))
                except ValueError:
                    raise ShardFormatError(f'{key}.json is not JSON') from None
                if not isinstance(record, dict):
                    raise ShardFormatError(f'{key}.json is not a record')
                entries.append(IndexEntry(key, pending[1], pending[2], h.data_offset, h.size,
                                          record))
                pending = None
                good_end = h.end
        except ShardFormatError as exc:
            problem = str(exc)
    if pending is not None and problem is None:
        problem = f'{pending[0]}.npz has no .json member (torn write)'
    return entries, good_end, problem


def write_index(directory: Path, shard: str, entries: list[IndexEntry], fsync: bool) -> None:
    """The shard's index file, atomically."""
    write_atomic(directory / layout.index_name(shard),
                 ''.join(e.line() for e in entries).encode('utf-8'), fsync=fsync)


def recover(directory: Path, warn: Callable[[str], None] | None = None) -> list[Finished]:
    """Finalise every ``.tar.part`` (truncated to its last complete sample); remove empties.

    Also removes temp files and writes the index of a finished shard that lacks one.
    """
    say = warn or (lambda msg: None)
    out = []
    for name in os.listdir(directory):
        if name.endswith(TMP_SUFFIX) and name.startswith(layout.SHARD_PREFIX):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
    done, parts = layout.list_shards(directory)
    for name in done:
        if not (directory / layout.index_name(name)).is_file():
            entries, _, problem = scan(directory / name)
            write_index(directory, name, entries, True)
            say(f'{name}: index rebuilt ({len(entries)} samples)'
                + (f'; {problem}' if problem else ''))
    for part in parts:
        path = directory / part
        entries, end, problem = scan(path)
        final = part[:-len('.part')]
        if not entries:
            os.unlink(path)
            say(f'{part}: no complete sample; removed')
            continue
        with open(path, 'r+b') as fh:
            fh.truncate(end)
            fh.seek(end)
            fh.write(END_OF_ARCHIVE)
            fh.flush()
            os.fsync(fh.fileno())
        write_index(directory, final, entries, True)
        os.replace(path, directory / final)
        say(f'{part}: finalised as {final} with {len(entries)} samples'
            + (f' (dropped a torn tail: {problem})' if problem else ''))
        out.append(Finished(final, entries, end + len(END_OF_ARCHIVE)))
    fsync_dir(directory)
    return out


class ShardSink:
    """Writes samples into rolling shards of ``directory`` (which it does not lock itself)."""

    def __init__(self, directory: str | os.PathLike[str], *, shard_bytes: int,
                 max_span_ns: int = 0, fsync: bool = True, sync_period_s: float = 1.0,
                 first_number: int | None = None) -> None:
        self.directory = Path(directory)
        self.shard_bytes = max(1, int(shard_bytes))
        self.max_span_ns = int(max_span_ns)
        self.fsync = fsync
        self.sync_period_s = sync_period_s
        self._number = next_shard_number(self.directory) if first_number is None \
            else first_number
        self._fd: int | None = None
        self._name = ''
        self._size = 0
        self._entries: list[IndexEntry] = []
        self._first_stamp: int | None = None
        self._last_sync = time.monotonic()
        self._dirty = False
        self.finished: list[Finished] = []

    @property
    def open_name(self) -> str | None:
        """The shard being written (final name), None when none is open."""
        return self._name if self._fd is not None else None

    @property
    def open_bytes(self) -> int:
        """Bytes in the open shard so far."""
        return self._size if self._fd is not None else 0

    def append(self, key: str, npz: bytes, record_line: bytes, record: dict[str, Any],
               stamp_ns: int | None = None) -> Finished | None:
        """Add one sample; returns the shard it finished (roll before writing), if any."""
        rolled = None
        blob = member(f'{key}.npz', npz) + member(f'{key}.json', record_line)
        if self._fd is not None and (
                self._size + len(blob) > self.shard_bytes
                or (self.max_span_ns and stamp_ns is not None and self._first_stamp is not None
                    and stamp_ns - self._first_stamp >= self.max_span_ns)):
            rolled = self.finish()
        if self._fd is None:
            self._open()
        assert self._fd is not None
        start = self._size
        try:
            _write_all(self._fd, blob)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise
        self._size += len(blob)
        self._entries.append(IndexEntry(key, start + 512, len(npz),
                                        start + 512 + len(npz) + (-len(npz) % 512) + 512,
                                        len(record_line), record))
        if self._first_stamp is None:
            self._first_stamp = stamp_ns
        self._dirty = True
        if self.sync_period_s == 0 or time.monotonic() - self._last_sync >= self.sync_period_s:
            self.sync()
        return rolled

    def _open(self) -> None:
        self._name = layout.shard_name(self._number)
        self._number += 1
        path = self.directory / (self._name + '.part')
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._size = 0
        self._entries = []
        self._first_stamp = None
        fsync_dir(self.directory)

    def sync(self) -> None:
        """Flush the open shard to disk if anything was written since the last sync."""
        if self._fd is not None and self._dirty and self.fsync:
            os.fsync(self._fd)
        self._dirty = False
        self._last_sync = time.monotonic()

    def finish(self) -> Finished | None:
        """Finalise the open shard (end blocks, fsync, index, rename); None when none is open."""
        if self._fd is None:
            return None
        fd, self._fd = self._fd, None
        try:
            _write_all(fd, END_OF_ARCHIVE)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        write_index(self.directory, self._name, self._entries, self.fsync)
        os.replace(self.directory / (self._name + '.part'), self.directory / self._name)
        fsync_dir(self.directory)
        done = Finished(self._name, self._entries, self._size + len(END_OF_ARCHIVE))
        self.finished.append(done)
        self._entries = []
        return done

    def close(self) -> Finished | None:
        """Finalise the open shard, if any."""
        return self.finish()
