"""One parameter schema for ROS parameters, environment variables, the YAML file and CLI flags.

Every setting is a field of one of the frozen dataclasses below; its metadata carries the
description, the accepted range and, for the settings the seed tool already had, the environment
variable users know. Defaults live here and nowhere else: ``config/collect.yaml``, the README
table, the node's parameter declarations and the CLI flags are all derived from (and tested
against) this.

Precedence when resolving a value: explicit (CLI flag / ROS parameter override) > YAML >
environment variable > default.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass, field
import math
import os
from pathlib import Path
from typing import Any

_TRUE = frozenset({'1', 'true', 'yes', 'on'})
_FALSE = frozenset({'0', 'false', 'no', 'off', ''})


class ConfigError(ValueError):
    """A setting had a value outside its type or range; the message names the setting."""


def _param(default: Any, description: str, *, env: str | None = None,
           lo: float | None = None, hi: float | None = None,
           choices: tuple[str, ...] | None = None, runtime: bool = False,
           unit: str = '') -> Any:
    return field(default=default, metadata={
        'description': description, 'env': env, 'min': lo, 'max': hi,
        'choices': choices, 'runtime': runtime, 'unit': unit})


@dataclass(frozen=True)
class ParamSpec:
    """Flat view of one setting, as the adapters (ROS, YAML, CLI, README) need it."""

    name: str
    group: str
    type: type
    default: Any
    description: str
    env: str | None
    min: float | None
    max: float | None
    choices: tuple[str, ...] | None
    runtime: bool
    unit: str

    @property
    def env_name(self) -> str:
        """Environment variable: the seed's name where it had one, else ``ASSOC_<NAME>``."""
        return self.env or f'ASSOC_{self.name.upper()}'

    @property
    def flag(self) -> str:
        """CLI flag, e.g. ``--track-thresh``."""
        return '--' + self.name.replace('_', '-')

    def range_text(self) -> str:
        """Accepted values in words, used in error messages and docs."""
        if self.choices:
            return 'one of ' + ', '.join(repr(c) for c in self.choices)
        if self.type is bool:
            return 'a boolean (1/0, true/false, yes/no, on/off)'
        if self.min is not None or self.max is not None:
            lo = '-inf' if self.min is None else _fmt(self.min)
            hi = 'inf' if self.max is None else _fmt(self.max)
            return f'{self.type.__name__} in [{lo}, {hi}]'
        return f'any {self.type.__name__}'

    def coerce(self, raw: Any, source: str) -> Any:
        """Convert ``raw`` (str from env/CLI, or a YAML/ROS value) and check the range."""
        where = f'{source} {self.env_name if source == "environment variable" else self.name}'
        try:
            value = _convert(self.type, raw)
        except (TypeError, ValueError):
            raise ConfigError(
                f'{where}={raw!r} is invalid: expected {self.range_text()}') from None
        if self.type is float and not math.isfinite(value):
            raise ConfigError(f'{where}={raw!r} is invalid: expected a finite number')
        if self.choices and value not in self.choices:
            raise ConfigError(f'{where}={raw!r} is invalid: expected {self.range_text()}')
        if self.type in (int, float):
            if (self.min is not None and value < self.min) or (
                    self.max is not None and value > self.max):
                raise ConfigError(
                    f'{where}={raw!r} is out of range: expected {self.range_text()}')
        return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _convert(typ: type, raw: Any) -> Any:
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int):
            if raw in (0, 1):
                return bool(raw)
            raise ValueError(raw)
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(raw)
    if typ is int:
        if isinstance(raw, bool):
            raise TypeError(raw)
        if isinstance(raw, float):
            if not raw.is_integer():
                raise ValueError(raw)
            return int(raw)
        return int(str(raw).strip(), 0) if isinstance(raw, str) else int(raw)
    if typ is float:
        if isinstance(raw, bool):
            raise TypeError(raw)
        return float(raw)
    if typ is str:
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise TypeError(raw)
        return str(raw)
    raise TypeError(typ)


