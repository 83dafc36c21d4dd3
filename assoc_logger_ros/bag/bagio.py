"""rosbag2 reading and writing without a ROS installation (rosbags only, never rclpy).

The bags this package writes and reads use three topics by default:

- ``/detections``: ``vision_msgs/msg/Detection2DArray`` (4.x field layout), the tracker input.
- ``/masks``: ``sensor_msgs/msg/Image``, an instance label image aligned with the detection array
  of the same stamp (pixel value k marks detection k-1, 0 is background; mono8/mono16/32SC1).
- ``/image``: ``sensor_msgs/msg/Image`` (rgb8), for the built-in appearance descriptor.
- ``/gt``: ground truth, again a ``vision_msgs/msg/Detection2DArray`` with the header stamp of
  the frame it labels, one ``Detection2D`` per annotated object, its ``id`` the ground-truth
  identity as a decimal string and its box the annotated box. A ``Detection2DArray`` exists
  wherever the input topic does, so no extra message package is needed to play such a bag.

Every message's bag (log) time equals its header stamp, as if it was recorded with no latency.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
import functools
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from assoc_logger_ros.bag.vision_msgs_defs import DEFINITIONS

DETECTION_ARRAY = 'vision_msgs/msg/Detection2DArray'
IMAGE = 'sensor_msgs/msg/Image'
TOPIC_DETECTIONS = '/detections'
TOPIC_MASKS = '/masks'
TOPIC_IMAGE = '/image'
TOPIC_GT = '/gt'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
TOPIC_CAMERA_INFO = '/camera_info'
STORAGES = ('mcap', 'sqlite3')

# The ROS 2 distribution whose std_msgs/geometry_msgs/sensor_msgs definitions the bags embed.
# Header, Image and PoseWithCovariance are unchanged from Humble to Kilted, so the type hashes
# are the same for every ROS 2 release that vision_msgs 4.x supports.
_STORE = Stores.ROS2_KILTED

# Image encodings this package writes, with their numpy dtype and channel count.
ENCODINGS: dict[str, tuple[str, int]] = {
    'mono8': ('u1', 1), 'mono16': ('<u2', 1), '32SC1': ('<i4', 1), 'rgb8': ('u1', 3),
    'bgr8': ('u1', 3),
}


def topic_name(name: str) -> str:
    """Bag topics are absolute: ``detections`` (a node-relative name) becomes ``/detections``."""
    return name if name.startswith('/') else '/' + name


@functools.lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The ROS 2 typestore with the vision_msgs 2D types registered (built once)."""
    store = get_typestore(_STORE)
    types: dict[str, Any] = {}
    for name, text in DEFINITIONS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def detection_array_hash() -> str:
    """RIHS01 hash of Detection2DArray, as a ROS 2 build generates it."""
    return typestore().hash_rihs01(DETECTION_ARRAY)


def _header(stamp_ns: int, frame_id: str) -> Any:
    t = typestore().types
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    return t['std_msgs/msg/Header'](
        stamp=t['builtin_interfaces/msg/Time'](sec=sec, nanosec=nsec), frame_id=frame_id)


def stamp_ns(msg: Any) -> int:
    """Header stamp of a message object in nanoseconds."""
    st = msg.header.stamp
    return int(st.sec) * 1_000_000_000 + int(st.nanosec)


