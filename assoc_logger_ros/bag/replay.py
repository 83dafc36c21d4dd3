"""Replay a rosbag2 bag through the node's pipeline in code: deterministic, faster than real time.

Reads the bag with rosbags (mcap or sqlite3, no ROS installation needed) in bag-time order and
does what the node does with live messages: masks and images are joined to detection arrays by
the shared :class:`~assoc_logger_ros.messages.joiner.StampJoiner`, with each message's bag (log)
time as "now"; the joined messages become a Frame through the same conversion functions
(:mod:`.messages`, :mod:`assoc_logger_ros.appearance`); the same
:class:`~assoc_logger_ros.pipeline.Pipeline` tracks and writes the samples.

Differences from the node, all deliberate:

- Nothing is dropped for speed: the writer runs with ``log_wait_when_full`` (and the replay waits
  for queue room before each frame), so the output never depends on disk speed.
- The session id is derived from the bag (``<bag name>-<start time ns>-<fingerprint>``)
  unless one is configured, so replaying a bag twice into two empty directories gives
  byte-identical samples.
- Ground truth: a ``/gt`` topic (see :mod:`.bagio`) is matched to each frame's detections by
  stamp and box IoU >= 0.5 (one-to-one, highest total IoU); the matched identity goes into
  ``Frame.gt_ids`` and so into the samples' ``det_gt_ids``; unmatched detections get -1.
- Detection2DArray bytes are decoded by :mod:`.bag_cdr` (numpy, about 4-10x faster than rosbags'
  decoder; the node's raw path uses the same decoder) whenever the bag's type has the
  vision_msgs 4.x hash; other layouts go through rosbags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import sys
import time
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.appearance import make_descriptor
from assoc_logger_ros.bag import bagio
from assoc_logger_ros.config import Settings
from assoc_logger_ros.frame import Frame
from assoc_logger_ros.messages import convert as conv
from assoc_logger_ros.messages.cdr import (
    decode_detection_array,
    detection_arrays_of,
)
from assoc_logger_ros.messages.convert import GT_IOU, iou_matrix, match_gt  # noqa: F401
from assoc_logger_ros.messages.joiner import Joined, StampJoiner
from assoc_logger_ros.pipeline import Pipeline

_WARN_FIRST = 3  # warnings printed per kind before the rest are only counted


class ReplayError(RuntimeError):
    """The bag cannot be replayed (missing, unreadable, no detections topic); says why."""


@dataclass
class ReplayResult:
    """What a replay did; :meth:`summary` is the closing report."""

    bag: str
    session_id: str
    log_dir: str
    messages: int = 0
    detection_messages: int = 0
    frames: int = 0
    samples_written: int = 0
    samples_dropped: int = 0
    matched_pairs: int = 0
    est_id_switches: int = 0
    sessions: int = 1
    gt_frames: int = 0
    gt_matched: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    join: dict[str, Any] = field(default_factory=dict)
    decoder: str = ''
    writer: str = ''
    track_s: float = 0.0
    writer_wait_s: float = 0.0
    loop_s: float = 0.0
    flush_s: float = 0.0

    @property
    def tracking_fps(self) -> float:
        """Frames per second of the read-join-track loop (samples possibly still queued)."""
        return self.frames / self.loop_s if self.loop_s > 0 else 0.0

    @property
    def end_to_end_fps(self) -> float:
        """Frames per second including the final wait for every sample to be on disk."""
        total = self.loop_s + self.flush_s
        return self.frames / total if total > 0 else 0.0

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` messages skipped for ``reason``."""
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def summary(self) -> str:
        """Human-readable closing summary (several lines, no trailing newline)."""
        lines = [
            f'replayed {self.bag}: {self.frames} frames from {self.detection_messages} '
            f'detection messages ({self.messages} messages read, decoder: {self.decoder})',
            f'  samples written: {self.samples_written}'
            + (f', dropped: {self.samples_dropped}' if self.samples_dropped else '')
            + f'  -> {self.log_dir or "(logging disabled)"}'
            + (f' (writer: {self.writer})' if self.log_dir else ''),
            f'  session: {self.session_id}'
            + (f' (+{self.sessions - 1} after stamp jumps)' if self.sessions > 1 else ''),
            f'  matched pairs: {self.matched_pairs}   est_id_switches: {self.est_id_switches}',
        ]
        if self.gt_frames:
            lines.append(f'  ground truth: {self.gt_frames} frames, {self.gt_matched} '
                         f'detections labelled (IoU >= {GT_IOU})')
        joined = {k: v for k, v in self.join.items() if k.endswith('_joined')}
        if joined:
            lines.append('  joined: ' + ', '.join(f'{k[:-7]} {v}' for k, v in joined.items()))
        if self.skipped:
            lines.append('  skipped: ' + '; '.join(
                f'{n} {reason}' for reason, n in sorted(self.skipped.items())))
        else:
            lines.append('  skipped: nothing')
        if self.warnings:
            lines.append('  warnings: ' + ', '.join(
                f'{kind} x{n}' for kind, n in sorted(self.warnings.items())))
        lines.append(f'  time: {self.loop_s:.2f} s replay ({self.tracking_fps:.0f} frames/s; '
                     f'{self.track_s:.2f} s in the tracker, {self.writer_wait_s:.2f} s waiting '
                     f'for the writer) + {self.flush_s:.2f} s final flush = '
                     f'{self.end_to_end_fps:.0f} frames/s end to end')
        return '\n'.join(lines)