class _Validated:
    """Mixin: check every field against its metadata once, at construction."""

    def __post_init__(self) -> None:
        for spec in specs_of(type(self)):
            spec.coerce(getattr(self, spec.name), 'setting')


@dataclass(frozen=True)
class TrackerConfig(_Validated):
    """ByteTrack thresholds and time handling; reference values for MOT17 are the defaults."""

    confidence_threshold: float = _param(
        0.1, 'Detections scoring below this never reach the tracker (ByteTrack low-score floor).',
        env='CONFIDENCE_THRESHOLD', lo=0.0, hi=1.0)
    track_thresh: float = _param(
        0.6, 'High/low score split; new tracks start at track_thresh + 0.1.', lo=0.0, hi=1.0)
    match_thresh: float = _param(
        0.9, 'Stage-1 assignment cost limit (1 - IoU fused with score).', lo=0.0, hi=1.0)
    unconfirmed_match_thresh: float = _param(
        0.8, 'Stage-3 cost limit: unconfirmed (one-box) tracks vs the high-score detections '
        'left over, 1 - IoU fused with score (the reference: 0.7).', lo=0.0, hi=1.0)
    duplicate_iou_dist: float = _param(
        0.15, 'A tracked and a lost track whose boxes are closer than this IoU distance '
        '(1 - IoU) are duplicates: the younger one is dropped (the reference: 0.15; 0: never).',
        lo=0.0, hi=1.0)
    track_buffer_s: float = _param(
        1.0, 'How long a lost track is kept for re-identification.',
        lo=0.0, hi=3600.0, unit='s')
    frame_rate: float = _param(
        30.0, 'Nominal input rate: frame-mode time step and feature velocity unit.',
        lo=0.1, hi=1000.0, unit='Hz')
    frame_mode: bool = _param(
        False, 'Use frame counts instead of stamps (reproduces the reference exactly).')
    class_aware: bool = _param(
        True, 'A detection only matches tracks of its own class.')
    min_box_area: float = _param(
        0.0, 'Detections with a smaller box area are ignored.', lo=0.0, hi=1e9, unit='px^2')
    iou_pixel_offset: float = _param(
        1.0, 'Added to box widths/heights in IoU (1: the reference inclusive-pixel convention; '
        '0: geometric IoU, for sub-pixel or normalised boxes).', lo=0.0, hi=1.0, unit='px')
    seg_enable: bool = _param(
        False, 'Use instance masks for per-detection visibility (else box-overlap estimate).',
        env='SEG_ENABLE')
    diag: bool = _param(
        True, 'Estimate ID switches without ground truth (est_id_switches).', env='DIAG')
    max_detections: int = _param(
        1000, 'Most detections tracked per frame; beyond it the highest-scoring are kept and '
        'the rest are counted (max_detections_dropped in /diagnostics) with a throttled '
        'warning. Bounds the time and memory of one frame (and of its sample).',
        lo=1, hi=1_000_000)
    transformer_assoc_enable: bool = _param(
        False, 'Blend the learned association model into the stage-1 cost (needs '
        'transformer_assoc_weights).', env='TRANSFORMER_ASSOC_ENABLE')
    transformer_assoc_weights: str = _param(
        '', 'Learned association model: the folder `train` wrote (model.onnx + model.json), '
        'or the .onnx file with its .json card beside it.', env='TRANSFORMER_ASSOC_WEIGHTS')
    transformer_assoc_weight: float = _param(
        0.25, 'Share of the learned cost in the stage-1 cost: (1 - w) * classical + w * '
        '(1 - model probability); 0.25 was chosen on MOT17 first halves leaving one sequence '
        'out (docs/learned_assoc.md).', env='TRANSFORMER_ASSOC_WEIGHT', lo=0.0, hi=1.0)
    output_box: str = _param(
        'kalman', 'Box published for a track: its Kalman state after the update (kalman, the '
        'reference) or the raw box of the detection it matched in this update (detection).',
        choices=('kalman', 'detection'))
    track_buffer_min_frames: int = _param(
        30, 'Lost tracks are kept at least this many nominal frames even when track_buffer_s '
        'is fewer (low frame rates); 0: track_buffer_s alone decides.', lo=0, hi=100000)
    oc_reupdate: bool = _param(
        False, 'OC-SORT observation-centric re-update: a re-found lost track replays its '
        'occlusion gap along a straight virtual path from its last detection to the new one.')
    nsa_kalman: bool = _param(
        False, 'NSA Kalman: scale the measurement noise by (1 - detection score).')
    nsa_strength: float = _param(
        1.0, 'With nsa_kalman: the measurement noise is scaled by (1 - nsa_strength * '
        'detection score); 1 is NSA Kalman as published, smaller values soften it.',
        lo=0.0, hi=1.0)
    height_iou: bool = _param(
        True, 'Hybrid-SORT height-modulated IoU in stage 1 (IoU times the overlap of the '
        'vertical extents).')
    output_lost_frames: int = _param(
        1, 'Also publish lost tracks for this many nominal frames after their last match, at '
        'their Kalman prediction (output_det_index -1); 0: only tracks matched in this update.',
        lo=0, hi=1000)
    output_lost_min_hits: int = _param(
        10, 'With output_lost_frames: publish a lost track only if it was matched in at least '
        'this many updates in a row before it was lost (an established track, not a short '
        'false one); 0: any.', lo=0, hi=100000)
    output_lost_inside: bool = _param(
        True, 'With output_lost_frames: publish a lost track only while its prediction lies '
        'wholly inside the image (not someone leaving it).')
    cmc: bool = _param(
        True, 'Camera-motion compensation from the boxes alone: the image shift on which the '
        'tracked tracks and their nearest detections agree is added to every tracked and lost '
        'prediction before association, half of it to their velocity (moving cameras).')
    cmc_scale: bool = _param(
        False, 'With cmc: also estimate a global zoom (camera walking forward or zooming): '
        'when the pairs agree on a scale about the image, every tracked and lost prediction '
        'is scaled with it (position and height).')
    cmc_unconfirmed: bool = _param(
        False, 'With cmc: also move the unconfirmed (one-detection) tracks by the camera '
        'motion (the reference never predicts them; stage 3 compares their last box).')
    ocm_weight: float = _param(
        0.0, 'OC-SORT velocity-direction consistency in stage 1: the cost of an overlapping '
        'pair drops by this times score times the agreement of the recent track direction with '
        'the direction to the detection (rises when it lies behind); 0: off.', lo=0.0, hi=1.0)
    ocr_thresh: float = _param(
        0.0, 'OC-SORT observation-centric recovery (OCR): after stage 2, the pool tracks still '
        'unmatched are matched once more by the IoU of their LAST OBSERVED box (not the '
        'prediction) with the high-score detections left over, accepting IoU above this; '
        '0: off (OC-SORT uses 0.3).', lo=0.0, hi=1.0)
    kalman_state: str = _param(
        'xyah', 'Kalman state: xyah (centre, aspect ratio w/h, height: the reference) or xywh '
        '(BoT-SORT: centre, width, height, each noise proportional to the width or height).',
        choices=('xyah', 'xywh'))
    crowd_match_thresh: float = _param(
        0.0, 'Density-aware stage 1: a track whose prediction overlaps the prediction of another '
        'tracked or lost track matches only below this cost (tighter than match_thresh); 0: off.',
        lo=0.0, hi=1.0)
    lost_velocity_decay: float = _param(
        1.0, 'While a track is lost its centre velocity is multiplied by this per nominal '
        'frame before each prediction, so a long occlusion drifts less; 1: constant velocity '
        '(the reference).', lo=0.0, hi=1.0)
    score_cost_weight: float = _param(
        0.0, 'Hybrid-SORT-like score cue: stage-1 cost plus this times |track score - '
        'detection score| (track score: its last matched detection).', lo=0.0, hi=1.0)