def detection_array(stamp: int, boxes: ArrayLike, scores: ArrayLike | None = None,
                    class_ids: Sequence[str] | None = None, ids: Sequence[str] | None = None,
                    frame_id: str = 'camera') -> Any:
    """A Detection2DArray message object from xyxy boxes (one hypothesis per detection).

    Args:
        stamp: header stamp in ns (also each detection's header stamp).
        boxes: (N, 4) ``x1, y1, x2, y2`` pixels; stored as center + size.
        scores: (N,) confidences (1.0 when None).
        class_ids: (N,) class labels as strings (``'0'`` when None).
        ids: (N,) ``Detection2D.id`` strings (empty when None; ground-truth identity on ``/gt``).
    """
    t = typestore().types
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = b.shape[0]
    s = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    cls = ['0'] * n if class_ids is None else [str(c) for c in class_ids]
    ident = [''] * n if ids is None else [str(i) for i in ids]
    if not (s.shape[0] == len(cls) == len(ident) == n):
        raise ValueError(f'{n} boxes, {s.shape[0]} scores, {len(cls)} classes, {len(ident)} ids')
    header = _header(stamp, frame_id)
    cx = (b[:, 0] + b[:, 2]) / 2.0
    cy = (b[:, 1] + b[:, 3]) / 2.0
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    point2d, pose2d = t['vision_msgs/msg/Point2D'], t['vision_msgs/msg/Pose2D']
    bbox2d, hyp = t['vision_msgs/msg/BoundingBox2D'], t['vision_msgs/msg/ObjectHypothesis']
    hyp_pose = t['vision_msgs/msg/ObjectHypothesisWithPose']
    pwc, pose = t['geometry_msgs/msg/PoseWithCovariance'], t['geometry_msgs/msg/Pose']
    point, quat = t['geometry_msgs/msg/Point'], t['geometry_msgs/msg/Quaternion']
    det2d = t['vision_msgs/msg/Detection2D']
    dets = []
    for i in range(n):
        pose_cov = pwc(pose=pose(position=point(x=0.0, y=0.0, z=0.0),
                                 orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0)),
                       covariance=np.zeros(36, np.float64))
        dets.append(det2d(
            header=header,
            results=[hyp_pose(hypothesis=hyp(class_id=cls[i], score=float(s[i])),
                              pose=pose_cov)],
            bbox=bbox2d(center=pose2d(position=point2d(x=float(cx[i]), y=float(cy[i])),
                                      theta=0.0),
                        size_x=float(w[i]), size_y=float(h[i])),
            id=ident[i]))
    return t[DETECTION_ARRAY](header=header, detections=dets)


def image(stamp: int, array: NDArray[Any], encoding: str, frame_id: str = 'camera') -> Any:
    """A sensor_msgs/Image message object from an (H, W) or (H, W, 3) array."""
    if encoding not in ENCODINGS:
        raise ValueError(f'unsupported encoding {encoding!r}; expected one of '
                         f'{", ".join(ENCODINGS)}')
    dtype, channels = ENCODINGS[encoding]
    a = np.ascontiguousarray(np.asarray(array).astype(dtype, copy=False))
    if a.ndim != (2 if channels == 1 else 3) or (channels > 1 and a.shape[2] != channels):
        raise ValueError(f'array of shape {a.shape} does not fit encoding {encoding!r}')
    h, w = a.shape[:2]
    return typestore().types[IMAGE](
        header=_header(stamp, frame_id), height=h, width=w, encoding=encoding,
        is_bigendian=0, step=w * a.itemsize * channels,
        data=np.frombuffer(a.tobytes(), dtype=np.uint8))


