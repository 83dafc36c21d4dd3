"""Convert ROS messages to and from the core types, by attribute access only.

Nothing here imports rclpy or a message package: the functions read fields by name, so they
work on rclpy messages (live node), rosbags messages (replay) and hand-built test objects alike.
Both adapters call these, so a bag replayed in code and the same bag fed to the node give the
same Frames.

- :func:`detections_to_frame`: ``vision_msgs/Detection2DArray`` -> :class:`Frame`
  (center/size -> xyxy, best hypothesis -> score and class, header stamp -> ``stamp_ns``).
- :func:`decode_label_image`: instance mask ``sensor_msgs/Image`` (mono8, mono16/16UC1,
  32SC1/32SC1 big-endian, 8UC1) -> (H, W) integer label array.
- :func:`decode_color_image`: rgb8, bgr8, rgba8, bgra8, mono8 -> (H, W, 3) uint8 RGB.
- :func:`snapshot_to_tracks`: the tracker's output -> ``tracks`` Detection2DArray, with a
  caller-supplied message factory (so it is testable without rclpy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
import math
import struct
from typing import Any
import zlib

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.frame import Frame, make_frame
from assoc_logger_ros.messages.cdr import (
    CdrError,
    DetectionArrayData,
    decode_detection_array,
    detection_arrays_of,
)
from assoc_logger_ros.tracking.snapshot import AssociationSnapshot

# Name-derived class ids start here, far above any numeric class id a detector emits.
NAMED_CLASS_BASE = 1 << 20


class ClassRegistry:
    """Stable mapping from ``class_id`` strings to the int64 class ids the tracker uses.

    Numeric strings map to their value ('3' -> 3), the empty string to 0, names given in
    ``names`` to their value, and any other name to ``NAMED_CLASS_BASE + crc32(name) % 2**30``.
    The mapping depends on the string alone (not on arrival order), so a node run and a replay
    of the same bag, or two sessions, always agree. ``names_by_id`` remembers what was seen.
    """

    def __init__(self, names: Mapping[str, int] | None = None) -> None:
        self._fixed = dict(names or {})
        self._cache: dict[str, int] = {}
        self.names_by_id: dict[int, str] = {v: k for k, v in self._fixed.items()}

    def id_of(self, name: str) -> int:
        """The class id of ``name`` (cached; a dict lookup after the first call)."""
        cid = self._cache.get(name)
        if cid is None:
            cid = self._compute(name)
            self._cache[name] = cid
            self.names_by_id.setdefault(cid, name)
        return cid

    def _compute(self, name: str) -> int:
        if name in self._fixed:
            return int(self._fixed[name])
        text = name.strip()
        if not text:
            return 0
        try:
            value = int(text)
        except ValueError:
            return NAMED_CLASS_BASE + zlib.crc32(text.encode('utf-8')) % (1 << 30)
        return value if 0 <= value < NAMED_CLASS_BASE else (
            NAMED_CLASS_BASE + zlib.crc32(text.encode('utf-8')) % (1 << 30))


def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` (``sec``, ``nanosec``) -> int nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _best_hypothesis(results: Iterable[Any]) -> tuple[str, float]:
    """(class_id, score) of the best hypothesis; ('', nan) when there is none.

    Best = highest score, the first on ties; a NaN best is replaced by the next hypothesis
    (:func:`.bag_cdr.detection_arrays_of`, used by the replay and the node's raw path,
    applies the same rule).
    """
    best_cls, best_score, first = '', math.nan, True
    for res in results:
        hyp = getattr(res, 'hypothesis', res)  # vision_msgs >= 4 nests it; 3.x does not
        score = float(hyp.score)
        if first or score > best_score or math.isnan(best_score):  # a NaN best is replaced
            best_cls = str(getattr(hyp, 'class_id', getattr(hyp, 'id', '')))
            best_score, first = score, False
    return best_cls, best_score


def detection_arrays(msg: Any) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
    """(N, 4) xyxy boxes, (N,) scores and class strings of a Detection2DArray.

    A detection without hypotheses gets score 1.0 and class ''. Nothing is filtered here:
    :func:`make_frame` drops NaN/inf and empty boxes with a warning.
    """
    dets = msg.detections
    n = len(dets)
    raw = np.empty((n, 5), np.float64)
    classes: list[str] = [''] * n
    for i, det in enumerate(dets):
        bbox = det.bbox
        center = bbox.center
        pos = getattr(center, 'position', center)  # vision_msgs >= 4: Pose2D.position
        cls, score = _best_hypothesis(det.results)
        if not det.results:
            score = 1.0
        raw[i, 0] = pos.x
        raw[i, 1] = pos.y
        raw[i, 2] = bbox.size_x
        raw[i, 3] = bbox.size_y
        raw[i, 4] = score
        classes[i] = cls
    half_w, half_h = raw[:, 2] * 0.5, raw[:, 3] * 0.5
    boxes = np.stack([raw[:, 0] - half_w, raw[:, 1] - half_h,
                      raw[:, 0] + half_w, raw[:, 1] + half_h], axis=1)
    return boxes, raw[:, 4].copy(), classes


FALLBACK_SIZE = (1920, 1080)  # used (and recorded) when nothing tells the image size


def frame_size_source(*, mask: np.ndarray | None = None, image: np.ndarray | None = None,
                      width: int = 0, height: int = 0) -> tuple[int, int, str]:
    """(width, height, source) for feature normalisation: mask, image, configured, fallback.

    Never the box extent (that would give every frame its own scale); ``fallback`` is the
    fixed :data:`FALLBACK_SIZE`, recorded in the sample metadata as ``size_source``.
    """
    for arr, name in ((mask, 'mask'), (image, 'image')):
        if arr is not None:
            return int(arr.shape[1]), int(arr.shape[0]), name
    if width > 0 and height > 0:
        return width, height, 'setting'
    return FALLBACK_SIZE[0], FALLBACK_SIZE[1], 'fallback'


def frame_size(boxes: NDArray[np.float64], *, mask: np.ndarray | None = None,
               image: np.ndarray | None = None, width: int = 0,
               height: int = 0) -> tuple[int, int]:
    """Image size for feature normalisation (see :func:`frame_size_source`)."""
    w, h, _ = frame_size_source(mask=mask, image=image, width=width, height=height)
    return w, h


Embed = Callable[[NDArray[np.float64]], tuple[np.ndarray, np.ndarray]]


def detections_to_frame(msg: Any, *, registry: ClassRegistry, frame_idx: int = -1,
                        mask: np.ndarray | None = None, image: np.ndarray | None = None,
                        width: int = 0, height: int = 0, embed: Embed | None = None,
                        embeddings: np.ndarray | None = None,
                        embedding_valid: np.ndarray | None = None) -> Frame:
    """A Detection2DArray (plus the decoded mask/image joined to it) -> sanitised Frame.

    ``embed(boxes)`` (message order, NaN rows included) returns ``(embeddings, valid)``;
    alternatively pass ``embeddings``/``embedding_valid`` directly. ``width``/``height`` are
    the configured fallback size (see :func:`frame_size`).
    """
    boxes, scores, classes = detection_arrays(msg)
    return arrays_to_frame(stamp_to_ns(msg.header.stamp), boxes, scores, classes,
                           registry=registry, frame_idx=frame_idx, mask=mask, image=image,
                           width=width, height=height, embed=embed, embeddings=embeddings,
                           embedding_valid=embedding_valid)


def arrays_to_frame(stamp_ns: int, boxes: NDArray[np.float64], scores: NDArray[np.float64],
                    classes: list[str], *, registry: ClassRegistry, frame_idx: int = -1,
                    mask: np.ndarray | None = None, image: np.ndarray | None = None,
                    width: int = 0, height: int = 0, embed: Embed | None = None,
                    embeddings: np.ndarray | None = None,
                    embedding_valid: np.ndarray | None = None) -> Frame:
    """Same as :func:`detections_to_frame` from already extracted arrays (fast CDR path)."""
    class_ids = np.fromiter((registry.id_of(c) for c in classes), np.int64, len(classes))
    w, h, size_source = frame_size_source(mask=mask, image=image, width=width, height=height)
    if embed is not None and embeddings is None and len(classes):
        embeddings, embedding_valid = embed(boxes)
    frame = make_frame(stamp_ns, boxes, scores, width=w, height=h, class_ids=class_ids,
                       frame_idx=frame_idx, embeddings=embeddings,
                       embedding_valid=embedding_valid, mask=mask, class_names=list(classes))
    return replace(frame, size_source=size_source)


# ------------------------------------------------------------------ ground truth (node + replay)
GT_IOU = 0.5


def iou_matrix(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """(len(a), len(b)) IoU of xyxy boxes; 0 where undefined."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(iou, nan=0.0)