@dataclass(frozen=True)
class MemoryConfig(_Validated):
    """Appearance memory: per-track EMA embedding plus quality-ranked prototypes."""

    appear_memory_enable: bool = _param(
        True, 'Keep per-track appearance prototypes and use them in the association cost.',
        env='APPEAR_MEMORY_ENABLE')
    appear_thresh: float = _param(
        0.25, 'Cosine distance above which appearance never supports a match.', lo=0.0, hi=2.0)
    proximity_thresh: float = _param(
        0.5, 'IoU distance above which appearance is ignored for tracked tracks.',
        lo=0.0, hi=1.0)
    reid_thresh: float = _param(
        0.15, 'Cosine distance under which a lost track is re-identified without overlap.',
        lo=0.0, hi=2.0)
    appear_veto_thresh: float = _param(
        0.5, 'Cosine distance above which appearance forbids a match with weak overlap (IoU '
        'distance above proximity_thresh); 2 disables.', lo=0.0, hi=2.0)
    memory_prototypes: int = _param(
        5, 'Prototypes kept per track (k).', lo=0, hi=64)
    memory_ema: float = _param(
        0.9, 'EMA momentum of the track embedding.', lo=0.0, hi=1.0)
    memory_min_visibility: float = _param(
        0.6, 'Minimum visibility for a detection to update the memory.', lo=0.0, hi=1.0)
    memory_min_confidence: float = _param(
        0.6, 'Minimum score for a detection to update the memory.', lo=0.0, hi=1.0)
    memory_min_box_side: float = _param(
        16.0, 'Minimum box side for a detection to update the memory.', lo=0.0, hi=1e5,
        unit='px')
    memory_max_angle_deg: float = _param(
        30.0, 'Largest rotation of the EMA embedding in one update.', lo=0.0, hi=180.0,
        unit='deg')
    memory_freeze_frames: int = _param(
        5, 'Frames the memory stays frozen after a suspected switch.', lo=0, hi=1000)


