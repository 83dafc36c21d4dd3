"""The replay's sample writer in a child process: back-pressure, never a drop.

The implementation is core code (:mod:`assoc_logger_ros.recording.process_writer`, which the
pipeline also uses for ``log_writer: process``); this adapter keeps the replay's contract: the
same files as the thread writer, and ``submit`` waits while ``log_queue_size`` snapshots are in
flight (``log_wait_when_full`` is forced on), so a replay is reproducible on any disk.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import os

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording import process_writer as _core
from assoc_logger_ros.recording.lock import RecorderError

__all__ = ['ProcessWriter', 'RecorderError']


class ProcessWriter(_core.ProcessWriter):
    """A SampleWriter in a child process whose ``submit`` waits instead of dropping."""

    def __init__(self, log_dir: str | os.PathLike[str], cfg: RecorderConfig, *,
                 warn: Callable[[str], None] | None = None,
                 start_method: str | None = None) -> None:
        super().__init__(log_dir, dataclasses.replace(cfg, log_wait_when_full=True), warn=warn,
                         start_method=start_method)