def camera_info(stamp: int, width: int, height: int, frame_id: str = 'camera') -> Any:
    """A sensor_msgs/CameraInfo carrying only the image size (no calibration)."""
    t = typestore().types
    z = np.zeros
    return t[CAMERA_INFO](
        header=_header(stamp, frame_id), height=int(height), width=int(width),
        distortion_model='', d=z(0), k=z(9), r=z(9), p=z(12), binning_x=0, binning_y=0,
        roi=t['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False))


def serialize(msg: Any) -> bytes:
    """CDR bytes of a message object (little endian, as ROS 2 writes them)."""
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


def deserialize(raw: bytes | memoryview, msgtype: str) -> Any:
    """Message object from CDR bytes (rosbags' generic decoder)."""
    return typestore().deserialize_cdr(raw, msgtype)


class BagWriter:
    """Write a rosbag2 bag of detections, masks, images and ground truth.

    Refuses to overwrite an existing path (rosbags' rule). Topics are created on first use.
    Use as a context manager; ``close()`` writes ``metadata.yaml``.
    """

    def __init__(self, path: str | Path, *, storage: str = 'mcap', compress: bool = False
                 ) -> None:
        if storage not in STORAGES:
            raise ValueError(f'storage {storage!r}: expected one of {", ".join(STORAGES)}')
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.path = Path(path)
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        if compress:
            # zstd: mcap compresses chunks (as ros2 bag record's zstd presets do), sqlite3 each
            # message (rosbag2's --compression-mode message); both read back transparently.
            self._writer.set_compression(
                CompressionMode.STORAGE if storage == 'mcap' else CompressionMode.MESSAGE,
                CompressionFormat.ZSTD)
        self._connections: dict[str, Any] = {}
        self.count = 0

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._writer.close()

    def write_raw(self, topic: str, msgtype: str, log_ns: int, raw: bytes) -> None:
        """Append already-serialized CDR bytes (the connection is created on first use)."""
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise ValueError(f'topic {topic} already carries {conn.msgtype}, not {msgtype}')
        self._writer.write(conn, int(log_ns), raw)
        self.count += 1

    def write(self, topic: str, msg: Any, log_ns: int | None = None) -> None:
        """Append a message object; its bag time is its header stamp unless ``log_ns`` is given."""
        self.write_raw(topic, msg.__msgtype__, stamp_ns(msg) if log_ns is None else log_ns,
                       serialize(msg))

    def write_detections(self, stamp: int, boxes: ArrayLike, scores: ArrayLike | None = None,
                         class_ids: Sequence[str] | None = None, *,
                         topic: str = TOPIC_DETECTIONS, frame_id: str = 'camera') -> None:
        """One Detection2DArray on ``topic`` (ids left empty)."""
        self.write(topic, detection_array(stamp, boxes, scores, class_ids, frame_id=frame_id))

    def write_gt(self, stamp: int, boxes: ArrayLike, gt_ids: ArrayLike,
                 class_ids: Sequence[str] | None = None, *, topic: str = TOPIC_GT,
                 frame_id: str = 'camera') -> None:
        """Ground truth of one frame: a Detection2DArray whose ``id`` fields are the identities."""
        ids = [str(int(i)) for i in np.asarray(gt_ids).reshape(-1)]
        self.write(topic, detection_array(stamp, boxes, None, class_ids, ids, frame_id))

    def write_image(self, topic: str, stamp: int, array: NDArray[Any], encoding: str,
                    frame_id: str = 'camera') -> None:
        """One sensor_msgs/Image (mask or camera image) on ``topic``."""
        self.write(topic, image(stamp, array, encoding, frame_id))


def open_reader(path: str | Path) -> AnyReader:
    """An (unopened) AnyReader for a rosbag2 directory or a single ``.mcap`` / ``.db3`` file.

    Bags without embedded message definitions (older ROS 2 recordings) fall back to the
    package's typestore, which knows vision_msgs.
    """
    p = Path(path)
    if p.is_file() and p.suffix in ('.mcap', '.db3') and (p.parent / 'metadata.yaml').exists():
        p = p.parent
    return AnyReader([p], default_typestore=typestore())


def read_messages(path: str | Path, topics: Sequence[str] | None = None
                  ) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(topic, log_ns, message object)`` in bag-time order (tests and small tools)."""
    with open_reader(path) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        if topics is not None and not conns:
            return
        for conn, log_ns, raw in reader.messages(connections=conns):
            yield conn.topic, log_ns, reader.deserialize(raw, conn.msgtype)


def gt_arrays(msg: Any) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """(boxes xyxy, identities) of a ``/gt`` Detection2DArray; ids that are not integers -> -1."""
    n = len(msg.detections)
    boxes = np.empty((n, 4), np.float64)
    ids = np.full(n, -1, np.int64)
    for i, det in enumerate(msg.detections):
        c = det.bbox.center.position
        hw, hh = det.bbox.size_x / 2.0, det.bbox.size_y / 2.0
        boxes[i] = (c.x - hw, c.y - hh, c.x + hw, c.y + hh)
        try:
            ids[i] = int(det.id)
        except ValueError:
            pass
    return boxes, ids


def write_scene(scene: Any, path: str | Path, *, storage: str = 'mcap', masks: bool = True,
                images: bool = True, gt: bool = True, mask_encoding: str = 'mono16',
                side_delay_ns: int = 0, compress: bool = False,
                on_frame: Callable[[int], None] | None = None) -> int:
    """Write a generated scene (:mod:`assoc_logger_ros.sim.scene`) as a bag; returns messages.

    Per frame: ground truth on ``/gt`` (the objects in view, ``id`` = identity), the detector
    output on ``/detections`` (class names as ``class_id``), and optionally the instance label
    mask on ``/masks`` and the RGB image on ``/image``. Masks and images are stored
    ``side_delay_ns`` after their stamp, as a segmentation network's output arrives after the
    detections (keep it below ``mask_tolerance_s`` for them to join). ``compress``: zstd
    (synthetic images shrink about 50x).
    """
    from assoc_logger_ros.sim.scene import CLASS_NAMES

    with BagWriter(path, storage=storage, compress=compress) as bag:
        for i, fr in enumerate(scene.frames):
            stamp = int(fr.stamp_ns)
            if gt:
                bag.write_gt(stamp, fr.obj_boxes, fr.obj_ids,
                             [CLASS_NAMES[c] for c in fr.obj_classes])
            bag.write_detections(stamp, fr.det_boxes, fr.det_scores,
                                 [CLASS_NAMES[c] for c in fr.det_classes])
            if masks or images:
                if masks and images:
                    label, rgb = fr.render()
                else:
                    label, rgb = (fr.mask(), None) if masks else (None, fr.image())
                if masks:
                    bag.write(TOPIC_MASKS, image(stamp, label, mask_encoding),
                              stamp + side_delay_ns)
                if images:
                    bag.write(TOPIC_IMAGE, image(stamp, rgb, 'rgb8'), stamp + side_delay_ns)
            if on_frame is not None:
                on_frame(i + 1)
        return bag.count


def write_mot_sequence(seq_dir: str | Path, det_file: str | Path, path: str | Path, *,
                       storage: str = 'mcap', with_gt: bool = False, first_frame: int = 1,
                       last_frame: int | None = None,
                       on_frame: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Convert a MOTChallenge sequence into a bag of Detection2DArray (+ ``/gt``).

    One message per frame ``first_frame..last_frame`` (frames without detections give an empty
    array, so time still passes), stamped ``frame / frameRate`` seconds like the ``mot``
    command's frames; class_id ``'0'`` (class 0, as the ``mot`` command uses). With ``with_gt``
    the ground-truth rows the evaluation counts (``conf == 1`` and class 1, pedestrian) go to
    ``/gt`` with their identity as ``id`` and class_id ``'1'``. The sequence's image size goes
    to ``/camera_info`` once, at the first stamp (replay reads it). Returns counts and the size.
    """
    from assoc_logger_ros import motchallenge as mot

    info = mot.read_seqinfo(seq_dir)
    dets = mot.read_detections(det_file)
    last = info.seq_length if last_frame is None else int(last_frame)
    gt_by_frame: dict[int, NDArray[np.float64]] = {}
    if with_gt:
        gt_file = Path(seq_dir) / 'gt' / 'gt.txt'
        if not gt_file.is_file():
            raise ValueError(f'{gt_file}: not found (--with-gt needs the ground truth)')
        rows = mot.read_gt(gt_file)
        rows = rows[(rows[:, 6] == 1) & (rows[:, 7] == 1)]
        order = np.argsort(rows[:, 0], kind='stable')
        rows = rows[order]
        frames = rows[:, 0].astype(np.int64)
        for f in np.unique(frames).tolist():
            gt_by_frame[int(f)] = rows[frames == f]
    counts = {'frames': 0, 'detections': 0, 'gt_rows': 0, 'width': info.width,
              'height': info.height}
    empty = np.zeros((0, 5))
    total = last - int(first_frame) + 1
    with BagWriter(path, storage=storage) as bag:
        for k, f in enumerate(range(int(first_frame), last + 1)):
            stamp = mot.frame_stamp_ns(f, info.frame_rate)
            if k == 0:   # the image size, which Detection2DArray cannot carry
                bag.write(TOPIC_CAMERA_INFO, camera_info(stamp, info.width, info.height))
            if with_gt:
                g = gt_by_frame.get(f, np.zeros((0, 9)))
                boxes = np.column_stack([g[:, 2], g[:, 3], g[:, 2] + g[:, 4], g[:, 3] + g[:, 5]])
                bag.write_gt(stamp, boxes, g[:, 1].astype(np.int64), ['1'] * len(g))
                counts['gt_rows'] += len(g)
            d = dets.get(f, empty)
            bag.write_detections(stamp, d[:, :4], d[:, 4], ['0'] * len(d))
            counts['frames'] += 1
            counts['detections'] += len(d)
            if on_frame is not None:
                on_frame(k + 1, total)
    return counts
