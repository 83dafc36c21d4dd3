"""The ``tracker_node`` console script: rclpy node ``assoc_tracker``.

Thin adapter around :class:`~assoc_logger_ros.pipeline.Pipeline`: messages are converted once at
the edge (:mod:`.messages`), masks and images are joined by stamp (:mod:`.joiner`, the same code
the replay uses), the pipeline tracks and hands samples to its writer thread, and the node
publishes ``tracks`` and ``/diagnostics``. Every parameter is declared from the config schema.

Parameter precedence: explicit ``-p``/launch value > params file (both are ROS overrides; ROS
applies them in command-line order, and launch passes the params file first) > environment
variable > schema default. Overrides are resolved through :func:`config.resolve`, so a bad value
fails at start-up with the schema's message rather than a ROS type error.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
import os
import shutil
import signal
import sys
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
import rclpy
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import MessageInfo, RCLError, Subscription
from sensor_msgs.msg import CameraInfo, Image
from vision_msgs.msg import Detection2D, Detection2DArray

from assoc_logger_ros import config
from assoc_logger_ros.appearance import Descriptor, make_descriptor
from assoc_logger_ros.messages import convert as conv
from assoc_logger_ros.messages.joiner import DETECTIONS, ArrivalFeed, Joined, StampJoiner
from assoc_logger_ros.pipeline import Pipeline
from assoc_logger_ros.recording.writer import RecorderError
from assoc_logger_ros.ros import health
from assoc_logger_ros.ros.clock_watch import SimClockWatch
from assoc_logger_ros.ros.qos import camera_info_qos, diagnostics_qos, input_qos, output_qos

NODE_NAME = 'assoc_tracker'
# ROS's own parameters, never reported as unknown
_ROS_PARAMS = frozenset({'use_sim_time', 'start_type_description_service'})
_BIG = 1.7e308
# a drop of the ROS clock against the system clock by more than this is a clock jump
_CLOCK_JUMP_NS = 1_000_000_000
_GT = 'gt'  # joiner side of the ground-truth topic (gt_topic)
# repeated stop signals within this many seconds of the first are the same request
STOP_GRACE_S = 5.0


class WarnThrottle:
    """At most one warning per kind per ``period_s``; counts what it suppressed."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def check(self, kind: str) -> tuple[bool, int]:
        """(emit?, number suppressed since the last emitted one of this kind)."""
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.period_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False, 0
        self._last[kind] = now
        return True, self._suppressed.pop(kind, 0)


def descriptor_for(s: config.ParamSpec) -> ParameterDescriptor:
    """ROS parameter descriptor of one schema setting (description, range, read-only)."""
    text = s.description
    if s.unit:
        text += f' [{s.unit}]'
    text += f' Environment variable: {s.env_name}. Default: {s.default!r}.'
    desc = ParameterDescriptor(name=s.name, description=text, read_only=not s.runtime,
                               additional_constraints=s.range_text())
    if s.type is float and (s.min is not None or s.max is not None):
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(-_BIG if s.min is None else s.min),
            to_value=float(_BIG if s.max is None else s.max), step=0.0)]
    elif s.type is int and (s.min is not None or s.max is not None):
        desc.integer_range = [IntegerRange(
            from_value=int(-(2**63) if s.min is None else s.min),
            to_value=int(2**63 - 1 if s.max is None else s.max), step=1)]
    return desc


