"""The sample writer in a child process: tracking and writing no longer share one GIL.

As a thread, the writer's Python work (unpacking the snapshot, building, validating, encoding)
takes turns with the tracker and, in the node, with the rclpy callbacks. :class:`ProcessWriter`
runs the very same :class:`~assoc_logger_ros.recording.writer.SampleWriter` in a child process
(writing synchronously there) and hands it the snapshots through a bounded
``multiprocessing`` queue, so files, manifest and their bytes are identical to the thread
writer's; only the place where the work happens changes. The parent's cost per sample is
pickling the snapshot (about 0.1 ms, on the queue's feeder thread).

- Start method ``spawn`` by default: a live node has DDS threads, and ``fork`` after threads can
  deadlock the child. Start-up (about 0.3 s) happens once, in the constructor.
- ``submit`` never waits unless ``log_wait_when_full`` (offline replay: back-pressure, nothing
  dropped): with ``log_queue_size`` samples in flight the newest is dropped and counted
  (``dropped_queue_full``), as the thread writer does.
- Crash safety is the SampleWriter's (temp + rename, manifest line after the rename, reconcile
  and numbering on open, the directory lock held by the child). If the parent dies, the child
  writes what it already received, releases the lock and exits. If the child dies, the parent
  warns once, stops logging (``stopped_reason``; later samples count as ``dropped_disk``) and
  tracking goes on.
- ``stats()`` merges the parent's queue counters with the child's last report (sent at most
  every 0.2 s while writing); after ``close()`` it returns the child's final counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
import contextlib
import multiprocessing
import os
import queue
import signal
import sys
import time
import types
from typing import Any

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording.lock import RecorderError
from assoc_logger_ros.tracking.snapshot import AssociationSnapshot

__all__ = ['ProcessWriter', 'RecorderError']

Warn = Callable[[str], None]
START_TIMEOUT_S = 60.0
STATS_PERIOD_S = 0.2
DEFAULT_START_METHOD = 'spawn'


def _child(directory: str, cfg: RecorderConfig, inbox: Any, outbox: Any) -> None:
    """Child process: one synchronous SampleWriter fed from ``inbox`` until None arrives."""
    # Ctrl-C in a terminal (ros2 launch) signals the whole process group: the parent shuts
    # down and then closes us; dying here first would lose the queued samples.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from assoc_logger_ros.recording.shard_writer import writer_class

    try:
        writer = writer_class(cfg)(directory, cfg, warn=lambda m: outbox.put(('warn', m)),
                              background=False)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        outbox.put(('error', f'{type(exc).__name__}: {exc}'))
        return
    outbox.put(('ready', writer.stats()))
    # Only the parent writes to the inbox: without our copy of its write end, a dead parent
    # shows as end-of-file (also in the middle of a message) instead of a wait forever.
    inbox._writer.close()  # noqa: SLF001 - multiprocessing.Queue keeps both pipe ends
    parent = multiprocessing.parent_process()
    idle_s = min(max(cfg.log_sync_period_s, 0.05), 0.5)
    last_report = time.monotonic()
    reported = True
    orphaned = False
    try:
        while True:
            try:
                item = inbox.get(timeout=idle_s)
            except queue.Empty:
                writer.sync_if_dirty()
                if not reported:
                    outbox.put(('stats', writer.stats()))
                    reported = True
                if parent is not None and not parent.is_alive():
                    orphaned = True  # keep what was written, release the lock, exit
                    break
                continue
            except (EOFError, OSError):  # the parent died (possibly mid-message)
                orphaned = True
                break
            if item is None:
                break
            writer.submit(*item)
            reported = False
            now = time.monotonic()
            if now - last_report >= STATS_PERIOD_S:
                outbox.put(('stats', writer.stats()))
                last_report, reported = now, True
    finally:
        writer.close()
        if orphaned:  # nobody reads the outbox any more: do not wait to flush it at exit
            outbox.cancel_join_thread()
        else:
            outbox.put(('final', writer.stats()))


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start the child without re-running the parent's main script.

    ``spawn`` normally imports the parent's ``__main__`` in the child (so that functions defined
    there can be targets). Ours lives in this module, and re-running a user's unguarded script
    (no ``if __name__ == '__main__':``) in the writer child would repeat its side effects or
    fail. With a bare stand-in as ``__main__`` while the start data is pickled, the child skips
    that step.
    """
    main = sys.modules.get('__main__')
    sys.modules['__main__'] = types.ModuleType('__main__')
    try:
        yield
    finally:
        if main is not None:
            sys.modules['__main__'] = main


