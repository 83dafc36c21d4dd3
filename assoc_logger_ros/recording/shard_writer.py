"""The recorder writing shards on board (``log_format: shards``), and the writer choice.

:class:`ShardSampleWriter` is the :class:`~assoc_logger_ros.recording.writer.SampleWriter`
(same queue, limits, validation, encoding and counters) with another store: samples go into
rolling tar shards through :class:`~assoc_logger_ros.shards.sink.ShardSink` instead of one
file each plus ``manifest.jsonl``. A shard rolls at ``log_shard_mb`` or after
``log_shard_max_s`` of sample time. Crash safety: each sample is one append to the open
``shard-N.tar.part``, so a SIGKILL loses at most the sample being appended (a power cut: what
was written since the last fsync, at most ``log_sync_period_s``); the next open finalises the
part with every complete sample. With ``log_disk_policy: delete_oldest`` the oldest finished
shard is deleted to make room, never the open one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording.schema import sample_index
from assoc_logger_ros.recording.writer import SampleWriter
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.sink import ShardSink, ensure_marker, recover
from assoc_logger_ros.shards.source import ShardSource


def writer_class(cfg: RecorderConfig) -> type[SampleWriter]:
    """The in-process writer class for ``cfg.log_format``."""
    return ShardSampleWriter if getattr(cfg, 'log_format', 'npz') == 'shards' else SampleWriter


class ShardSampleWriter(SampleWriter):
    """SampleWriter whose samples land in rolling, indexed tar shards."""

    def _open_store(self) -> Any:
        d = Path(self.directory)
        ensure_marker(d)
        messages: list[str] = []
        recovered = recover(d, messages.append)
        source = ShardSource(d)
        messages += source.problems
        top = -1
        for rec in source.records:
            idx = sample_index(str(rec.get('npz', '')))
            if idx is not None:
                top = max(top, idx)
        self._sink = ShardSink(
            d, shard_bytes=int(self.cfg.log_shard_mb * 2**20),
            max_span_ns=int(self.cfg.log_shard_max_s * 1e9), fsync=self.cfg.log_fsync,
            sync_period_s=self.cfg.log_sync_period_s)
        self._index_failed = False
        if self._index_mode() != 'off' and (recovered or not _index_current(d)) \
                and source.records:
            self._update_index(messages.append)
        return SimpleNamespace(records=source.records, next_index=top + 1,
                               total_bytes=sum(int(r.get('bytes', 0)) for r in source.records),
                               messages=messages)

    def _store(self, name: str, content: bytes, line: bytes, sample: Any,
               stamp_ns: int) -> bool:
        record = sample.record(name, len(content))
        key = layout.sample_key(str(record.get('session', '')), int(record['frame_idx']),
                                self._next_index)
        with self._io_lock:
            try:
                rolled = self._sink.append(key, content, line.rstrip(b'\n'), record, stamp_ns)
            except OSError as exc:
                self._dropped_disk_worker += 1
                self._stop(f'appending {name} to {self._sink.open_name} failed: {exc}')
                return False
            self._next_index += 1
            self._dirty = True
        if rolled is not None and self._index_mode() == 'shard':
            self._update_index(added=rolled)   # outside the lock: syncs are not held up
        return True

    def _delete_oldest(self, current_session: str) -> bool:
        with self._io_lock:
            done, _ = layout.list_shards(Path(self.directory))
            done = [n for n in done if n != self._sink.open_name]
            if not done:
                return False
            victim = done[0]
            source_index = Path(self.directory) / layout.index_name(victim)
            samples, freed = 0, 0
            try:
                for line in source_index.read_text('utf-8').splitlines():
                    samples += 1
                    freed += int(json.loads(line)['record'].get('bytes', 0))
            except (OSError, ValueError, KeyError, TypeError):
                pass
            for p in (Path(self.directory) / victim, source_index):
                try:
                    os.unlink(p)
                except OSError:
                    pass
        if self._index_mode() == 'shard':
            self._update_index(dropped=victim)
        self._forget(f'shard {victim}', samples, freed)
        return True

    def _sync_store(self) -> None:
        self._sink.sync()

    def _close_store(self) -> None:
        done = self._sink.close()
        mode = self._index_mode()
        if mode == 'shard' and done is not None:
            self._update_index(added=done)
        elif mode != 'off' and not _index_current(Path(self.directory)):
            self._update_index()

    def _index_mode(self) -> str:
        return str(getattr(self.cfg, 'log_shard_index', 'off'))

    def _update_index(self, say: Any = None, *, added: Any = None,
                      dropped: str | None = None) -> None:
        """Bring ``index/`` up to date; a failure is a warning, never a stop.

        ``added`` (a finished shard) / ``dropped`` (a deleted shard's name) update it by one
        shard's files (:mod:`~assoc_logger_ros.shards.index_update`); otherwise, or when the
        index does not match the shards before that one, it is rebuilt from every shard.
        """
        if self._index_failed:
            return
        from assoc_logger_ros.dataset.store import DatasetError
        from assoc_logger_ros.shards import index_update
        from assoc_logger_ros.shards.index import build_index
        try:
            if added is not None:
                index_update.add_shard(self.directory, added)
            elif dropped is not None:
                index_update.drop_shard(self.directory, dropped)
            else:
                build_index(self.directory)
        except (DatasetError, OSError, ValueError) as exc:
            # without pyarrow it would fail the same way at every shard: say it once
            self._index_failed = isinstance(exc, DatasetError)
            (say or self._warn)(f'{self.directory}: Parquet index not written ({exc}); the '
                                'shards keep their own indexes (run the index command later)')


def _index_current(d: Path) -> bool:
    from assoc_logger_ros.shards.index import index_is_current
    return index_is_current(d)
