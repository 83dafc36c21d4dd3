"""Frame in, track decisions out, samples to disk: the one pipeline every adapter drives.

The ROS node, the bag replay and the CLI all call :meth:`Pipeline.process`; nothing here imports
ROS. The pipeline owns the session: when stamps go backwards (a bag restarted or looped) it resets
the tracker and starts a new session, so samples from before and after never share track IDs.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import datetime
import os
import time
from typing import Any
import uuid

from assoc_logger_ros.config import RecorderConfig, Settings
from assoc_logger_ros.cpus import usable_cpus
from assoc_logger_ros.frame import Frame
from assoc_logger_ros.recording.origin import Origin, origin_of
from assoc_logger_ros.recording.process_writer import ProcessWriter
from assoc_logger_ros.recording.shard_writer import writer_class
from assoc_logger_ros.recording.writer import RecorderError, SampleWriter
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.snapshot import AssociationSnapshot

Warn = Callable[[str], None]


def new_session_id() -> str:
    """A readable, unique session label: UTC time plus a short random suffix."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    return f'{now}-{uuid.uuid4().hex[:6]}'


def writer_kind(cfg: RecorderConfig) -> str:
    """``thread`` or ``process``: what ``log_writer`` (``auto`` resolved) asks for.

    ``auto`` picks the process writer for live collection on 2+ CPUs, where the writer's Python
    work would otherwise take turns with tracking (and the node's callbacks) for one
    interpreter lock; with ``log_wait_when_full`` (offline, the caller waits for the writer
    anyway; the replay chooses its writer itself) it stays a thread.
    """
    if cfg.log_writer != 'auto':
        return cfg.log_writer
    return 'process' if usable_cpus() >= 2 and not cfg.log_wait_when_full else 'thread'