class ProcessWriter:
    """A SampleWriter in a child process, with the interface the pipeline uses.

    ``submit``, ``stats``, ``flush``, ``close`` and ``stopped_reason`` behave like the thread
    writer's. Raises :class:`RecorderError` when the child cannot open the directory (locked,
    not writable) or does not start.
    """

    def __init__(self, log_dir: str | os.PathLike[str], cfg: RecorderConfig, *,
                 warn: Warn | None = None, start_method: str | None = None) -> None:
        self._warn: Warn = warn or (lambda msg: None)
        self.cfg = cfg
        self.directory = os.fspath(log_dir)
        self._blocking = bool(cfg.log_wait_when_full)
        ctx = multiprocessing.get_context(start_method or DEFAULT_START_METHOD)
        self._capacity = max(int(cfg.log_queue_size), 1)
        self._inbox = ctx.Queue(maxsize=self._capacity)
        self._outbox = ctx.Queue()
        self._proc = ctx.Process(target=_child, name='assoc-sample-writer',
                                 args=(self.directory, cfg, self._inbox, self._outbox),
                                 daemon=True)
        self._child_stats: dict[str, Any] = {}
        self._final: dict[str, Any] | None = None
        self._counts = dict.fromkeys(('queued', 'dropped_queue_full', 'dropped_closed'), 0)
        self._dropped_stopped = 0
        self._stopped_reason: str | None = None
        self._closed = False
        self._dead_reported = False
        self._last_drop_warn = -1e9
        self._drops_since_warn = 0
        with _main_module_hidden():
            self._proc.start()
        kind, payload = self._next_message(START_TIMEOUT_S)
        while kind == 'warn':  # reconcile's repair messages come before 'ready'
            self._warn(payload)
            kind, payload = self._next_message(START_TIMEOUT_S)
        if kind != 'ready':
            self._proc.join(5)
            self._inbox.cancel_join_thread()
            raise RecorderError(payload or 'sample writer process did not start')
        self._child_stats = dict(payload)

    # -- parent side -----------------------------------------------------------------------

    def _next_message(self, timeout: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._outbox.get(timeout=0.1)
            except queue.Empty:
                if not self._proc.is_alive():
                    try:
                        return self._outbox.get(timeout=0.5)
                    except queue.Empty:
                        return 'error', ('sample writer process exited during start-up '
                                         f'(exit code {self._proc.exitcode})')
                if time.monotonic() > deadline:
                    return 'error', f'sample writer process gave no answer within {timeout:.0f} s'

    def _drain(self) -> None:
        while True:
            try:
                kind, payload = self._outbox.get_nowait()
            except (queue.Empty, OSError, ValueError, EOFError):
                return
            if kind == 'warn':
                self._warn(payload)
            elif kind == 'stats':
                self._child_stats = payload
            elif kind == 'final':
                self._child_stats = payload
                self._final = payload
            if kind in ('stats', 'final') and payload.get('stopped_reason'):
                self._stopped_reason = self._stopped_reason or payload['stopped_reason']

    def _check_alive(self) -> bool:
        """False (after one warning) once the child has died without being asked to."""
        if self._proc.is_alive():
            return True
        self._drain()
        if not self._dead_reported:
            self._dead_reported = True
            self._inbox.cancel_join_thread()  # nobody reads the pipe any more
            reason = f'sample writer process died (exit code {self._proc.exitcode})'
            self._stopped_reason = self._stopped_reason or reason
            self._warn(f'sample logging stopped: {reason}. Tracking continues; further samples '
                       f'are dropped and counted (dropped_disk). {self.directory} stays valid '
                       '(the next writer reconciles it).')
        return False

    def submit(self, snapshot: AssociationSnapshot, session_id: str,
               metadata: Mapping[str, Any] | None = None) -> bool:
        """Hand a snapshot to the child; False (and counted) when dropped. Never raises."""
        if self._closed:
            self._counts['dropped_closed'] += 1
            return False
        self._drain()
        if self._stopped_reason is not None or not self._check_alive():
            self._dropped_stopped += 1
            return False
        item = (snapshot, str(session_id), dict(metadata or {}))
        try:
            if self._blocking:
                while True:  # back-pressure, but notice a child that died meanwhile
                    try:
                        self._inbox.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        if not self._check_alive():
                            self._dropped_stopped += 1
                            return False
            else:
                self._inbox.put_nowait(item)
        except queue.Full:
            self._counts['dropped_queue_full'] += 1
            self._warn_dropped()
            return False
        except (OSError, ValueError) as exc:  # queue closed underneath us
            self._dropped_stopped += 1
            self._stopped_reason = self._stopped_reason or f'writer queue failed: {exc}'
            return False
        self._counts['queued'] += 1
        return True

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        self._drops_since_warn += 1
        if now - self._last_drop_warn < 10.0:
            return
        extra = self._drops_since_warn - 1
        self._last_drop_warn, self._drops_since_warn = now, 0
        self._warn(f'sample queue full ({self._capacity}): dropped the newest sample, '
                   f'{self._counts["dropped_queue_full"]} dropped so far (writer process too '
                   'slow; tracking unaffected)'
                   + (f' ({extra} more since the last warning)' if extra else ''))

    @property
    def pid(self) -> int | None:
        """Process id of the writer child."""
        return self._proc.pid

    @property
    def stopped_reason(self) -> str | None:
        """Why writing stopped (disk limit, write error, dead child), None while writing."""
        self._drain()
        return self._stopped_reason

    def _pending(self) -> int:
        try:
            return self._inbox.qsize()
        except (NotImplementedError, OSError, ValueError):  # macOS has no sem_getvalue
            return 0

    def stats(self) -> dict[str, Any]:
        """The thread writer's keys: the child's counters plus the parent's queue counters."""
        self._drain()
        if self._final is None and not self._closed:
            self._check_alive()
        out: dict[str, Any] = dict(self._child_stats)
        out.update(self._counts)
        out['pending'] = 0 if self._final is not None else self._pending()
        out['dropped_disk'] = int(out.get('dropped_disk', 0) or 0) + self._dropped_stopped
        out['stopped_reason'] = out.get('stopped_reason') or self._stopped_reason
        return out

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the child has taken and written every submitted sample."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._proc.is_alive():
            self._drain()
            done = (self._child_stats.get('queued', 0) >= self._counts['queued']
                    and self._pending() == 0)
            if done:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        self._drain()
        return False

    def close(self, timeout: float | None = None) -> bool:
        """Send the end marker and wait until every sample is written; idempotent.

        Reads the child's messages while waiting (a child blocked on a full pipe would never
        exit). Returns False when the child did not finish within ``timeout`` (it keeps
        writing until it is done or this process exits; the directory stays valid).
        """
        if self._closed:
            return self._final is not None
        self._closed = True
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._proc.is_alive():
            while True:  # the end marker must not be dropped, even from a full queue
                try:
                    self._inbox.put(None, timeout=0.1)
                    break
                except queue.Full:
                    self._drain()
                    if not self._proc.is_alive() or (
                            deadline is not None and time.monotonic() > deadline):
                        break
        while self._final is None:
            self._drain()
            if self._final is not None or not self._proc.is_alive():
                self._drain()
                break
            if deadline is not None and time.monotonic() > deadline:
                break
            self._proc.join(0.01)
        if self._final is None:
            self._inbox.cancel_join_thread()
            if self._proc.is_alive():
                self._warn(f'sample writer process did not finish within {timeout} s; '
                           f'{self._pending()} queued sample(s) not written yet')
            else:
                self._check_alive()
            return False
        self._proc.join(5)
        self._inbox.close()
        self._outbox.close()
        return True

    def __enter__(self) -> ProcessWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
