"""The sample writer in a child process, for offline replay on more than one core.

A replay is CPU-bound on both sides: tracking in the main thread and building, validating,
compressing and writing samples in the writer. As a thread the writer shares the GIL with the
tracker, so on two cores the two mostly take turns. :class:`ProcessWriter` runs the very same
:class:`~assoc_logger_ros.recording.writer.SampleWriter` in a child process and feeds it the
snapshots through a bounded queue, so files, manifest and their bytes are identical; only the
place where the work happens changes. It has the interface the pipeline uses (``submit``,
``stats``, ``close``) and is never used by the live node (a robot keeps the writer a thread).

Back-pressure instead of drops: ``submit`` waits while ``log_queue_size`` snapshots are in
flight, and the child's writer runs with ``log_wait_when_full``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import dataclasses
import multiprocessing
import os
import queue
from typing import Any

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording.writer import RecorderError
from assoc_logger_ros.tracking.snapshot import AssociationSnapshot

Warn = Callable[[str], None]
_START_TIMEOUT_S = 60.0


def _child(directory: str, cfg: RecorderConfig, inbox: Any, outbox: Any) -> None:
    """Child process: one SampleWriter, fed from ``inbox`` until None arrives."""
    from assoc_logger_ros.recording.writer import SampleWriter

    try:
        writer = SampleWriter(directory, cfg, warn=lambda m: outbox.put(('warn', m)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        outbox.put(('error', f'{type(exc).__name__}: {exc}'))
        return
    outbox.put(('ready', None))
    try:
        while True:
            item = inbox.get()
            if item is None:
                break
            writer.submit(*item)
    finally:
        writer.close()
        outbox.put(('stats', writer.stats()))


class ProcessWriter:
    """A SampleWriter running in a child process (same arguments, same output)."""

    def __init__(self, log_dir: str | os.PathLike[str], cfg: RecorderConfig, *,
                 warn: Warn | None = None) -> None:
        self._warn: Warn = warn or (lambda msg: None)
        self.cfg = dataclasses.replace(cfg, log_wait_when_full=True)
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context('fork' if 'fork' in methods else 'spawn')
        self._inbox = ctx.Queue(maxsize=max(int(cfg.log_queue_size), 1))
        self._outbox = ctx.Queue()
        self._proc = ctx.Process(target=_child, name='assoc-sample-writer',
                                 args=(os.fspath(log_dir), self.cfg, self._inbox,
                                       self._outbox), daemon=True)
        self._proc.start()
        self._final: dict[str, Any] | None = None
        self._submitted = 0
        self._closed = False
        kind, payload = self._next_message(_START_TIMEOUT_S)
        while kind == 'warn':
            self._warn(payload)
            kind, payload = self._next_message(_START_TIMEOUT_S)
        if kind != 'ready':
            self._proc.join(5)
            raise RecorderError(payload or 'sample writer process did not start')

    def _next_message(self, timeout: float) -> tuple[str, Any]:
        try:
            return self._outbox.get(timeout=timeout)
        except queue.Empty:
            return 'error', f'sample writer process gave no answer within {timeout:.0f} s'

    def _drain(self) -> None:
        while True:
            try:
                kind, payload = self._outbox.get_nowait()
            except queue.Empty:
                return
            if kind == 'warn':
                self._warn(payload)
            elif kind == 'stats':
                self._final = payload

    def submit(self, snapshot: AssociationSnapshot, session_id: str,
               metadata: Mapping[str, Any] | None = None) -> bool:
        """Hand a snapshot to the child; waits while the queue is full. False once closed."""
        if self._closed or not self._proc.is_alive():
            return False
        self._inbox.put((snapshot, str(session_id), dict(metadata or {})))
        self._submitted += 1
        self._drain()
        return True

    def stats(self) -> dict[str, Any]:
        """The child's counters after :meth:`close`; before that, what the parent knows."""
        self._drain()
        if self._final is not None:
            return dict(self._final)
        try:
            pending = self._inbox.qsize()
        except NotImplementedError:  # macOS
            pending = 0
        return {'queued': self._submitted, 'pending': pending,
                'stopped_reason': None if self._proc.is_alive() else 'writer process ended'}

    def close(self, timeout: float | None = None) -> bool:
        """Send the end marker, wait for every sample to be written; idempotent.

        Reads the child's messages while waiting (a child blocked on a full pipe would never
        exit), then joins it.
        """
        import time

        if self._closed:
            return self._final is not None
        self._closed = True
        if self._proc.is_alive():
            self._inbox.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._final is None:
            self._drain()
            if self._final is not None:
                break
            if not self._proc.is_alive():
                self._drain()
                break
            if deadline is not None and time.monotonic() > deadline:
                break
            self._proc.join(0.01)
        self._proc.join(None if deadline is None else max(deadline - time.monotonic(), 0.1))
        if self._final is None:
            self._warn('sample writer process ended without its final counters '
                       f'(exit code {self._proc.exitcode})')
        return self._final is not None and not self._proc.is_alive()
