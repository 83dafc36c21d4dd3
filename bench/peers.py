r"""Our tracker vs BoxMOT ByteTrack and roboflow ``trackers`` ByteTrackTracker, one run.

Same protocol and detections as ``bench/mot17_eval.py`` (MOT17 half-val, YOLOX-X ablation
detections, reference thresholds, reference output filter for every tracker), scored together
by TrackEval. Time = CPU time of the update call alone (``time.thread_time``), per frame, BLAS
and torch limited to one thread; the detections are parsed before timing starts.

Peers are benchmark-only; ``scripts/bench_env.sh`` installs them (pinned in
``requirements/bench.in``) into their own venv, as ../shared/notes/mot-protocol.md describes:

    bash scripts/bench_env.sh
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=. nice /tmp/assoc_benchvenv/bin/python \\
        bench/peers.py
"""

from __future__ import annotations

import os

for _var in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from assoc_logger_ros import motchallenge as mc  # noqa: E402
from assoc_logger_ros.commands.evaluate import evaluate, format_table  # noqa: E402
from assoc_logger_ros.config import MemoryConfig, TrackerConfig  # noqa: E402
from assoc_logger_ros.frame import Frame  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mot17_eval import DET, SEQS, default_data  # noqa: E402

# (ids, xyxy boxes, scores) of the boxes a tracker outputs for one frame
Output = tuple[np.ndarray, np.ndarray, np.ndarray]
Step = Callable[[Frame], Output]


def reference_buffer(info: mc.SeqInfo) -> int:
    """The official evaluator's per-sequence buffer: 30, but 14 for MOT17-05, 25 for -13."""
    return {14: 14, 25: 25}.get(int(round(info.frame_rate)), 30)


def ours(info: mc.SeqInfo, **overrides) -> tuple[Step, Callable]:
    from assoc_logger_ros.tracking.byte_tracker import ByteTracker

    cfg = TrackerConfig(frame_rate=info.frame_rate, **overrides)
    tracker = ByteTracker(cfg, MemoryConfig())

    def step(frame: Frame):
        return tracker.update(frame)

    def convert(snap) -> Output:
        return snap.output_track_ids, snap.output_boxes, snap.output_scores
    return step, convert


def boxmot(info: mc.SeqInfo) -> tuple[Step, Callable]:
    from boxmot.trackers.box.bytetrack.tracker import ByteTrack

    tracker = ByteTrack(min_conf=0.1, track_thresh=0.6, match_thresh=0.9,
                        track_buffer=reference_buffer(info), frame_rate=30)

    def step(frame: Frame):
        dets = np.zeros((len(frame), 6))
        dets[:, :4] = frame.boxes
        dets[:, 4] = frame.scores
        return tracker.update(dets, None)

    def convert(out) -> Output:
        out = np.asarray(out).reshape(-1, 8)
        return out[:, 4].astype(np.int64) + 1, out[:, :4], out[:, 5]
    return step, convert


def roboflow(info: mc.SeqInfo) -> tuple[Step, Callable]:
    import supervision as sv
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker(
        lost_track_buffer=reference_buffer(info), frame_rate=30.0,
        track_activation_threshold=0.7, minimum_consecutive_frames=2,
        minimum_iou_threshold=0.1, high_conf_det_threshold=0.6)

    def step(frame: Frame):
        dets = sv.Detections(xyxy=frame.boxes.astype(np.float32),
                             confidence=frame.scores.astype(np.float32),
                             class_id=np.zeros(len(frame), int))
        return tracker.update(dets)

    def convert(out) -> Output:
        ids = np.asarray(out.tracker_id, np.int64)
        keep = ids >= 0
        return ids[keep] + 1, np.asarray(out.xyxy)[keep], np.asarray(out.confidence)[keep]
    return step, convert


TRACKERS: dict[str, Callable] = {
    'ours (defaults)': ours,
    'ours (diag off)': lambda info: ours(info, diag=False),
    'BoxMOT 25 ByteTrack': boxmot,
    'roboflow trackers ByteTrackTracker': roboflow,
}


def run_tracker(factory: Callable, data: dict, out_dir: Path) -> np.ndarray:
    """Track every sequence; only the update call is timed (thread CPU time)."""
    times = []
    clock = time.thread_time
    for seq, (info, frames) in data.items():
        step, convert = factory(info)
        parts = []
        for frame in frames:
            t0 = clock()
            out = step(frame)
            times.append(clock() - t0)
            ids, boxes, scores = convert(out)
            keep = mc.reference_output_filter(boxes)
            parts.append(mc.result_rows(frame.frame_idx, ids[keep], boxes[keep], scores[keep]))
        mc.write_results(out_dir / f'{seq}.txt', parts)
    return np.asarray(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=default_data())
    parser.add_argument('--only', nargs='*', default=None, help='subset of tracker names')
    args = parser.parse_args()
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    root = args.data / 'MOT17' / 'train'
    if not root.is_dir():
        print(f'bench data not found at {root}; set ASSOC_BENCH_DATA')
        return 1
    data = {}
    for seq in SEQS:
        info = mc.read_seqinfo(root / seq)
        data[seq] = (info, list(mc.iter_frames(root / seq, root / seq / DET,
                                               info.half_val_first, info=info)))
    names = args.only or list(TRACKERS)
    results, timing = {}, {}
    with tempfile.TemporaryDirectory(prefix='peers_') as tmp:
        for name in names:
            try:
                out = Path(tmp) / f'{len(results)}'
                times = run_tracker(TRACKERS[name], data, out)
            except ImportError as exc:
                print(f'skipping {name}: {exc}')
                continue
            results[name] = out
            ms = 1e3 * times
            timing[name] = {'median ms': f'{np.median(ms):.3f}',
                            'p99 ms': f'{np.percentile(ms, 99):.3f}'}
            print(f'{name}: median {np.median(ms):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms',
                  flush=True)
        scores = evaluate(root, results, list(SEQS), half_val=True)
    base = next((n for n in names if n.startswith('ours')), None)
    if base in timing:
        med = float(timing[base]['median ms'])
        for n in timing:
            timing[n]['median vs ' + base] = f'{float(timing[n]["median ms"]) / med:.2f}x'
    print('\nMOT17 half-val, TrackEval COMBINED, CPU time of the update call per frame')
    print(format_table(scores, 'COMBINED', timing))
    return 0


if __name__ == '__main__':
    sys.exit(main())