def match_gt(det_boxes: NDArray[np.float64], gt_boxes: NDArray[np.float64],
             gt_ids: NDArray[np.int64], iou_min: float = GT_IOU) -> NDArray[np.int64]:
    """Ground-truth identity per detection: one-to-one, max total IoU, IoU >= ``iou_min``."""
    from scipy.optimize import linear_sum_assignment

    n = int(np.asarray(det_boxes).reshape(-1, 4).shape[0])
    out = np.full(n, -1, np.int64)
    if n == 0 or len(gt_ids) == 0:
        return out
    iou = iou_matrix(det_boxes, gt_boxes)
    iou = np.where(iou >= iou_min, iou, 0.0)
    rows, cols = linear_sum_assignment(-iou)
    ok = iou[rows, cols] >= iou_min
    out[rows[ok]] = np.asarray(gt_ids, np.int64)[cols[ok]]
    return out


def gt_labels(msg: Any) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """(G, 4) xyxy boxes and (G,) identities of a ground-truth Detection2DArray.

    The identity is ``Detection2D.id`` as an integer (-1 when it is not one). Accepts a parsed
    raw message (:class:`CdrDetections`), decoded bag bytes (:class:`DetectionArrayData`) or a
    message object.
    """
    if isinstance(msg, CdrDetections):
        boxes, texts = msg.boxes, msg.data.ids.tolist()
    elif isinstance(msg, DetectionArrayData):
        boxes, texts = detection_arrays_of(msg)[0], msg.ids.tolist()
    else:
        boxes, texts = detection_arrays(msg)[0], [str(d.id) for d in msg.detections]
    ids = np.full(len(texts), -1, np.int64)
    for i, text in enumerate(texts):
        try:
            ids[i] = int(text)
        except ValueError:
            pass
    return boxes, ids