@dataclass(frozen=True)
class RecorderConfig(_Validated):
    """Sample logging: where, how wide, and the limits that keep it off the robot's back."""

    log_dir: str = _param(
        '~/.ros/assoc_logs', 'Directory for sample_XXXXXXX.npz and manifest.jsonl; empty '
        'disables logging.', env='TRANSFORMER_LOG_DIR')
    log_embed_dim: int = _param(
        256, 'Embedding columns kept per sample (zero-padded; wider ones are truncated '
        'and flagged).', env='TRANSFORMER_LOG_EMBED_DIM', lo=0, hi=8192)
    log_enabled: bool = _param(
        True, 'Write samples; set false at runtime to pause, true to resume.', runtime=True)
    log_queue_size: int = _param(
        64, 'Samples waiting for the disk before new ones are dropped (counted).',
        lo=1, hi=100000)
    log_max_bytes: int = _param(
        0, 'Stop writing once the directory holds this many sample bytes (0: no limit).',
        lo=0, hi=2**62, unit='B')
    log_min_free_mb: float = _param(
        500.0, 'Stop writing when the disk has less free space than this.', lo=0.0, hi=1e9,
        unit='MiB')
    log_compress: bool = _param(
        True, 'Compress samples (np.savez_compressed).')
    session_id: str = _param(
        '', 'Session label stored in every sample (empty: a time-based id).')
    log_fsync: bool = _param(
        True, 'fsync each sample file before renaming it into place (survives power loss; '
        'false trades that for speed on slow media, a process crash is safe either way).')
    log_wait_when_full: bool = _param(
        False, 'Make submit wait for room in the queue instead of dropping the sample (offline '
        'replay: reproducible output; never for live robots, it would stall tracking).')
    log_sync_period_s: float = _param(
        1.0, 'Longest time between fsyncs of the manifest and directory (0: after every '
        'sample); samples written since are re-added from their files after a power loss.',
        lo=0.0, hi=3600.0, unit='s')
    log_writer: str = _param(
        'auto', 'Where samples are built and written: thread (beside the tracker, sharing its '
        'interpreter lock), process (a child process, so tracking keeps its CPU), or auto '
        '(process on 2+ CPUs unless log_wait_when_full, else thread).',
        choices=('auto', 'thread', 'process'))
    log_format: str = _param(
        'npz', 'On-disk layout: npz (one sample_XXXXXXX.npz per frame + manifest.jsonl) or shards '
        '(rolling WebDataset tar shards, each indexed; docs/shards.md).',
        choices=('npz', 'shards'))
    log_shard_mb: float = _param(
        256.0, 'With log_format shards: start a new shard when the open one would pass this '
        'size.', lo=0.001, hi=1e6, unit='MiB')
    log_shard_max_s: float = _param(
        0.0, 'With log_format shards: also start a new shard when the open one spans this much '
        'sample time (0: size only).', lo=0.0, hi=1e7, unit='s')
    log_shard_index: str = _param(
        'shard', 'With log_format shards: (re)write the Parquet index (index/, atomic) each '
        'time a shard is finished, only at close, or off (run the index command later). '
        'Needs pyarrow; without it shards keep only their own indexes.',
        choices=('shard', 'close', 'off'))
    log_disk_policy: str = _param(
        'stop', 'At log_max_bytes or log_min_free_mb: stop writing, or delete_oldest (the '
        'oldest complete session, or shard with log_format shards; never the one being '
        'written) and go on, like rosbag2 delete_oldest_files.',
        choices=('stop', 'delete_oldest'))