def bag_fingerprint(bag: str | Path) -> str:
    """8 hex digits that tell bags apart, the same for the same bag wherever it lies.

    Hashes ``metadata.yaml`` (topics, message counts, start and duration) and the name, size and
    first 64 KiB of every storage file; neither paths nor modification times enter it.
    """
    import hashlib
    path = Path(bag)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file()) \
        if path.is_dir() else []
    for f in files:
        try:
            size = f.stat().st_size
            with open(f, 'rb') as fh:
                head = fh.read(1 << 16) if f.name != 'metadata.yaml' else fh.read()
        except OSError:
            continue
        digest.update(f'{f.name}\0{size}\0'.encode())
        digest.update(head)
    return digest.hexdigest()[:8]


def session_id_for(bag: str | Path, start_ns: int) -> str:
    """Session label of a replay: bag name, start time and fingerprint (same bag, same label).

    The fingerprint keeps bags that share a folder name and start time (``bag``, ``bag``, ...)
    apart once merged.
    """
    name = Path(bag).resolve().name
    if Path(bag).is_file():
        name = Path(bag).resolve().parent.name
    safe = re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_') or 'bag'
    return f'{safe}-{int(start_ns)}-{bag_fingerprint(bag)}'


class Progress:
    """One-line progress bar with rate and ETA on a terminal; silent otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, *, enabled: bool | None = None,
                 label: str = 'replay', period_s: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.total = max(int(total), 0)
        self.enabled = (self.stream.isatty() if enabled is None else enabled)
        self.label = label
        self.period_s = period_s
        self._t0 = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, done: int, *, force: bool = False) -> None:
        """Redraw (at most every ``period_s``) for ``done`` of ``total``."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.period_s:
            return
        self._last = now
        elapsed = max(now - self._t0, 1e-9)
        rate = done / elapsed
        total = max(self.total, done)
        frac = done / total if total else 1.0
        width = 24
        bar = '#' * int(frac * width) + '.' * (width - int(frac * width))
        eta = (total - done) / rate if rate > 0 else float('inf')
        eta_text = f'{eta:5.1f}s' if eta != float('inf') else '   ?'
        self.stream.write(f'\r{self.label} [{bar}] {done}/{total} {frac:4.0%} '
                          f'{rate:6.0f}/s ETA {eta_text} ')
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the bar (before printing a warning or the summary)."""
        if self.enabled and self._shown:
            self.stream.write('\r' + ' ' * 78 + '\r')
            self.stream.flush()
            self._shown = False

    def close(self, done: int) -> None:
        """Show the final state and end the line."""
        if self.enabled:
            self.update(done, force=True)
            self.stream.write('\n')
            self.stream.flush()
            self._shown = False


@dataclass
class _Pending:
    joined: Joined
    arrays: tuple[NDArray[np.float64], NDArray[np.float64], list[str]]


class _Warner:
    """Prints the first few warnings of each kind (clearing the progress bar) and counts all."""

    def __init__(self, result: ReplayResult, sink: Callable[[str], None] | None,
                 progress: Progress | None) -> None:
        self.result = result
        self.sink = sink
        self.progress = progress

    def __call__(self, kind: str, text: str) -> None:
        n = self.result.warnings.get(kind, 0) + 1
        self.result.warnings[kind] = n
        if self.sink is None or n > _WARN_FIRST:
            return
        if self.progress is not None:
            self.progress.clear()
        suffix = ' (further warnings of this kind are only counted)' if n == _WARN_FIRST else ''
        self.sink(f'WARNING [{kind}] {text}{suffix}')


def _pipeline_warn(warner: _Warner) -> Callable[[str], None]:
    def warn(text: str) -> None:
        if 'new session' in text:
            warner('session', text)
        elif text.startswith('frame '):
            warner('bad_input', text)
        else:
            warner('writer', text)
    return warn


def _wait_for_writer(pipeline: Pipeline) -> float:
    """Wait until the writer queue can take a sample; returns the seconds waited.

    The pipeline's writer also has ``log_wait_when_full`` set (replay never drops for speed);
    waiting here first keeps that wait out of the tracker's measured time.
    """
    writer = pipeline.writer
    if writer is None or not pipeline.logging_enabled:
        return 0.0
    limit = pipeline.settings.recorder.log_queue_size
    t0 = time.perf_counter()
    while True:
        stats = writer.stats()
        if stats['pending'] < limit or stats['stopped_reason'] is not None:
            break
        time.sleep(0.0005)
    return time.perf_counter() - t0


def replay_bag(bag: str | Path, settings: Settings, *, detections_topic: str | None = None,
               masks_topic: str | None = None, image_topic: str | None = None,
               gt_topic: str = bagio.TOPIC_GT, session_id: str | None = None,
               warn: Callable[[str], None] | None = None, progress: bool | None = None,
               progress_stream: TextIO | None = None, fast_decode: bool = True,
               writer_process: bool | None = None,
               extra_metadata: dict[str, Any] | None = None) -> ReplayResult:
    """Replay ``bag`` with ``settings`` and return counters and timings.

    Args:
        bag: rosbag2 directory (or a file inside it).
        settings: resolved settings; topics default to ``settings.node.*_topic`` made absolute.
        session_id: overrides the derived one (``settings.recorder.session_id`` also does).
        warn: where warning lines go (None: nowhere; they are counted either way).
        progress: show the progress bar (None: only when the stream is a terminal).
        fast_decode: use the numpy CDR decoder where the type matches (and the ``fast_cdr``
            setting is on); False forces rosbags' decoder.
        writer_process: write samples from a child process (same files; tracking and writing
            then run on two cores instead of sharing the GIL); None: when there are 2+ CPUs.
    """
    bag_path = Path(bag)
    if not bag_path.exists():
        raise ReplayError(f'{bag_path} does not exist')
    node_cfg = settings.node
    det_topic = bagio.topic_name(detections_topic or node_cfg.detections_topic)
    mask_topic = bagio.topic_name(masks_topic or node_cfg.masks_topic)
    img_topic = bagio.topic_name(image_topic or node_cfg.image_topic)
    gt_topic = bagio.topic_name(gt_topic) if gt_topic else ''
    try:
        reader = bagio.open_reader(bag_path)
        reader.open()
    except Exception as err:  # noqa: BLE001 - rosbags raises several types; report one
        raise ReplayError(f'cannot open {bag_path} as a rosbag2 bag: {err}') from None
    try:
        return _replay_open(reader, bag_path, settings, det_topic, mask_topic, img_topic,
                            gt_topic, session_id, warn, progress, progress_stream,
                            fast_decode, writer_process, extra_metadata)
    finally:
        reader.close()


def _replay_open(reader: Any, bag_path: Path, settings: Settings, det_topic: str,
                 mask_topic: str, img_topic: str, gt_topic: str, session_id: str | None,
                 warn_sink: Callable[[str], None] | None, show_progress: bool | None,
                 progress_stream: TextIO | None, fast_decode: bool,
                 writer_process: bool | None,
                 extra_metadata: dict[str, Any] | None) -> ReplayResult:
    node_cfg = settings.node
    by_topic: dict[str, list[Any]] = {}
    for conn in reader.connections:
        by_topic.setdefault(conn.topic, []).append(conn)
    det_conns = by_topic.get(det_topic, [])
    if not det_conns:
        topics = ', '.join(f'{t} ({c[0].msgtype})' for t, c in sorted(by_topic.items()))
        raise ReplayError(f'{bag_path} has no topic {det_topic}; it has: {topics or "none"}. '
                          'Choose one with --detections-topic.')
    for conn in det_conns:
        if conn.msgtype != bagio.DETECTION_ARRAY:
            raise ReplayError(f'{det_topic} carries {conn.msgtype}, expected '
                              f'{bagio.DETECTION_ARRAY}')

    # Offline: wait for the disk rather than drop a sample, so output never depends on speed.
    settings = settings.replace(log_wait_when_full=True)
    info_conns = [c for c in by_topic.get(bagio.TOPIC_CAMERA_INFO, [])
                  if c.msgtype == bagio.CAMERA_INFO]
    size_meta: dict[str, Any] = {}
    if info_conns and not (node_cfg.image_width > 0 and node_cfg.image_height > 0):
        size = _camera_info_size(reader, info_conns)
        if size is not None:   # the bag's own size beats the fixed fallback
            settings = settings.replace(image_width=size[0], image_height=size[1])
            size_meta = {'camera_info': f'{size[0]}x{size[1]}'}
    sid = session_id or settings.recorder.session_id or session_id_for(bag_path,
                                                                       reader.start_time)
    result = ReplayResult(bag=str(bag_path), session_id=sid,
                          log_dir=os.path.expanduser(settings.recorder.log_dir))
    total = sum(c.msgcount for c in det_conns)
    progress = Progress(total, progress_stream, enabled=show_progress)
    warner = _Warner(result, warn_sink, progress)

    descriptor = make_descriptor(node_cfg.embedding_source, node_cfg.embedding_plugin)
    sides: tuple[str, ...] = (('mask',) if settings.tracker.seg_enable else ()) + (
        ('image',) if descriptor is not None else ())
    side_topics = {'mask': mask_topic, 'image': img_topic}
    used_sides = []
    for side in sides:
        conns = [c for c in by_topic.get(side_topics[side], []) if c.msgtype == bagio.IMAGE]
        if conns:
            used_sides.append(side)
        else:
            warner('no_' + side, f'{"seg_enable" if side == "mask" else "embedding_source"} '
                   f'is on but the bag has no {bagio.IMAGE} topic {side_topics[side]}; '
                   f'tracking without {side}s')
    sides = tuple(used_sides)
    joiner = StampJoiner(int(round(node_cfg.mask_tolerance_s * 1e9)), sides,
                         max_queue=node_cfg.join_queue_size)
    registry = conv.ClassRegistry()

    topic_of: dict[int, str] = {}
    for conn in det_conns:
        topic_of[conn.id] = 'detections'
    for side in sides:
        for conn in by_topic[side_topics[side]]:
            if conn.msgtype == bagio.IMAGE:
                topic_of[conn.id] = side
    gt_conns = [c for c in by_topic.get(gt_topic, []) if c.msgtype == bagio.DETECTION_ARRAY]
    for conn in gt_conns:
        topic_of[conn.id] = 'gt'
    for conn in reader.connections:
        if conn.id not in topic_of and conn not in info_conns:
            result.skip(f'on {conn.topic} (not used)', conn.msgcount)

    fast_ok = fast_decode and settings.node.fast_cdr and all(
        reader.typestore.hash_rihs01(c.msgtype) == bagio.detection_array_hash()
        for c in det_conns + gt_conns)
    result.decoder = 'numpy CDR' if fast_ok else 'rosbags'

    def decode(raw: bytes, msgtype: str) -> tuple[int, Any, tuple[Any, ...]]:
        if fast_ok:
            data = decode_detection_array(raw)
            return data.stamp_ns, data, detection_arrays_of(data)
        msg = reader.deserialize(raw, msgtype)
        return conv.stamp_to_ns(msg.header.stamp), msg, conv.detection_arrays(msg)

    metadata = {'bag': bag_path.resolve().name, **size_meta, **(extra_metadata or {})}
    log_dir = result.log_dir
    if writer_process is None:
        writer_process = (os.cpu_count() or 1) > 1
    writer_process = bool(writer_process and log_dir)
    # The settings already force log_wait_when_full, so either writer waits instead of dropping.
    pipeline = Pipeline(settings.replace(log_writer='process' if writer_process else 'thread'),
                        session_id=sid, warn=_pipeline_warn(warner), source='replay',
                        extra_metadata=metadata)
    result.writer = 'process' if writer_process else ('thread' if log_dir else 'none')
    gt: dict[int, tuple[NDArray[np.float64], NDArray[np.int64]]] = {}
    pending: list[_Pending] = []
    state = {'processed': 0}

    def process(item: _Pending) -> None:
        frame_idx = state['processed']
        state['processed'] += 1
        joined = item.joined
        frame = _build_frame(joined, item.arrays, settings, registry, descriptor, frame_idx,
                             warner, result)
        if frame is None:
            return
        labels = gt.pop(joined.stamp_ns, None)
        if labels is not None:
            frame = conv.label_frame(frame, item.arrays[0], *labels)
            result.gt_frames += 1
            result.gt_matched += int((frame.gt_ids >= 0).sum())
        result.writer_wait_s += _wait_for_writer(pipeline)
        t0 = time.perf_counter()
        try:
            snap = pipeline.process(frame)
        except Exception as err:  # noqa: BLE001 - as the node: skip the frame, say why
            result.skip('detection arrays the tracker rejected')
            warner('bad_detections', f'skipped detection array (stamp {joined.stamp_ns}): '
                   f'{type(err).__name__}: {err}')
            return
        finally:
            result.track_s += time.perf_counter() - t0
        result.matched_pairs += snap.matched_pairs
        progress.update(state['processed'])

    def release(items: list[Joined]) -> None:
        for joined in items:
            pending.append(_Pending(joined, joined.detections[1]))

    t_start = time.perf_counter()
    try:
        for conn, log_ns, raw in _read_messages(reader, [
                c for c in reader.connections if c.id in topic_of], bag_path, result):
            result.messages += 1
            # Frames released earlier are processed once bag time has moved past them, so a
            # ground-truth message stored at the same time as its detections is always seen.
            if pending and pending[0].joined.arrival_ns < log_ns:
                keep = [p for p in pending if p.joined.arrival_ns >= log_ns]
                for item in pending[:len(pending) - len(keep)]:
                    process(item)
                pending[:] = keep
            kind = topic_of[conn.id]
            if kind == 'detections':
                result.detection_messages += 1
                try:
                    stamp, msg, arrays = decode(raw, conn.msgtype)
                except Exception as err:  # noqa: BLE001 - CdrError, rosbags errors
                    result.skip('undecodable detection arrays')
                    warner('bad_detections', f'undecodable detection array at bag time '
                           f'{log_ns}: {err}')
                    continue
                release(joiner.add_detections(stamp, (msg, arrays), log_ns))
            elif kind == 'gt':
                try:
                    stamp, msg, arrays = decode(raw, conn.msgtype)
                except Exception as err:  # noqa: BLE001 - CdrError, rosbags errors
                    result.skip('undecodable ground-truth arrays')
                    warner('bad_gt', f'undecodable ground truth at bag time {log_ns}: {err}')
                    continue
                gt[stamp] = (arrays[0], conv.gt_labels(msg)[1])
                if len(gt) > 10 * max(node_cfg.join_queue_size, 1):
                    gt.pop(min(gt))
            else:
                try:
                    msg = reader.deserialize(raw, conn.msgtype)
                    stamp = conv.stamp_to_ns(msg.header.stamp)
                except Exception as err:  # noqa: BLE001
                    result.skip(f'undecodable {kind} messages')
                    warner(f'bad_{kind}', f'undecodable {kind} at bag time {log_ns}: {err}')
                    continue
                release(joiner.add_side(kind, stamp, msg, log_ns))
        release(joiner.flush())
        for item in pending:
            process(item)
        pending.clear()
        result.loop_s = time.perf_counter() - t_start
        t_flush = time.perf_counter()
    finally:
        pipeline.close()
    result.flush_s = time.perf_counter() - t_flush
    progress.close(state['processed'])
    _finish(result, pipeline, joiner)
    return result


def _read_messages(reader: Any, connections: list[Any], bag_path: Path, result: ReplayResult
                   ) -> Iterator[tuple[Any, int, bytes]]:
    """Yield the reader's messages; any read error becomes one :class:`ReplayError`.

    A corrupted chunk (ZstdError), a truncated file, a bad record...: the message says where
    it happened; the caller's ``finally`` still flushes the samples written so far.
    """
    it = iter(reader.messages(connections=connections))
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except Exception as err:  # noqa: BLE001 - rosbags, zstd, lz4, sqlite3, OSError...
            raise ReplayError(
                f'cannot read {bag_path} after {result.messages} message(s): '
                f'{type(err).__name__}: {err} (samples written so far are kept and valid)'
            ) from None
        yield item


def _camera_info_size(reader: Any, conns: list[Any]) -> tuple[int, int] | None:
    """(width, height) of the first readable CameraInfo with a size, else None.

    A bag that cannot be read here gives None: the main pass reports the read error cleanly.
    """
    try:
        for _, _, raw in reader.messages(connections=conns):
            try:
                msg = reader.deserialize(raw, bagio.CAMERA_INFO)
            except Exception:  # noqa: BLE001 - a bad message: try the next one
                continue
            if int(msg.width) > 0 and int(msg.height) > 0:
                return int(msg.width), int(msg.height)
    except Exception:  # noqa: BLE001 - rosbags, zstd, lz4, sqlite3, OSError...
        return None
    return None


def _build_frame(joined: Joined, arrays: tuple[Any, ...], settings: Settings,
                 registry: conv.ClassRegistry, descriptor: Any, frame_idx: int,
                 warn: _Warner, result: ReplayResult) -> Frame | None:
    """Joined messages -> Frame with the node's conversion (decode_sides, arrays_to_frame)."""
    cfg = settings.node

    def on_bad(side: str, text: str) -> None:
        result.skip(f'bad {side} messages')
        warn(f'bad_{side}', text)

    try:
        mask, image, embed = conv.decode_sides(
            joined.sides, joined.stamp_ns, image_width=cfg.image_width,
            image_height=cfg.image_height, descriptor=descriptor, on_bad=on_bad)
        boxes, scores, classes = arrays
        return conv.arrays_to_frame(
            joined.stamp_ns, boxes, scores, classes, registry=registry, frame_idx=frame_idx,
            mask=mask, image=image, width=cfg.image_width, height=cfg.image_height,
            embed=embed)
    except Exception as err:  # noqa: BLE001 - one bad message must not stop the replay
        result.skip('detection arrays that failed to convert')
        warn('bad_detections', f'skipped detection array (stamp {joined.stamp_ns}): '
             f'{type(err).__name__}: {err}')
        return None


def _finish(result: ReplayResult, pipeline: Pipeline, joiner: StampJoiner) -> None:
    stats = pipeline.stats()
    result.frames = int(stats['frames'])
    result.est_id_switches = int(stats['est_id_switches'])
    result.sessions = int(stats['resets']) + 1
    result.samples_written = int(stats.get('writer_written', 0))
    result.samples_dropped = sum(int(stats.get(f'writer_{k}', 0) or 0) for k in (
        'dropped_queue_full', 'dropped_closed', 'dropped_disk', 'invalid', 'failed'))
    join = joiner.stats()
    result.join = join
    for side in joiner.sides:
        result.skip(f'detection arrays without a {side} within tolerance (late or missing; '
                    'tracked without it)', int(join.get(f'{side}_misses', 0)))
        result.skip(f'{side} messages dropped from a full join buffer',
                    int(join.get(f'{side}_dropped', 0)))