def label_frame(frame: Frame, det_boxes: NDArray[np.float64], gt_boxes: NDArray[np.float64],
                gt_ids: NDArray[np.int64]) -> Frame:
    """``frame`` with ``gt_ids``: each kept detection's matched identity (-1: unmatched).

    ``det_boxes`` are the message's boxes in message order (before :func:`make_frame` dropped
    bad ones); the node and the replay both label frames with this function.
    """
    ids = match_gt(det_boxes, gt_boxes, gt_ids)[frame.source_index]
    return replace(frame, gt_ids=ids,
                   gt_boxes=np.asarray(gt_boxes, np.float64).reshape(-1, 4),
                   gt_object_ids=np.asarray(gt_ids, np.int64).reshape(-1))


# encoding -> (numpy dtype without byte order, channels)
_LABEL_ENCODINGS: dict[str, tuple[str, int]] = {
    'mono8': ('u1', 1), '8UC1': ('u1', 1),
    'mono16': ('u2', 1), '16UC1': ('u2', 1),
    '32SC1': ('i4', 1),
}
_COLOR_ENCODINGS: dict[str, tuple[str, int]] = {
    'rgb8': ('u1', 3), 'bgr8': ('u1', 3), 'rgba8': ('u1', 4), 'bgra8': ('u1', 4),
    'mono8': ('u1', 1), '8UC3': ('u1', 3),
}