class TrackerNode(Node):
    """Detections (+ masks, images) in; tracks, diagnostics and samples out.

    Start-up is two steps, :meth:`_configure` (parameters, publishers, pipeline and writer) and
    :meth:`_start_io` (subscriptions and timers); the plain node runs both here, the managed node
    (:mod:`.lifecycle_node`) runs them from its transitions.
    """

    _start_on_init = True

    def __init__(self, **kwargs: Any) -> None:
        self.settings: config.Settings
        self.pipeline: Pipeline | None = None
        self.joiner: StampJoiner
        self.registry = conv.ClassRegistry()
        self.descriptor: Descriptor | None = None
        self.recent_warnings: deque[str] = deque(maxlen=100)
        self.frames_in = 0
        self.frames_processed = 0
        self.bad_messages = 0
        self.warnings = 0
        self._latencies: deque[float] = deque(maxlen=1000)
        self._diag_last: tuple[float, int] = (time.monotonic(), 0)
        self._diag_prev: dict[str, int] = {}
        self._closed = False
        self._offset_ns: int | None = None
        self._declared = False
        self._io: list[Any] = []  # subscriptions and timers of _start_io
        self._inputs: list[tuple[str, Subscription]] = []
        self.clock_watch = SimClockWatch()
        self._clock_diag_t = 0.0  # last WARN report of the clock watch (steady time)
        super().__init__(NODE_NAME, **kwargs)
        if self._start_on_init:
            self._configure()
            self._start_io()

    def _configure(self) -> None:
        """Parameters, joiner, publishers and the pipeline with its writer."""
        if self._declared:  # the managed node, configured again after a cleanup
            self.settings = config.resolve(explicit={
                s.name: self.get_parameter(s.name).value for s in config.all_specs()})
        else:
            self.settings = self._declare_parameters()
            self._declared = True
            self.add_on_set_parameters_callback(self._validate_parameters)
            self.add_post_set_parameters_callback(self._apply_parameters)
        node_cfg = self.settings.node
        self._throttle = WarnThrottle(node_cfg.warn_throttle_s)
        self.health = health.NodeHealth(1.0 / self.settings.tracker.frame_rate, self.warn)
        self.descriptor = make_descriptor(node_cfg.embedding_source,
                                          node_cfg.embedding_plugin)
        sides = (('mask',) if self.settings.tracker.seg_enable else ()) + (
            ('image',) if self.descriptor is not None else ()) + (
            (_GT,) if node_cfg.gt_topic else ())
        self.joiner = StampJoiner(int(round(node_cfg.mask_tolerance_s * 1e9)), sides,
                                  max_queue=node_cfg.join_queue_size)
        self.feed = ArrivalFeed(self.joiner)
        self._factory = conv.TrackMessageFactory(Detection2DArray, Detection2D)
        self.pipeline = Pipeline(
            self.settings, warn=self._pipeline_warning, source='ros',
            extra_metadata={'node': self.get_fully_qualified_name()}, logging_optional=True)
        self.get_logger().info(
            f'session {self.pipeline.session_id}; logging to '
            f'{self.settings.recorder.log_dir or "(disabled)"}; joining {sides or "nothing"}')
        self._pub = self.create_publisher(Detection2DArray, node_cfg.tracks_topic,
                                          output_qos(node_cfg))
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics',
                                               diagnostics_qos())

    def _start_io(self) -> None:
        """Subscriptions and timers: from here on, received messages are tracked."""
        node_cfg = self.settings.node
        sides = self.joiner.sides
        qos_in = input_qos(node_cfg)
        # Callbacks take (msg, MessageInfo): "now" for the joiner is each message's receive time.
        self._inputs = [(DETECTIONS, health.subscribe_counting_losses(
            self, self.health, Detection2DArray, node_cfg.detections_topic,
            self._on_detections, qos_in, raw=node_cfg.fast_cdr))]
        if 'mask' in sides:
            self._inputs.append(('mask', self.create_subscription(
                Image, node_cfg.masks_topic, lambda m, i: self._on_input('mask', m, i),
                qos_in)))
        if 'image' in sides:
            self._inputs.append(('image', self.create_subscription(
                Image, node_cfg.image_topic, lambda m, i: self._on_input('image', m, i),
                qos_in)))
        if _GT in sides:  # joined like masks; labels the frame of exactly its stamp
            self._inputs.append((_GT, self.create_subscription(
                Detection2DArray, node_cfg.gt_topic, lambda m, i: self._on_input(_GT, m, i),
                qos_in, raw=node_cfg.fast_cdr)))
        self._take_limit = max(int(node_cfg.qos_depth), 1)
        self._io = [sub for _, sub in self._inputs]
        if node_cfg.camera_info_topic and not (node_cfg.image_width > 0
                                               and node_cfg.image_height > 0):
            self._io.append(self.create_subscription(
                CameraInfo, node_cfg.camera_info_topic, self._on_camera_info,
                camera_info_qos()))
        if sides:
            self._io.append(self.create_timer(max(node_cfg.mask_tolerance_s / 4.0, 0.002),
                                              self._on_join_timer))
        self._io.append(self.create_timer(node_cfg.diagnostics_period_s,
                                          self._publish_diagnostics))
        if self.get_parameter('use_sim_time').value:  # steady: ROS time may never move
            from rclpy.clock import Clock, ClockType

            self._io.append(self.create_timer(1.0, self._check_clock,
                                              clock=Clock(clock_type=ClockType.STEADY_TIME)))

    def _stop_io(self) -> None:
        """Destroy what :meth:`_start_io` created (the managed node's deactivate)."""
        for entity in self._io:
            if isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            else:
                self.destroy_timer(entity)
        self._io, self._inputs = [], []

    # ------------------------------------------------------------------------- parameters
    def _declare_parameters(self) -> config.Settings:
        """Declare every schema setting; value = override (YAML/CLI) > env > default."""
        overrides = {name: p.value for name, p in
                     getattr(self, '_parameter_overrides', {}).items()}
        specs = config.all_specs()
        known = {s.name for s in specs}
        unknown = sorted(n for n in overrides
                         if n not in known and n not in _ROS_PARAMS and '.' not in n)
        if unknown:
            self.get_logger().warning(f'ignoring unknown parameter(s): {", ".join(unknown)}')
        settings = config.resolve(explicit={k: v for k, v in overrides.items() if k in known})
        values = settings.as_dict()
        for s in specs:
            self.declare_parameter(s.name, values[s.name], descriptor_for(s),
                                   ignore_override=True)
        return settings

    def _validate_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Accept a change only if the schema accepts the value (reason names the problem)."""
        for p in params:
            try:
                config.spec(p.name).coerce(p.value, 'parameter')
            except KeyError:
                continue
            except config.ConfigError as err:
                return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list[Parameter]) -> None:
        """Apply accepted runtime changes (pause/resume logging)."""
        for p in params:
            if p.name == 'log_enabled' and self.pipeline is not None:
                enabled = config.spec('log_enabled').coerce(p.value, 'parameter')
                if enabled != self.pipeline.logging_enabled:
                    self.pipeline.set_logging(enabled)
                    self.get_logger().info(
                        'sample logging resumed' if enabled else 'sample logging paused')

    # ------------------------------------------------------------------------- warnings
    def warn(self, kind: str, text: str) -> None:
        """Throttled per kind; always counted and kept in ``recent_warnings``."""
        self.warnings += 1
        self.recent_warnings.append(f'{kind}: {text}')
        emit, suppressed = self._throttle.check(kind)
        if emit:
            more = f' ({suppressed} similar suppressed)' if suppressed else ''
            self.get_logger().warning(text + more)

    def _pipeline_warning(self, text: str) -> None:
        if 'new session' in text:  # stamp jump: once per event, never throttled
            self.recent_warnings.append(f'session: {text}')
            self.get_logger().warning(text)
        elif 'max_detections' in text:
            self.warn('max_detections', text)
        elif text.startswith('frame '):
            self.warn('input', text)
        else:
            self.warn('writer', text)

    # ------------------------------------------------------------------------- callbacks
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_detections(self, msg: Detection2DArray | bytes, info: MessageInfo) -> None:
        self._on_input(DETECTIONS, msg, info)

    def _on_input(self, kind: str, msg: Any, info: MessageInfo | None) -> None:
        """Any input callback: this message plus everything else already received, in order."""
        t0 = time.perf_counter()
        done = self.frames_processed
        try:
            offset = self._clock_offset_ns()
            items = [self._item(kind, msg, info, offset)]
            items += self._take_received(offset)
            for joined in self._feed(items):
                self._process(joined)
        finally:
            elapsed = time.perf_counter() - t0
            self._latencies.append(elapsed)
            self.health.callback_done(elapsed, self.frames_processed - done)

    def _on_join_timer(self) -> None:
        """Expire waiting detection arrays, after feeding what arrived before their deadline."""
        if not self.joiner.waiting:
            return
        offset = self._clock_offset_ns()
        released = self._feed(self._take_received(offset))
        released += self.feed.poll(self._now_ns())
        for joined in released:
            self._process(joined)

    def _feed(self, items: list[tuple[int, str, int, Any] | None]) -> list[Joined]:
        """Decoded messages to the joiner, in arrival order (undecodable ones are dropped)."""
        return self.feed.feed(item for item in items if item is not None)

    def _clock_offset_ns(self) -> int:
        """Node clock minus system clock: maps receive times (system clock) to ROS time.

        0 with the system clock; under ``use_sim_time`` a receive time becomes "sim now minus
        the message's age".
        """
        if not self._sim_time:
            return 0
        offset = self._now_ns() - time.time_ns()
        if self._offset_ns is not None and offset < self._offset_ns - _CLOCK_JUMP_NS:
            self.feed.reset()  # sim time jumped back (bag loop): let the joiner see it
        self._offset_ns = offset
        return offset

    @property
    def _sim_time(self) -> bool:
        return bool(getattr(self.get_clock(), 'ros_time_is_active', False))

    def _take_received(self, offset: int) -> list[tuple[int, str, int, Any] | None]:
        """Take every message already received on the inputs (bounded by ``qos_depth`` each).

        Taking here rather than waiting for the executor to call each callback keeps the
        arrival order across topics and lets the join timer see a mask that arrived before
        the deadline but whose callback has not run yet (the executor serves timers first).
        """
        items: list[tuple[int, str, int, Any] | None] = []
        for kind, sub in self._inputs:
            for _ in range(self._take_limit):
                try:
                    with sub.handle:
                        got = sub.handle.take_message(sub.msg_type, sub.raw)
                except InvalidHandle:
                    break
                if got is None:
                    break
                items.append(self._item(kind, got[0], got[1], offset))
        return items

    def _item(self, kind: str, msg: Any, info: MessageInfo | None,
              offset: int) -> tuple[int, str, int, Any] | None:
        """(arrival ns in node-clock time, kind, stamp ns, payload); None if undecodable."""
        received = int((info or {}).get('received_timestamp') or 0)
        arrival = received + offset if received > 0 else self._now_ns()
        if kind in (DETECTIONS, _GT):
            if kind == DETECTIONS:
                self.frames_in += 1
            if isinstance(msg, bytes):
                msg = self._decode_raw(msg, 'ground truth' if kind == _GT else
                                       'detection array')
                if msg is None:
                    return None
        stamp = self._stamp_of(msg)
        if kind == DETECTIONS:
            self.health.detection_stamp(stamp)
        return arrival, kind, stamp, msg

    def _decode_raw(self, raw: bytes, what: str = 'detection array'
                    ) -> conv.CdrDetections | Detection2DArray | None:
        """Fast CDR decoder; rclpy's for anything it does not handle (big endian...)."""
        try:
            return conv.parse_detection_cdr(raw)
        except Exception:  # noqa: BLE001 - any surprise: let rclpy decide
            pass
        try:
            return deserialize_message(raw, Detection2DArray)
        except Exception as err:  # noqa: BLE001 - undecodable: warn, drop, keep running
            self.bad_messages += 1
            self.warn('bad_detections', f'undecodable {what} ({len(raw)} bytes): '
                      f'{type(err).__name__}: {err}')
            return None

    @staticmethod
    def _stamp_of(msg: Any) -> int:
        return (msg.stamp_ns if isinstance(msg, conv.CdrDetections)
                else conv.stamp_to_ns(msg.header.stamp))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Remember the latest image size (a size of 0 is a bad message, warned about)."""
        w, h = int(msg.width), int(msg.height)
        if w > 0 and h > 0:
            self._info_size = (w, h)
        else:
            self._bad_side('camera_info', f'camera_info without an image size ({w}x{h})')

    def _image_size(self) -> tuple[int, int, bool]:
        """(width, height, from camera_info): the settings, else the latest CameraInfo."""
        cfg = self.settings.node
        if cfg.image_width > 0 and cfg.image_height > 0:
            return cfg.image_width, cfg.image_height, False
        info = getattr(self, '_info_size', None)
        return (info[0], info[1], True) if info else (0, 0, False)

    def _bad_side(self, side: str, text: str) -> None:
        self.bad_messages += 1
        self.warn(f'bad_{side}', text)

    def _process(self, joined: Joined, *, publish: bool = True) -> None:
        """Track one released detection array; a bad message is warned about and skipped."""
        msg = joined.detections
        frame_idx = self.frames_processed  # as the replay numbers frames
        self.frames_processed += 1
        try:
            width, height, from_info = self._image_size()
            mask, image, embed = conv.decode_sides(
                joined.sides, joined.stamp_ns, image_width=width,
                image_height=height, descriptor=self.descriptor,
                on_bad=self._bad_side)
            convert = (conv.cdr_to_frame if isinstance(msg, conv.CdrDetections)
                       else conv.detections_to_frame)
            frame = convert(
                msg, registry=self.registry, frame_idx=frame_idx, mask=mask,
                image=image, width=width, height=height, embed=embed)
            if from_info and frame.size_source == 'setting':
                frame = replace(frame, size_source='camera_info')
            gt = joined.sides.get(_GT)
            if gt is not None and self._stamp_of(gt) == joined.stamp_ns:  # as the replay
                det_boxes = (msg.boxes if isinstance(msg, conv.CdrDetections)
                             else conv.detection_arrays(msg)[0])
                frame = conv.label_frame(frame, det_boxes, *conv.gt_labels(gt))
            assert self.pipeline is not None
            if health.has_non_finite(frame):    # survived, but a bad message all the same
                self.bad_messages += 1
            snap = self.pipeline.process(frame)
        except Exception as err:  # noqa: BLE001 - one bad message must not stop the node
            self.bad_messages += 1
            self.warn('bad_detections', f'skipped detection array (stamp {joined.stamp_ns}): '
                      f'{type(err).__name__}: {err}')
            return
        if publish:
            out = (conv.encode_tracks_cdr(snap, msg) if isinstance(msg, conv.CdrDetections)
                   else conv.snapshot_to_tracks(snap, msg, self._factory))
            try:
                self._pub.publish(out)
            except RCLError:
                if self.context.ok():
                    raise  # a real publishing problem; after shutdown there is nobody to tell

    def _check_clock(self) -> None:
        """Steady-timer check for ``use_sim_time`` without a ``/clock`` (see clock_watch)."""
        text = self.clock_watch.check(time.monotonic(), detections_seen=self.frames_in > 0,
                                      clock_seen=self._now_ns() > 0)
        if text is not None:
            self.warn('clock', text)
            period = self.settings.node.diagnostics_period_s
            if time.monotonic() - self._clock_diag_t >= period:  # the regular one is ROS-timed
                self._clock_diag_t = time.monotonic()
                self._publish_diagnostics()

    # ------------------------------------------------------------------------- diagnostics
    def diagnostic_values(self) -> dict[str, Any]:
        """Everything /diagnostics reports, as a flat mapping."""
        now = time.monotonic()
        last_t, last_n = self._diag_last
        self._diag_last = (now, self.frames_in)
        lat = np.asarray(self._latencies, np.float64) * 1e3
        self._latencies.clear()
        stats = self.pipeline.stats() if self.pipeline is not None else {}
        join = self.joiner.stats()
        values: dict[str, Any] = {
            'session_id': stats.get('session_id', ''),
            'input_rate_hz': round((self.frames_in - last_n) / max(now - last_t, 1e-9), 2),
            'frames': self.frames_in,
            'callback_latency_median_ms': round(float(np.median(lat)), 3) if lat.size else 0.0,
            'callback_latency_p99_ms': (round(float(np.percentile(lat, 99)), 3)
                                        if lat.size else 0.0),
            'est_id_switches': stats.get('est_id_switches', 0),
            'mask_join_misses': join.get('mask_misses', 0),
            'image_join_misses': join.get('image_misses', 0),
            'join_waiting': join['waiting'],
            'bad_messages': self.bad_messages,
            'warnings': self.warnings,
            'resets': stats.get('resets', 0),
            'logging_enabled': stats.get('logging_enabled', False),
            'free_disk_mb': self._free_disk_mb(),
            'logging_off_reason': stats.get('logging_off_reason', ''),
            'max_detections_dropped': stats.get('max_detections_dropped', 0),
            'max_detections_frames': stats.get('max_detections_frames', 0),
            'out_of_range_dropped': stats.get('out_of_range_dropped', 0),
            'sim_clock': (self.clock_watch.state() if self._sim_time else 'off'),
            'sim_clock_waited_s': round(self.clock_watch.waited_s, 1),
        }
        self.health.skipped(self.frames_in, self.frames_processed, join['waiting'])
        values.update(self.health.values())
        dropped = sum(int(stats.get(f'writer_{k}', 0) or 0) for k in (
            'dropped_queue_full', 'dropped_closed', 'dropped_disk', 'invalid', 'failed'))
        values.update({
            'writer_queue': stats.get('writer_pending', 0),
            'samples_written': stats.get('writer_written', 0),
            'samples_dropped': dropped,
            'writer_stopped_reason': stats.get('writer_stopped_reason') or '',
            'writer_last_error': stats.get('writer_last_error') or '',
        })
        # label accuracy against gt_topic (only when given), last
        values.update({k: v for k, v in stats.items() if k.startswith('gt_label_')})
        return values

    def _free_disk_mb(self) -> float:
        log_dir = self.settings.recorder.log_dir
        if not log_dir:
            return -1.0
        path = os.path.expanduser(log_dir)
        while path and not os.path.exists(path):
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        try:
            return round(shutil.disk_usage(path or '.').free / 2**20, 1)
        except OSError:
            return -1.0

    def _publish_diagnostics(self) -> None:
        values = self.diagnostic_values()
        level, problems = DiagnosticStatus.OK, []
        for key in ('samples_dropped', 'mask_join_misses', 'image_join_misses', 'bad_messages',
                    *health.WARN_ON_INCREASE):
            if values.get(key, 0) > self._diag_prev.get(key, 0):
                problems.append(key.replace('_', ' '))
            self._diag_prev[key] = values.get(key, 0)
        low = self.settings.recorder.log_min_free_mb
        if self.settings.recorder.log_dir and 0 <= values['free_disk_mb'] < low:
            problems.append('disk almost full')
        if values['logging_off_reason']:
            problems.append(f'logging off: {values["logging_off_reason"]}')
        if self.clock_watch.waiting:
            problems.append('use_sim_time: no /clock received')
        elif self.clock_watch.waited_s > 0 and not self._diag_prev.get('clock_reported'):
            problems.append(f'/clock arrived after {self.clock_watch.waited_s:.0f} s')
            self._diag_prev['clock_reported'] = 1
        if problems:
            level = DiagnosticStatus.WARN
        if values['writer_stopped_reason'] or values['writer_last_error']:
            reason = values['writer_stopped_reason'] or values['writer_last_error']
            problems.append(f'writer: {reason}')
            level = DiagnosticStatus.ERROR
        status = DiagnosticStatus(
            level=level, name=f'{self.get_fully_qualified_name()}: tracking',
            hardware_id='assoc_logger_ros',
            message='; '.join(problems) or 'ok',
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        self._diag_pub.publish(msg)

    # ------------------------------------------------------------------------- shutdown
    def close(self, *, publish: bool = False) -> None:
        """Process what still waits for a mask, then flush and stop the writer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        released: list[Joined] = []
        joiner = getattr(self, 'joiner', None)   # None: the start failed before it existed
        if joiner is not None and self.context.ok():  # received messages are still tracked
            try:
                released = self._feed(self._take_received(self._clock_offset_ns()))
            except RCLError:
                pass
        for joined in released + (joiner.flush() if joiner is not None else []):
            self._process(joined, publish=publish)
        if self.pipeline is not None:
            self.pipeline.close()
            stats = self.pipeline.stats()
            self.get_logger().info(
                f'closed: {stats.get("frames", 0)} frames, '
                f'{stats.get("writer_written", "n/a")} samples written, '
                f'session {stats.get("session_id")}')

    def destroy_node(self) -> None:
        """Flush the writer before the node goes away."""
        self.close()
        super().destroy_node()


