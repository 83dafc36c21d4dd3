"""MOTChallenge files: ``seqinfo.ini``, detection and ground-truth text, result files.

The one place that knows the format, so the ``mot``/``eval`` commands, the benchmarks and the
``mot2bag`` converter read sequences the same way:

* boxes in MOT files are ``x_left, y_top, width, height`` in pixels with 1-based frame numbers;
  this module hands out ``x1, y1, x2, y2`` (the :class:`~assoc_logger_ros.frame.Frame` format);
* a frame's stamp is ``frame / frameRate`` seconds (:func:`frame_stamp_ns`), so time-based
  tracking sees the sequence's real rate;
* results are written ``frame,id,x,y,w,h,score,-1,-1,-1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.frame import Frame, make_frame

GT_COLUMNS = ('frame', 'id', 'x', 'y', 'w', 'h', 'conf', 'class', 'visibility')


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of ``seqinfo.ini``."""

    name: str
    seq_dir: Path
    frame_rate: float
    seq_length: int
    width: int
    height: int
    im_dir: str = 'img1'
    im_ext: str = '.jpg'

    @property
    def half_val_first(self) -> int:
        """First frame of the MOT17 half-val protocol: ``N // 2 + 2``."""
        return self.seq_length // 2 + 2


def read_seqinfo(seq_dir: str | Path) -> SeqInfo:
    """Parse ``SEQ_DIR/seqinfo.ini``; raises ``ValueError`` naming the missing key."""
    seq_dir = Path(seq_dir)
    path = seq_dir / 'seqinfo.ini'
    if not path.is_file():
        raise ValueError(f'{path}: not found (is {seq_dir} a MOTChallenge sequence folder?)')
    cp = configparser.ConfigParser()
    cp.read(path, encoding='utf-8')
    if 'Sequence' not in cp:
        raise ValueError(f'{path}: no [Sequence] section')
    sec = cp['Sequence']
    try:
        return SeqInfo(
            name=sec.get('name', seq_dir.name), seq_dir=seq_dir,
            frame_rate=float(sec['frameRate']), seq_length=int(sec['seqLength']),
            width=int(sec['imWidth']), height=int(sec['imHeight']),
            im_dir=sec.get('imDir', 'img1'), im_ext=sec.get('imExt', '.jpg'))
    except KeyError as exc:
        raise ValueError(f'{path}: missing key {exc.args[0]}') from None


def _load_rows(path: str | Path, min_cols: int) -> NDArray[np.float64]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f'{path}: not found')
    text = path.read_text(encoding='utf-8').strip()
    if not text:
        return np.zeros((0, min_cols))
    rows = np.loadtxt(text.splitlines(), delimiter=',', ndmin=2, dtype=np.float64)
    if rows.shape[1] < min_cols:
        raise ValueError(f'{path}: expected at least {min_cols} comma-separated columns, '
                         f'found {rows.shape[1]}')
    return rows


def read_detections(path: str | Path) -> dict[int, NDArray[np.float64]]:
    """Detections per frame: ``{frame: (N, 5) [x1, y1, x2, y2, score]}``, file order kept.

    Rows are ``frame, id, x, y, w, h, score, ...``; the id column is ignored (detection files
    put -1 or a per-frame index there). Files sorted by id rather than frame are regrouped.
    """
    rows = _load_rows(path, 7)
    out: dict[int, NDArray[np.float64]] = {}
    if rows.shape[0] == 0:
        return out
    order = np.argsort(rows[:, 0], kind='stable')
    rows = rows[order]
    frames = rows[:, 0].astype(np.int64)
    dets = np.empty((rows.shape[0], 5))
    dets[:, 0:2] = rows[:, 2:4]
    dets[:, 2:4] = rows[:, 2:4] + rows[:, 4:6]
    dets[:, 4] = rows[:, 6]
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
    ends = np.r_[starts[1:], frames.size]
    for s, e in zip(starts.tolist(), ends.tolist()):
        out[int(frames[s])] = dets[s:e]
    return out