def _image_bytes(data: Any) -> NDArray[np.uint8]:
    """The ``data`` field as a flat uint8 array without copying where possible."""
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    try:
        return np.frombuffer(memoryview(data), np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def _decode(msg: Any, table: Mapping[str, tuple[str, int]], what: str) -> np.ndarray:
    encoding = str(msg.encoding)
    if encoding not in table:
        raise ValueError(f'{what}: unsupported encoding {encoding!r}; expected one of '
                         f'{", ".join(sorted(table))}')
    kind, channels = table[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype = np.dtype(kind).newbyteorder('>' if msg.is_bigendian else '<')
    row_bytes = width * channels * dtype.itemsize
    if height <= 0 or width <= 0:
        raise ValueError(f'{what}: empty image {width}x{height}')
    if step < row_bytes:
        raise ValueError(f'{what}: step {step} is smaller than width {width} x '
                         f'{channels * dtype.itemsize} bytes per pixel')
    buf = _image_bytes(msg.data)
    if buf.size < step * (height - 1) + row_bytes:
        raise ValueError(f'{what}: {buf.size} data bytes for a {width}x{height} {encoding} '
                         f'image with step {step} (needs {step * height})')
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row_bytes),
                                           strides=(step, 1), writeable=False)
    arr = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    return arr


def decode_label_image(msg: Any, *, use_cv_bridge: bool = True) -> NDArray[np.integer]:
    """Instance mask Image -> (H, W) native-endian integer labels (0 = background).

    Raises ValueError naming the problem for an unsupported encoding or a data size that does
    not match ``height``/``step``.
    """
    if use_cv_bridge and _BRIDGE is not None and str(msg.encoding) in _LABEL_ENCODINGS:
        try:
            arr = np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding='passthrough'))
            if arr.ndim == 2 and arr.shape == (int(msg.height), int(msg.width)):
                return arr.astype(arr.dtype.newbyteorder('='), copy=False)
        except Exception:  # noqa: BLE001 - any bridge failure falls back to numpy
            pass
    arr = _decode(msg, _LABEL_ENCODINGS, 'mask')[:, :, 0]
    return arr.astype(arr.dtype.newbyteorder('='), copy=False)


def decode_color_image(msg: Any) -> NDArray[np.uint8]:
    """Camera Image -> (H, W, 3) uint8 RGB (for the appearance descriptor)."""
    encoding = str(msg.encoding)
    arr = _decode(msg, _COLOR_ENCODINGS, 'image')
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    if encoding.startswith('bgr'):
        return np.ascontiguousarray(arr[:, :, 2::-1])
    return np.ascontiguousarray(arr[:, :, :3]) if arr.shape[2] == 4 else arr


EmbedFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def decode_sides(sides: Mapping[str, Any], stamp_ns: int, *, image_width: int,
                 image_height: int, descriptor: Any,
                 on_bad: Callable[[str, str], None]) -> tuple[Any, Any, EmbedFn | None]:
    """Decode the mask and image joined to one detection array; the node and replay share it.

    A side that cannot be decoded, or a mask whose size differs from the image (or from
    ``image_width`` x ``image_height`` when set), is reported through ``on_bad(side, text)`` and
    left out, so the frame is tracked without it. Returns ``(mask, image, embed)`` where
    ``embed(boxes)`` runs ``descriptor`` on the image when both are there.
    """
    def decode(side: str) -> np.ndarray | None:
        msg = sides.get(side)
        if msg is None:
            return None
        try:
            return decode_label_image(msg) if side == 'mask' else decode_color_image(msg)
        except ValueError as err:
            on_bad(side, f'{err} (stamp {stamp_ns}); tracking without it')
            return None

    mask = decode('mask')
    image = decode('image')
    expected = (image.shape[:2] if image is not None else
                (image_height, image_width) if image_width > 0 and image_height > 0 else None)
    if mask is not None and expected is not None and mask.shape != tuple(expected):
        on_bad('mask', f'mask is {mask.shape[1]}x{mask.shape[0]} but the image is '
               f'{expected[1]}x{expected[0]} (stamp {stamp_ns}); tracking without it')
        mask = None
    embed = None
    if descriptor is not None and image is not None:
        def embed(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return descriptor(image, boxes, mask)
    return mask, image, embed


def _load_bridge() -> Any:
    try:
        from cv_bridge import CvBridge  # optional: ROS 2 cv_bridge where installed
    except Exception:  # noqa: BLE001 - missing or broken install: numpy decoder
        return None
    try:
        return CvBridge()
    except Exception:  # noqa: BLE001
        return None


_BRIDGE = _load_bridge()


class TrackMessageFactory:
    """Message classes :func:`snapshot_to_tracks` builds from (rclpy's or a test's)."""

    def __init__(self, detection_array: Callable[[], Any], detection: Callable[[], Any]) -> None:
        self.detection_array = detection_array
        self.detection = detection


def snapshot_to_tracks(snapshot: AssociationSnapshot, in_msg: Any,
                       factory: TrackMessageFactory) -> Any:
    """The ``tracks`` Detection2DArray for one tracker update.

    Same header as ``in_msg``; one detection per published track (active, confirmed, matched
    this frame) with ``id`` = the track ID as a string and the ``bbox``, ``results`` and
    ``header`` of the input detection it came from. A track whose detection cannot be found
    (should not happen) is skipped rather than published with an invented box.
    """
    out = factory.detection_array()
    out.header = in_msg.header
    in_dets = in_msg.detections
    src_rows = snapshot.det_source_index
    dets = []
    for tid, det_row in zip(snapshot.output_track_ids.tolist(),
                            snapshot.output_det_index.tolist()):
        if det_row < 0 or det_row >= src_rows.shape[0]:
            continue
        src = in_dets[int(src_rows[det_row])]
        det = factory.detection()
        det.header = src.header
        det.bbox = src.bbox
        det.results = src.results
        det.id = str(tid)
        dets.append(det)
    out.detections = dets
    return out


def fill_detection_array(msg: Any, det_factory: Callable[[], Any],
                         hyp_factory: Callable[[], Any], stamp_ns: int,
                         boxes: NDArray[np.float64], scores: NDArray[np.float64],
                         classes: Iterable[str], frame_id: str = 'camera') -> Any:
    """Fill a Detection2DArray from xyxy boxes (tests, benchmarks, synthetic publishers)."""
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.header.frame_id = frame_id
    dets = []
    for (x1, y1, x2, y2), score, cls in zip(np.asarray(boxes, np.float64).tolist(),
                                            np.asarray(scores, np.float64).tolist(), classes):
        det = det_factory()
        det.header = msg.header
        det.bbox.center.position.x = (x1 + x2) / 2.0
        det.bbox.center.position.y = (y1 + y2) / 2.0
        det.bbox.size_x = x2 - x1
        det.bbox.size_y = y2 - y1
        hyp = hyp_factory()
        hyp.hypothesis.class_id = str(cls)
        hyp.hypothesis.score = score
        det.results = [hyp]
        dets.append(det)
    msg.detections = dets
    return msg


_ENCODE = {'mono8': ('u1', 1), 'mono16': ('u2', 1), '16UC1': ('u2', 1), '32SC1': ('i4', 1),
           'rgb8': ('u1', 3), 'bgr8': ('u1', 3)}


def fill_image(msg: Any, stamp_ns: int, array: np.ndarray, encoding: str,
               frame_id: str = 'camera') -> Any:
    """Fill a sensor_msgs/Image from an array (little endian, no row padding)."""
    kind, channels = _ENCODE[encoding]
    arr = np.ascontiguousarray(np.asarray(array).astype(np.dtype(kind).newbyteorder('<')))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.shape[1]) * channels * arr.dtype.itemsize
    msg.data = arr.tobytes()
    return msg