class Pipeline:
    """Tracker + session bookkeeping + (optional) sample writer.

    Args:
        settings: resolved settings (:func:`assoc_logger_ros.config.resolve`).
        session_id: label of the first session; later sessions append ``.2``, ``.3`` ...
            Replay passes a name derived from the bag so reruns are byte-identical.
        warn: where warnings go (the node passes its logger's ``warning``).
        source: free-form description stored in the sample metadata (``ros``, ``replay``...).
        extra_metadata: more keys for every sample's ``metadata`` JSON.
        logging_optional: when the log directory cannot be used (full disk, not writable,
            locked by another writer) track without logging, warn once and say why in
            :attr:`logging_off_reason` (the node: a robot must track); else raise
            :class:`RecorderError` (offline tools, where samples are the point).
    """

    def __init__(self, settings: Settings, *, session_id: str | None = None,
                 warn: Warn | None = None, source: str = 'library',
                 extra_metadata: dict[str, Any] | None = None,
                 logging_optional: bool = False) -> None:
        self.settings = settings
        self._warn: Warn = warn or (lambda msg: None)
        self._base_session = session_id or settings.recorder.session_id or new_session_id()
        self._session_count = 1
        self.session_id = self._base_session
        self.tracker = ByteTracker(settings.tracker, settings.memory)
        if self.tracker.learned_cost is not None:     # its one fallback warning goes here too
            self.tracker.learned_cost.warn = self._warn
        self._last_stamp_ns: int | None = None
        self._metadata = {'source': source, **(extra_metadata or {})}
        self.logging_enabled = settings.recorder.log_enabled
        self.frames = 0
        self.resets = 0
        self.input_warnings = 0
        self._drop_warned: dict[str, float] = {}
        self._size_warned = False
        self._origin: Origin | None = None   # new tracks of a frame that was no sample
        self.label_scorer: Any = None        # SessionScorer once frames carry ground truth
        self.writer: SampleWriter | ProcessWriter | None = None
        self.logging_off_reason = ''
        log_dir = settings.recorder.log_dir
        if log_dir:
            cls = (ProcessWriter if writer_kind(settings.recorder) == 'process'
                   else writer_class(settings.recorder))
            try:
                self.writer = cls(os.path.expanduser(log_dir), settings.recorder,
                                  warn=self._warn)
            except (RecorderError, OSError) as err:
                if not logging_optional:
                    if isinstance(err, RecorderError):
                        raise
                    raise RecorderError(f'cannot log to {log_dir}: {err}') from err
                self.logging_off_reason = (str(err) if isinstance(err, RecorderError)
                                           else f'{type(err).__name__}: {err}')
                self._warn(f'sample logging disabled, tracking continues without it: '
                           f'{self.logging_off_reason}')

    def process(self, frame: Frame) -> AssociationSnapshot:
        """Track one frame and hand its sample to the writer (never blocks on disk)."""
        for line in frame.warnings:
            self.input_warnings += 1
            self._warn(f'frame {frame.frame_idx} (stamp {frame.stamp_ns}): {line}')
        if self._last_stamp_ns is not None and frame.stamp_ns < self._last_stamp_ns:
            self.new_session(f'stamp went backwards from {self._last_stamp_ns} to '
                             f'{frame.stamp_ns} ns')
        self._last_stamp_ns = frame.stamp_ns
        if frame.size_source == 'fallback' and not self._size_warned:
            self._size_warned = True
            self._warn(f'image size unknown (no mask, image, camera_info or image_width/'
                       f'image_height): features are normalised by a fixed {frame.width}x'
                       f'{frame.height}, recorded as size_source "fallback" in the metadata')
        snap = self.tracker.update(frame)
        self.frames += 1
        if self.tracker.last_input_drops:
            self._warn_input_drops(frame)
        if snap.det_gt_ids is not None:    # ground truth (bench or gt_topic): score the labels
            self._score_labels(snap)
        if self.writer is not None and self.logging_enabled and snap.num_detections > 0:
            if snap.num_tracks > 0:
                out = snap
                if self._origin is not None:   # tracks started in the frame before: carried
                    out = dataclasses.replace(snap, origin=self._origin)
                    self._origin = None
                self.writer.submit(out, self.session_id, self._metadata)
            else:
                self._origin = origin_of(snap)
        return snap

    def _warn_input_drops(self, frame: Frame) -> None:
        """One warning per reason, then at most one per 10 s (counts are in :meth:`stats`)."""
        last, total = self.tracker.last_input_drops, self.tracker.input_drops
        now = time.monotonic()
        for kind, n, text in (
                ('max_detections', last.over_max_detections,
                 f'kept the {self.settings.tracker.max_detections} highest-scoring detections '
                 f'(max_detections), dropped {last.over_max_detections}; '
                 f'{total.over_max_detections} dropped in {total.capped_frames} frame(s) so far'),
                ('out_of_range', last.out_of_range,
                 f'dropped {last.out_of_range} detection(s) with a coordinate beyond 1e6 px; '
                 f'{total.out_of_range} so far')):
            if n and now - self._drop_warned.get(kind, -1e9) >= 10.0:
                self._drop_warned[kind] = now
                self.input_warnings += 1
                self._warn(f'frame {frame.frame_idx} (stamp {frame.stamp_ns}): {text}')

    def _score_labels(self, snap: AssociationSnapshot) -> None:
        from assoc_logger_ros.dataset.labels import SessionScorer, snapshot_view
        if self.label_scorer is None:
            self.label_scorer = SessionScorer(timeline=False)
        view = snapshot_view(snap)
        if view is not None:
            self.label_scorer.score(view)

    def new_session(self, reason: str) -> None:
        """Reset the tracker and label what follows as a new session."""
        self._session_count += 1
        self.resets += 1
        self.session_id = f'{self._base_session}.{self._session_count}'
        self.tracker.reset()
        self._origin = None
        self.label_scorer = None
        self._last_stamp_ns = None
        self._warn(f'{reason}: tracker reset, new session {self.session_id}')

    def set_logging(self, enabled: bool) -> None:
        """Pause (False) or resume (True) sample writing; tracking is unaffected."""
        self.logging_enabled = bool(enabled)

    def stats(self) -> dict[str, Any]:
        """Counters for diagnostics and closing summaries."""
        out: dict[str, Any] = {
            'frames': self.frames, 'session_id': self.session_id, 'resets': self.resets,
            'input_warnings': self.input_warnings,
            'logging_enabled': self.logging_enabled,
            'logging_off_reason': self.logging_off_reason,
            'est_id_switches': self.tracker.est_id_switches,
            'max_detections_dropped': self.tracker.input_drops.over_max_detections,
            'max_detections_frames': self.tracker.input_drops.capped_frames,
            'out_of_range_dropped': self.tracker.input_drops.out_of_range,
        }
        if self.writer is not None:
            out.update({f'writer_{k}': v for k, v in self.writer.stats().items()})
        if self.label_scorer is not None:
            from assoc_logger_ros.dataset.labels import live_values
            out.update(live_values(self.label_scorer))
        return out

    def close(self) -> None:
        """Flush every queued sample and stop the writer; safe to call twice."""
        if self.writer is not None:
            self.writer.close()