class _StopSignals:
    """SIGINT/SIGTERM handlers that only ask the spin loop to stop.

    rclpy's own handlers shut the context down inside the signal, so whatever runs next (the
    callback being executed, the next wait) fails with RCLError and the last tracks cannot be
    published. These handlers set a flag instead; the node then flushes with a valid context.

    Every signal within ``grace_s`` of the first is the same shutdown request: a Ctrl-C in a
    terminal running ``ros2 launch`` reaches the node twice (the terminal's process group, then
    launch's forward), and neither may cut the flush short. A SIGINT after the grace period is
    a deliberate second Ctrl-C and aborts the flush (KeyboardInterrupt); SIGTERM is ignored
    once stopping (launch escalates to SIGKILL if the flush hangs).
    """

    def __init__(self, grace_s: float = STOP_GRACE_S) -> None:
        self.received: str | None = None
        self.repeats = 0
        self.grace_s = grace_s
        self._first_t = 0.0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: Any) -> None:
        now = time.monotonic()
        if self.received is None:
            self.received = signal.Signals(signum).name
            self._first_t = now
            return
        self.repeats += 1
        if signum == signal.SIGINT and now - self._first_t > self.grace_s:
            sys.stderr.write('[assoc_tracker] SIGINT again: aborting the flush; samples still '
                             'queued are lost\n')
            raise KeyboardInterrupt