@dataclass(frozen=True)
class NodeConfig(_Validated):
    """ROS interface: topics, QoS, mask joining, appearance source, diagnostics."""

    detections_topic: str = _param('detections', 'Input vision_msgs/Detection2DArray topic.')
    masks_topic: str = _param('masks', 'Input instance label image (with seg_enable).')
    image_topic: str = _param('image', 'Input image for the built-in appearance descriptor.')
    tracks_topic: str = _param('tracks', 'Output Detection2DArray with track IDs.')
    gt_topic: str = _param(
        '', 'Optional ground-truth Detection2DArray topic (Detection2D.id = identity, same '
        'stamps as the detections); fills det_gt_ids of the samples by box IoU >= 0.5 as the '
        'bag replay does. Empty: off.')
    mask_tolerance_s: float = _param(
        0.05, 'Largest stamp difference for joining a mask or image to a detection array; '
        'also the longest a detection array waits for one.', lo=0.0, hi=10.0, unit='s')
    embedding_source: str = _param(
        'none', 'Appearance descriptor: none, color_hist from the image topic, or plugin '
        '(embedding_plugin, also fed the image topic).',
        choices=('none', 'color_hist', 'plugin'))
    embedding_plugin: str = _param(
        '', 'ReID model for embedding_source=plugin: module:callable returning an object '
        'with embed(image, boxes, mask) -> (N, E).')
    image_width: int = _param(
        0, 'Image width used when no mask or image is joined (0: the '
        '/camera_info of a replayed bag, else a fixed 1920x1080, said once and recorded as '
        'size_source).',
        lo=0, hi=100000, unit='px')
    image_height: int = _param(
        0, 'Image height used when no mask or image is joined (0: the '
        '/camera_info of a replayed bag, else a fixed 1920x1080, said once and recorded as '
        'size_source).',
        lo=0, hi=100000, unit='px')
    camera_info_topic: str = _param(
        'camera_info', 'sensor_msgs/CameraInfo topic the live node reads the image size from '
        '(its latest width x height, recorded as size_source camera_info) when no mask or '
        'image is joined and image_width/image_height are 0. Empty: off.')
    join_queue_size: int = _param(
        30, 'Messages each stamp-join buffer holds before the oldest is released.',
        lo=1, hi=10000)
    warn_throttle_s: float = _param(
        5.0, 'Shortest interval between repeated warnings of one kind.', lo=0.0, hi=3600.0,
        unit='s')
    fast_cdr: bool = _param(
        True, 'Read detections from raw CDR bytes with numpy and write tracks the same way '
        '(several times faster than rclpy message objects; unusual messages fall back).')
    qos_reliability: str = _param(
        'reliable', 'Input QoS reliability (best_effort suits lossy live sensors).',
        choices=('reliable', 'best_effort'))
    qos_depth: int = _param(20, 'Input and output queue depth.', lo=1, hi=10000)
    diagnostics_period_s: float = _param(
        1.0, 'Period of /diagnostics messages.', lo=0.05, hi=3600.0, unit='s')


