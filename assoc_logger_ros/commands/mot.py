"""Track a MOTChallenge sequence from a detection file and write MOT-format results.

    python -m assoc_logger_ros mot SEQ_DIR --det DET_FILE --out RESULT.txt [--first-frame N]
        [--frame-mode] [--track-thresh 0.6 ...]

The frame rate comes from ``SEQ_DIR/seqinfo.ini`` (so a 1 s lost-track buffer is 14 frames on a
14 fps sequence) unless ``--frame-rate`` is given. Every tracker setting of the parameter schema
is a flag. Output boxes are the Kalman-filtered boxes of the active, confirmed tracks; the
reference output filter (drop ``w*h <= 100`` or ``w/h > 1.6``) is on unless ``--no-output-filter``.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.config import ConfigError, MemoryConfig, ParamSpec, TrackerConfig, specs_of


def _spec_type(spec: ParamSpec):
    def convert(text: str) -> Any:
        try:
            return spec.coerce(text, 'flag')
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = spec.type.__name__
    return convert


def add_tracker_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrackerConfig setting (the schema is the only place defaults live)."""
    group = parser.add_argument_group('tracker settings (defaults from the parameter schema)')
    for spec in specs_of(TrackerConfig):
        help_text = f'{spec.description} (default: {spec.default}{spec.unit and " " + spec.unit})'
        if spec.type is bool:
            group.add_argument(spec.flag, dest=spec.name, default=None,
                               action=argparse.BooleanOptionalAction, help=help_text)
        else:
            group.add_argument(spec.flag, dest=spec.name, default=None, type=_spec_type(spec),
                               metavar=spec.type.__name__.upper(), help=help_text)


def tracker_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The tracker settings given on the command line."""
    return {s.name: getattr(args, s.name) for s in specs_of(TrackerConfig)
            if getattr(args, s.name, None) is not None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the command's flags."""
    parser.add_argument('seq_dir', type=Path, help='sequence folder with seqinfo.ini')
    parser.add_argument('--det', required=True, type=Path,
                        help='detection file (frame,id,x,y,w,h,score,...)')
    parser.add_argument('--out', required=True, type=Path, help='result file to write')
    parser.add_argument('--first-frame', type=int, default=1,
                        help='first frame to track (the tracker starts fresh there)')
    parser.add_argument('--last-frame', type=int, default=None, help='last frame (default: end)')
    parser.add_argument('--no-output-filter', dest='output_filter', action='store_false',
                        help='keep boxes with w*h <= 100 or w/h > 1.6')
    add_tracker_flags(parser)


@dataclass
class SequenceRun:
    """What :func:`track_sequence` produced."""

    rows: NDArray[np.float64]             # (K, 7) frame, id, x, y, w, h, score
    update_s: NDArray[np.float64]         # (F,) wall time of each update call
    frames: int
    est_id_switches: int


def track_sequence(seq_dir: Path, det_file: Path, tracker_cfg: TrackerConfig,
                   memory_cfg: MemoryConfig | None = None, *, first_frame: int = 1,
                   last_frame: int | None = None, output_filter: bool = True,
                   use_seq_rate: bool = True) -> SequenceRun:
    """Run a fresh tracker over a sequence segment; only the update calls are timed.

    With ``use_seq_rate`` the config's ``frame_rate`` is replaced by the sequence's.
    """
    from assoc_logger_ros import motchallenge as mc
    from assoc_logger_ros.tracking.byte_tracker import ByteTracker

    info = mc.read_seqinfo(seq_dir)
    if use_seq_rate:
        tracker_cfg = dataclasses.replace(tracker_cfg, frame_rate=info.frame_rate)
    tracker = ByteTracker(tracker_cfg, memory_cfg or MemoryConfig())
    parts, times = [], []
    clock = time.thread_time   # CPU time of this thread: other processes do not count
    for frame in mc.iter_frames(seq_dir, det_file, first_frame, last_frame, info=info):
        t0 = clock()
        snap = tracker.update(frame)
        times.append(clock() - t0)
        boxes = snap.output_boxes
        ids, scores = snap.output_track_ids, snap.output_scores
        if output_filter:
            keep = mc.reference_output_filter(boxes)
            boxes, ids, scores = boxes[keep], ids[keep], scores[keep]
        parts.append(mc.result_rows(frame.frame_idx, ids, boxes, scores))
    rows = np.concatenate(parts) if parts else np.zeros((0, 7))
    return SequenceRun(rows, np.asarray(times), len(times), tracker.est_id_switches)


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    from assoc_logger_ros import motchallenge as mc

    try:
        info = mc.read_seqinfo(args.seq_dir)
        overrides = tracker_overrides(args)
        cfg = TrackerConfig(**overrides)
        result = track_sequence(args.seq_dir, args.det, cfg, first_frame=args.first_frame,
                                last_frame=args.last_frame, output_filter=args.output_filter,
                                use_seq_rate='frame_rate' not in overrides)
    except (ValueError, ConfigError) as exc:
        print(f'ERROR: {exc}')
        return 1
    n = mc.write_results(args.out, result.rows)
    ms = 1e3 * result.update_s
    print(f'{info.name}: {result.frames} frames, {n} boxes, '
          f'{len(np.unique(result.rows[:, 1])) if n else 0} tracks -> {args.out}; '
          f'update median {np.median(ms) if ms.size else 0:.3f} ms, '
          f'est_id_switches {result.est_id_switches}')
    return 0