def spin_until_stopped(node: Node, stop: _StopSignals) -> None:
    """Spin ``node`` until a stop signal or an external shutdown of its context.

    A steady 0.1 s timer wakes the wait so the Python-level signal handler runs promptly even
    under ``use_sim_time`` without a ``/clock``.
    """
    from rclpy.clock import Clock, ClockType
    from rclpy.executors import SingleThreadedExecutor

    context = node.context
    executor = SingleThreadedExecutor(context=context)
    wake = node.create_timer(0.1, lambda: None, clock=Clock(clock_type=ClockType.STEADY_TIME))
    executor.add_node(node)
    try:
        while stop.received is None and context.ok():
            executor.spin_once()
    except ExternalShutdownException:
        pass
    except RCLError:
        if context.ok():
            raise
    finally:
        executor.remove_node(node)
        node.destroy_timer(wake)
        executor.shutdown(timeout_sec=0)


def main(args: list[str] | None = None, node_class: type[TrackerNode] | None = None,
         early_signals: list[int] | None = None) -> int:
    """Console script ``tracker_node``: spin until Ctrl-C / SIGTERM / shutdown, flush, exit 0.

    ``early_signals``: stop signals :mod:`.entry` recorded while the modules were importing.
    """
    stop = _StopSignals()
    stop.install()
    for signum in early_signals or ():
        stop._handle(signum, None)
    if stop.received:
        print(f'[assoc_tracker] {stop.received} during start-up: exiting', file=sys.stderr)
        stop.restore()
        return 0
    try:
        with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO) as init:
            try:
                node = (node_class or TrackerNode)(context=init.context)
            except (config.ConfigError, ValueError, RecorderError) as err:
                print(f'ERROR: {err}', file=sys.stderr)
                return 2
            try:
                spin_until_stopped(node, stop)
                if stop.received:
                    node.get_logger().info(f'{stop.received}: flushing and stopping')
            finally:
                node.close(publish=init.context.ok())
                if stop.repeats:
                    node.get_logger().info(
                        f'{stop.repeats} repeated stop signal(s) within {stop.grace_s:g} s '
                        'taken as the same request')
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stop.restore()
    return 0


if __name__ == '__main__':
    sys.exit(main())