GROUPS: dict[str, type] = {
    'tracker': TrackerConfig,
    'memory': MemoryConfig,
    'recorder': RecorderConfig,
    'node': NodeConfig,
}

_TYPES = {'bool': bool, 'int': int, 'float': float, 'str': str}


def specs_of(cls: type) -> list[ParamSpec]:
    """The flat specs of one config dataclass, in declaration order."""
    group = next((g for g, c in GROUPS.items() if c is cls), cls.__name__)
    out = []
    for f in dataclasses.fields(cls):
        typ = f.type if isinstance(f.type, type) else _TYPES[str(f.type)]
        md = f.metadata
        out.append(ParamSpec(f.name, group, typ, f.default, md['description'], md['env'],
                             md['min'], md['max'], md['choices'], md['runtime'], md['unit']))
    return out


def all_specs() -> list[ParamSpec]:
    """Every setting of every group, in README order."""
    return [s for cls in GROUPS.values() for s in specs_of(cls)]


def spec(name: str) -> ParamSpec:
    """Look up one setting by its parameter name."""
    for s in all_specs():
        if s.name == name:
            return s
    raise KeyError(name)


@dataclass(frozen=True)
class Settings:
    """All resolved settings, one config object per group."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    recorder: RecorderConfig = field(default_factory=RecorderConfig)
    node: NodeConfig = field(default_factory=NodeConfig)

    def as_dict(self) -> dict[str, Any]:
        """Flat name -> value mapping (the YAML / ROS parameter view)."""
        out: dict[str, Any] = {}
        for group in GROUPS:
            out.update(dataclasses.asdict(getattr(self, group)))
        return out

    def replace(self, **values: Any) -> Settings:
        """A copy with some flat settings changed (validated)."""
        return build_settings({**self.as_dict(), **values})


def build_settings(values: Mapping[str, Any]) -> Settings:
    """Settings from a flat, already-typed mapping; unknown names are an error."""
    known = {s.name for s in all_specs()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f'unknown setting(s): {", ".join(unknown)}')
    parts = {}
    for group, cls in GROUPS.items():
        names = {f.name for f in dataclasses.fields(cls)}
        parts[group] = cls(**{k: v for k, v in values.items() if k in names})
    return Settings(**parts)


def resolve(explicit: Mapping[str, Any] | None = None,
            yaml_values: Mapping[str, Any] | None = None,
            env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting: explicit > YAML > environment variable > default.

    ``env`` defaults to ``os.environ``; pass ``{}`` to ignore the environment.
    """
    env = os.environ if env is None else env
    explicit = dict(explicit or {})
    yaml_values = dict(yaml_values or {})
    known = {s.name for s in all_specs()}
    for source, mapping in (('explicit', explicit), ('YAML', yaml_values)):
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ConfigError(f'unknown {source} setting(s): {", ".join(unknown)}')
    values: dict[str, Any] = {}
    for s in all_specs():
        if s.name in explicit:
            values[s.name] = s.coerce(explicit[s.name], 'parameter')
        elif s.name in yaml_values:
            values[s.name] = s.coerce(yaml_values[s.name], 'YAML parameter')
        elif s.env_name in env:
            values[s.name] = s.coerce(env[s.env_name], 'environment variable')
        else:
            values[s.name] = s.default
    return build_settings(values)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Flat parameters from a YAML file: plain mapping or ROS ``node: ros__parameters`` form."""
    import yaml  # local: only the YAML route needs it

    with open(path, encoding='utf-8') as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected a mapping at top level')
    for value in data.values():
        if isinstance(value, dict) and 'ros__parameters' in value:
            params = value['ros__parameters'] or {}
            if not isinstance(params, dict):
                raise ConfigError(f'{path}: ros__parameters must be a mapping')
            return dict(params)
    return data