def read_gt(path: str | Path) -> NDArray[np.float64]:
    """Ground-truth rows (N, 9): :data:`GT_COLUMNS` (MOT15's world columns are dropped).

    Files with 6-8 columns get ``conf = 1``, ``class = 1``, ``visibility = 1`` filled in.
    """
    rows = _load_rows(path, 6)
    out = np.ones((rows.shape[0], 9))
    k = min(rows.shape[1], 9)
    out[:, :k] = rows[:, :k]
    if rows.shape[1] >= 10:          # MOT15: frame,id,x,y,w,h,conf,wx,wy,wz
        out[:, 7:9] = 1.0
    return out


def trim_gt(rows: NDArray[np.float64], first: int, last: int,
            renumber: bool = True) -> NDArray[np.float64]:
    """Keep frames ``first..last``; with ``renumber`` frame ``first`` becomes 1."""
    keep = (rows[:, 0] >= first) & (rows[:, 0] <= last)
    out = rows[keep].copy()
    if renumber:
        out[:, 0] -= first - 1
    return out


def frame_stamp_ns(frame: int, frame_rate: float) -> int:
    """Stamp of a 1-based frame number: ``frame / frame_rate`` seconds, in ns."""
    return int(round(frame * 1e9 / frame_rate))


def iter_frames(seq_dir: str | Path, det_file: str | Path, first_frame: int = 1,
                last_frame: int | None = None,
                info: SeqInfo | None = None) -> Iterator[Frame]:
    """One :class:`Frame` per frame ``first_frame..last_frame`` (default: to the end).

    Frames without detections are yielded empty (time still passes for the tracker).
    ``Frame.frame_idx`` is the MOT frame number; ``source_index`` the row within the frame.
    """
    info = info or read_seqinfo(seq_dir)
    dets = read_detections(det_file)
    last = info.seq_length if last_frame is None else last_frame
    empty = np.zeros((0, 5))
    for f in range(int(first_frame), int(last) + 1):
        d = dets.get(f, empty)
        yield make_frame(frame_stamp_ns(f, info.frame_rate), d[:, :4], d[:, 4],
                         width=info.width, height=info.height, frame_idx=f)


def reference_output_filter(boxes_xyxy: NDArray[np.float64],
                            min_area: float = 100.0,
                            max_aspect: float = 1.6) -> NDArray[np.bool_]:
    """ByteTrack's MOT output filter: keep ``w * h > min_area`` and ``w / h <= max_aspect``."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    with np.errstate(divide='ignore', invalid='ignore'):
        return (w * h > min_area) & ~(w / h > max_aspect)


def result_rows(frame: int, track_ids: NDArray[np.int64], boxes_xyxy: NDArray[np.float64],
                scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """(K, 7) ``frame, id, x, y, w, h, score`` rows for :func:`write_results`."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    out = np.empty((b.shape[0], 7))
    out[:, 0] = frame
    out[:, 1] = track_ids
    out[:, 2:4] = b[:, 0:2]
    out[:, 4:6] = b[:, 2:4] - b[:, 0:2]
    out[:, 6] = scores
    return out


def write_results(path: str | Path, rows: Iterable[NDArray[np.float64]] | NDArray[np.float64],
                  decimals: int = 2) -> int:
    """Write ``frame,id,x,y,w,h,score,-1,-1,-1`` lines; returns the number of rows.

    ``rows`` is one (K, 7) array or an iterable of them (e.g. one per frame).
    """
    if isinstance(rows, np.ndarray):
        parts = [rows.reshape(-1, 7)]
    else:
        parts = [np.asarray(r, dtype=np.float64).reshape(-1, 7) for r in rows]
    table = np.concatenate(parts) if parts else np.zeros((0, 7))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = f'%.{decimals}f'
    with open(path, 'w', encoding='utf-8') as fh:
        for r in table:
            fh.write(f'{int(r[0])},{int(r[1])},{fmt % r[2]},{fmt % r[3]},{fmt % r[4]},'
                     f'{fmt % r[5]},{fmt % r[6]},-1,-1,-1\n')
    return int(table.shape[0])
