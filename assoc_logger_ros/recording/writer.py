"""SampleWriter: samples to disk on one background thread, never in the tracker's way.

``submit`` only puts the (frozen) snapshot on a bounded queue and returns; building the arrays,
validating, compressing and writing happen on the worker, the directory's only writer. When the
queue is full the newest sample is dropped and counted; when a disk limit is reached or a write
fails, writing stops with one warning while tracking goes on. With ``background=False`` there is
no thread and ``submit`` writes on the caller's thread: the child of
:class:`~assoc_logger_ros.recording.process_writer.ProcessWriter` runs it that way.

Crash safety: a sample file appears under its final name only when complete (temp + fsync +
rename), and its manifest line is appended after that, so after any crash the manifest lists only
complete samples; :func:`~assoc_logger_ros.recording.reconcile.reconcile` re-adds the at most one
complete sample a crash can leave unlisted. fsync policy: each sample file is fsynced before the
rename (``log_fsync``); the manifest and the directory at most every ``log_sync_period_s`` and on
flush/close, because a manifest line lost to a power cut is rebuilt from its file on the next open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import os
from pathlib import Path
import queue
import threading
import time
from typing import Any

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.atomic import fsync_dir, write_atomic
from assoc_logger_ros.recording.lock import DirectoryLock, RecorderError
from assoc_logger_ros.recording.npzfile import encode
from assoc_logger_ros.recording.reconcile import reconcile
from assoc_logger_ros.recording.sample import build
from assoc_logger_ros.recording.schema import sample_name
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.tracking.snapshot import AssociationSnapshot

__all__ = ['RecorderError', 'SampleWriter']

Warn = Callable[[str], None]
_STOP = object()
WARN_PERIOD_S = 10.0


class _Throttle:
    """At most one warning per kind every ``period`` seconds, with the count since the last."""

    def __init__(self, warn: Warn, period: float = WARN_PERIOD_S) -> None:
        self._warn = warn
        self._period = period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, kind: str, message: str) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._period:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        extra = self._suppressed.pop(kind, 0)
        self._last[kind] = now
        self._warn(message + (f' ({extra} more since the last warning)' if extra else ''))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class SampleWriter:
    """Writes ``sample_XXXXXXX.npz`` + ``manifest.jsonl`` lines into ``log_dir``.

    Opening locks the directory (a second writer gets :class:`RecorderError`), reconciles what a
    crash left (each repair is reported through ``warn``) and continues the numbering. Use as a
    context manager or call :meth:`close`.
    """

    def __init__(self, log_dir: str | os.PathLike[str], cfg: RecorderConfig, *,
                 warn: Warn | None = None, background: bool = True) -> None:
        self.directory = Path(log_dir)
        self.cfg = cfg
        self._warn: Warn = warn or (lambda msg: None)
        self._throttle = _Throttle(self._warn)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecorderError(f'cannot create log directory {self.directory}: {exc}') from exc
        self._lock = DirectoryLock(self.directory)
        try:
            state = self._open_store()
        except OSError as exc:
            self._lock.release()
            raise RecorderError(f'cannot open log directory {self.directory}: {exc}') from exc
        for line in state.messages:
            self._warn(f'{self.directory}: {line}')
        self.reconciled = list(state.messages)
        self._next_index = state.next_index
        self._bytes_total = state.total_bytes
        self._samples_total = len(state.records)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=cfg.log_queue_size)
        self._io_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._closed = False
        self._close_result: bool | None = None
        self._stopped_reason: str | None = None
        self._dirty = False
        self._last_sync = time.monotonic()
        self._counts = dict.fromkeys(
            ('queued', 'written', 'dropped_queue_full', 'dropped_closed', 'invalid', 'failed',
             'bytes_written'), 0)
        self._dropped_disk_submit = 0
        self._dropped_disk_worker = 0
        self._last_sample: str | None = None
        self._last_error: str | None = None
        # background=False: submit() writes on the caller's thread (the writer process's
        # loop, which is already off the tracker's path); no thread, no queue.
        self._background = background
        self._thread = threading.Thread(target=self._run, name='assoc-sample-writer',
                                         daemon=True)
        if background:
            self._thread.start()

    def _open_store(self) -> Any:
        """Repair what a crash left and open the manifest; the layout's one entry point."""
        state = reconcile(self.directory)
        self._open_manifest()
        return state

    def _open_manifest(self) -> None:
        """Append descriptor of the manifest; never through a symlink, never blocking on a FIFO."""
        self._manifest_fd = os.open(manifest.manifest_path(self.directory),
                                    os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                    | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        self._manifest_size = os.fstat(self._manifest_fd).st_size

    # -- producer side (tracker thread) ------------------------------------------------------

    def submit(self, snapshot: AssociationSnapshot, session_id: str,
               metadata: Mapping[str, Any] | None = None) -> bool:
        """Queue one snapshot; False (and counted) when dropped. Never raises.

        Never blocks either, unless ``log_wait_when_full`` (offline replay) asks it to wait
        for room in the queue.
        """
        if self._closed:
            self._counts['dropped_closed'] += 1
            return False
        if self._stopped_reason is not None:
            self._dropped_disk_submit += 1
            return False
        item = (snapshot, str(session_id), dict(metadata or {}))
        if not self._background:
            self._counts['queued'] += 1
            self._handle(item)
            return True
        if self.cfg.log_wait_when_full:  # offline replay: back-pressure instead of drops
            return self._put_waiting(item)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._counts['dropped_queue_full'] += 1
            self._throttle('queue', f'sample queue full ({self.cfg.log_queue_size}): dropped '
                           f'the newest sample, {self._counts["dropped_queue_full"]} dropped '
                           'so far (disk too slow; tracking unaffected)')
            return False
        self._counts['queued'] += 1
        return True

    def _put_waiting(self, item: tuple[Any, ...]) -> bool:
        while True:
            try:
                self._queue.put(item, timeout=0.2)
            except queue.Full:
                if self._stopped_reason is not None or not self._thread.is_alive():
                    self._dropped_disk_submit += 1
                    return False
                continue
            self._counts['queued'] += 1
            return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued sample is written and synced; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        q = self._queue
        with q.all_tasks_done:
            while q.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                q.all_tasks_done.wait(remaining)
        self._sync()
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Write what is queued, sync, stop the worker and unlock; idempotent.

        Returns False when the worker did not finish within ``timeout`` seconds (the directory
        stays valid; what is still queued is lost if the process then exits).
        """
        with self._close_lock:
            if self._close_result is not None:
                return self._close_result
            self._closed = True
            if self._background:
                try:
                    self._queue.put(_STOP, timeout=timeout)
                except queue.Full:
                    pass
                self._thread.join(timeout)
            if self._thread.is_alive():  # a later close() tries again
                self._warn(f'sample writer did not finish within {timeout} s; '
                           f'{self._queue.qsize()} queued sample(s) not written yet')
                return False
            self._sync()
            self._close_store()
            self._lock.release()
            self._close_result = True
            return True

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """Counters for diagnostics; safe to call from any thread."""
        out: dict[str, Any] = dict(self._counts)
        out.update({
            'pending': self._queue.qsize(),
            'dropped_disk': self._dropped_disk_submit + self._dropped_disk_worker,
            'bytes_total': self._bytes_total,
            'samples_total': self._samples_total,
            'next_index': self._next_index,
            'stopped_reason': self._stopped_reason,
            'free_bytes': self._free_bytes(),
            'last_sample': self._last_sample,
            'last_error': self._last_error,
            'reconciled': len(self.reconciled),
        })
        return out

    @property
    def stopped_reason(self) -> str | None:
        """Why writing stopped (disk limit or write error), None while writing."""
        return self._stopped_reason

    # -- worker side -------------------------------------------------------------------------

    def _run(self) -> None:
        period = self.cfg.log_sync_period_s
        while True:
            try:
                item = self._queue.get(timeout=period if period > 0 else None)
            except queue.Empty:
                if self._dirty:
                    self._sync()
                continue
            try:
                if item is _STOP:
                    return
                self._handle(item)
            finally:
                self._queue.task_done()

    def _handle(self, item: tuple[Any, ...]) -> None:
        """Write one queued sample, sync when due; errors are counted, never raised."""
        try:
            self._write_one(*item)
            if self._dirty and time.monotonic() - self._last_sync >= self.cfg.log_sync_period_s:
                self._sync()
        except Exception as exc:  # noqa: BLE001 - the tracker must never see it
            self._counts['failed'] += 1
            self._last_error = f'{type(exc).__name__}: {exc}'
            self._throttle('failed', f'sample not written: {self._last_error}')

    def sync_if_dirty(self) -> None:
        """Sync the manifest and directory if a sample was written since the last sync."""
        if self._dirty:
            self._sync()

    def _free_bytes(self) -> int | None:
        try:
            st = os.statvfs(self.directory)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def _stop(self, reason: str) -> None:
        if self._stopped_reason is None:
            self._stopped_reason = reason
            self._warn(f'sample logging stopped: {reason}. Tracking continues; further '
                       f'samples are dropped and counted (dropped_disk). {self.directory} is '
                       f'valid with {self._samples_total} samples.')

    def _write_one(self, snap: AssociationSnapshot, session_id: str,
                   metadata: dict[str, Any]) -> None:
        if self._stopped_reason is not None:
            self._dropped_disk_worker += 1
            return
        sample = build(snap, session_id, metadata, self.cfg.log_embed_dim)
        errors = validate(sample.arrays)
        if errors:
            self._counts['invalid'] += 1
            self._throttle('invalid', f'frame {snap.frame_idx}: sample not written, it fails '
                           f'the schema: {"; ".join(errors[:3])}')
            return
        content = encode(sample.arrays, self.cfg.log_compress)
        size = len(content)
        limit = self.cfg.log_max_bytes
        delete = getattr(self.cfg, 'log_disk_policy', 'stop') == 'delete_oldest'
        while limit and self._bytes_total + size > limit:
            if not (delete and self._delete_oldest(session_id)):
                self._dropped_disk_worker += 1
                self._stop(f'log_max_bytes={limit} reached ({self._bytes_total} bytes written)')
                return
        min_free = int(self.cfg.log_min_free_mb * 1024 * 1024)
        while True:
            free = self._free_bytes()
            if not (min_free > 0 and free is not None and free - size < min_free):
                break
            if not (delete and self._delete_oldest(session_id)):
                self._dropped_disk_worker += 1
                self._stop(f'free space on {self.directory} below log_min_free_mb='
                           f'{self.cfg.log_min_free_mb:g} ({free // 2**20} MiB left)')
                return
        name = sample_name(self._next_index)
        line = manifest.dumps(sample.record(name, size)).encode('utf-8')
        if not self._store(name, content, line, sample, snap.stamp_ns):
            return
        self._bytes_total += size
        self._samples_total += 1
        self._counts['written'] += 1
        self._counts['bytes_written'] += size
        self._last_sample = name
        if self.cfg.log_sync_period_s == 0:
            self._sync()

    def _store(self, name: str, content: bytes, line: bytes, sample: Any,
               stamp_ns: int) -> bool:
        """Put one encoded sample and its manifest line on disk; False (stopped) on failure."""
        path = self.directory / name
        with self._io_lock:
            try:
                write_atomic(path, content, fsync=self.cfg.log_fsync)
            except OSError as exc:
                self._dropped_disk_worker += 1
                self._stop(f'writing {name} failed: {exc}')
                return
            self._next_index += 1
            try:
                _write_all(self._manifest_fd, line)
            except OSError as exc:
                self._rollback(path)
                self._dropped_disk_worker += 1
                self._stop(f'appending {name} to the manifest failed: {exc}')
                return
            self._manifest_size += len(line)
            self._dirty = True
        return True

    def _delete_oldest(self, current_session: str) -> bool:
        """Disk policy delete_oldest: remove the oldest complete session, never the current one.

        Its files go first, then the manifest is rewritten without them (atomically): a crash in
        between leaves entries whose file is missing, which reconcile drops. False when no other
        session is left.
        """
        with self._io_lock:
            records = manifest.read_records(self.directory)
            sessions = list(dict.fromkeys(str(r.get('session', '')) for r in records))
            victims = [s for s in sessions if s != current_session]
            if not victims:
                return False
            gone = [r for r in records if str(r.get('session', '')) == victims[0]]
            keep = [r for r in records if str(r.get('session', '')) != victims[0]]
            for r in gone:
                name = str(r.get('npz', ''))
                if '/' in name or name in ('', '.', '..', manifest.MANIFEST_NAME):
                    continue
                try:
                    os.unlink(self.directory / name)
                except OSError:
                    pass
            os.fsync(self._manifest_fd)
            manifest.write(self.directory, keep)
            os.close(self._manifest_fd)
            self._open_manifest()
            fsync_dir(self.directory)
        self._forget(f'session {victims[0]!r}', len(gone),
                     sum(int(r.get('bytes', 0)) for r in gone))
        return True

    def _forget(self, what: str, samples: int, freed: int) -> None:
        """Account for deleted samples (disk policy) and say so once per deletion."""
        self._bytes_total -= freed
        self._samples_total -= samples
        self._counts['deleted_samples'] = self._counts.get('deleted_samples', 0) + samples
        self._warn(f'disk policy delete_oldest: deleted {what} ({samples} samples, '
                   f'{freed / 2**20:.1f} MiB) to keep recording')

    def _sync_store(self) -> None:
        os.fsync(self._manifest_fd)

    def _close_store(self) -> None:
        os.close(self._manifest_fd)

    def _rollback(self, path: Path) -> None:
        """Undo a half-appended manifest line and its sample file (directory stays valid)."""
        try:
            os.ftruncate(self._manifest_fd, self._manifest_size)
        except OSError:
            pass  # a torn line is dropped by the next open's reconcile
        try:
            os.unlink(path)
        except OSError:
            pass

    def _sync(self) -> None:
        with self._io_lock:
            if not self._dirty:
                return
            try:
                self._sync_store()
            except OSError:
                pass
            fsync_dir(self.directory)
            self._dirty = False
            self._last_sync = time.monotonic()