# ------------------------------------------------------------------ raw CDR fast path (node)
# rclpy turns a 100-detection Detection2DArray into Python objects in about 5 ms, more than the
# whole tracker update. The node subscribes with raw=True instead: parse_detection_cdr() decodes
# the bytes with the package's one CDR decoder (:mod:`.bag_cdr`, the replay's too: numpy gathers
# for detector-style messages, an offset walk otherwise), and encode_tracks_cdr() writes the
# tracks message by copying each source detection's bytes, with the new id, re-padding the
# 8-byte aligned fields where a detection lands on a different 8-byte phase. Layout (XCDR1,
# alignment counted from the byte after the 4-byte encapsulation header): Header{int32 sec,
# uint32 nanosec, string frame_id}, uint32 n, n x Detection2D{Header, uint32 m, m x {string
# class_id, float64 score, float64[7] pose, float64[36] covariance}, float64[5] bbox, string id}.

_U32 = struct.Struct('<I')
_HYP_BLOCK = 44 * 8   # score + pose (7) + covariance (36), all float64, contiguous

CdrFormatError = CdrError  # the node's name for it


@dataclass(frozen=True, eq=False)
class CdrDetections:
    """One serialized Detection2DArray: its decoded fields and offsets plus the tracker input.

    ``data`` is :func:`.bag_cdr.decode_detection_array`'s result; ``boxes``, ``scores`` and
    ``classes`` are what :func:`detection_arrays` gives for the same message.
    """

    data: DetectionArrayData
    boxes: NDArray[np.float64]
    scores: NDArray[np.float64]
    classes: list[str]

    @property
    def stamp_ns(self) -> int:
        """Header stamp in nanoseconds."""
        return self.data.stamp_ns

    @property
    def buf(self) -> bytes:
        """The serialized message."""
        return self.data.buf

    def __len__(self) -> int:
        return len(self.data)


def parse_detection_cdr(buf: bytes) -> CdrDetections:
    """Decode a serialized Detection2DArray (raises :class:`CdrFormatError` on bad bytes)."""
    data = decode_detection_array(buf)
    boxes, scores, classes = detection_arrays_of(data)
    return CdrDetections(data, boxes, scores, classes)


def cdr_to_frame(parsed: CdrDetections, **kwargs: Any) -> Frame:
    """Frame of a parsed message; keyword arguments as :func:`arrays_to_frame`."""
    return arrays_to_frame(parsed.stamp_ns, parsed.boxes, parsed.scores, parsed.classes,
                           **kwargs)


def encode_tracks_cdr(snapshot: AssociationSnapshot, parsed: CdrDetections) -> bytes:
    """Serialized ``tracks`` message, byte-compatible with :func:`snapshot_to_tracks`."""
    d = parsed.data
    buf = d.buf
    out = bytearray(buf[:d.header_end - 4])
    src_rows = snapshot.det_source_index
    pairs = [(tid, int(src_rows[row])) for tid, row in
             zip(snapshot.output_track_ids.tolist(), snapshot.output_det_index.tolist())
             if 0 <= row < src_rows.shape[0]]
    out += _U32.pack(len(pairs))
    if not pairs:
        return bytes(out)
    starts, head_ends = d.det_start.tolist(), d.det_head_end.tolist()
    bbox_at = d.bbox_at.tolist()
    counts = d.result_counts.tolist()
    first_hyp = np.concatenate([[0], np.cumsum(d.result_counts)]).tolist()
    class_at, block_at = d.result_class_at.tolist(), d.result_block_at.tolist()
    for tid, src in pairs:
        out += bytes(-(len(out) - 4) % 4)
        out += buf[starts[src]:head_ends[src]]
        for j in range(first_hyp[src], first_hyp[src] + counts[src]):
            cls_at = class_at[j]
            out += bytes(-(len(out) - 4) % 4)
            out += buf[cls_at:cls_at + 4 + _U32.unpack_from(buf, cls_at)[0]]
            out += bytes(-(len(out) - 4) % 8)
            out += buf[block_at[j]:block_at[j] + _HYP_BLOCK]
        out += bytes(-(len(out) - 4) % 8)
        out += buf[bbox_at[src]:bbox_at[src] + 40]
        out += bytes(-(len(out) - 4) % 4)
        text = str(tid).encode('utf-8')
        out += _U32.pack(len(text) + 1) + text + b'\x00'
    return bytes(out)
