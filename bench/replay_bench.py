"""Bag replay speed on MOT17-04 (1050 frames, YOLOX-X ablation detections), logging on and off.

Makes a bag with ``mot2bag`` (in a temp folder), then replays it through the full path (read,
decode, join, Frame, tracker, writer) and prints one table, medians of ``--repeats`` runs, the
conditions interleaved:

- baseline: the tracker alone (``Pipeline.process`` on Frames built in memory from the MOT
  files, logging off) — the floor any replay pays;
- replay, logging off / on with the replay command's defaults (compressed, writer in a child
  process, no per-sample fsync) / on with the writer as a thread (the node's arrangement) / on
  with an fsync per sample (the recorder's default for robots); the replay waits for the writer
  (never drops), so "on" is bounded by the writer's throughput;
- replay of the bag with ground truth (``--with-gt``: /gt decoded and matched by IoU), logging on.

Columns: tracking frames/s (the replay loop, samples possibly still queued), end-to-end frames/s
(including the final flush until every sample is on disk), tracker share of the loop, time
outside the tracker (decode, join, Frame, gt, waiting for the writer), writer wait, ratio to the
baseline. A second table compares rosbags' Detection2DArray decoding with the numpy decoder.

Run: ``nice python bench/replay_bench.py [--repeats 3] [--frames N]``. Goal: >= 300 frames/s
with logging on.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import shutil
import statistics
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assoc_logger_ros import motchallenge as mot  # noqa: E402
from assoc_logger_ros.bag import bagio  # noqa: E402
from assoc_logger_ros.bag.replay import replay_bag  # noqa: E402
from assoc_logger_ros.config import resolve  # noqa: E402
from assoc_logger_ros.messages.cdr import decode_detection_array  # noqa: E402
from assoc_logger_ros.pipeline import Pipeline  # noqa: E402

SIZE = {'image_width': 1920, 'image_height': 1080}


def bench_data() -> Path | None:
    env = os.environ.get('ASSOC_BENCH_DATA')
    path = Path(env) if env else ROOT.parent / 'shared' / 'bench-data'
    return path if path.is_dir() else None


def run_baseline(frames: list) -> dict:
    pipe = Pipeline(resolve({**SIZE, 'log_dir': ''}, env={}), session_id='bench')
    t0 = time.perf_counter()
    for f in frames:
        pipe.process(f)
    dt = time.perf_counter() - t0
    pipe.close()
    return {'loop': dt, 'e2e': dt, 'track': dt, 'wait': 0.0, 'frames': len(frames)}


def replay_once(bag: Path, tmp: Path, logging: bool, extra: dict,
                writer_process: bool | None = None) -> dict:
    log_dir = tmp / 'log'
    if log_dir.exists():
        shutil.rmtree(log_dir)
    settings = resolve({**SIZE, **extra, 'log_dir': str(log_dir) if logging else ''}, env={})
    r = replay_bag(bag, settings, progress=False, writer_process=writer_process)
    if logging and r.samples_written != r.frames - 1:
        print(f'WARNING: {r.samples_written} samples for {r.frames} frames', file=sys.stderr)
    return {'loop': r.loop_s, 'e2e': r.loop_s + r.flush_s, 'track': r.track_s,
            'wait': r.writer_wait_s, 'frames': r.frames}


def decode_table(bag: Path, count: int = 200) -> None:
    with bagio.open_reader(bag) as reader:
        conn = next(c for c in reader.connections if c.topic == bagio.TOPIC_DETECTIONS)
        raws = [raw for _, _, raw in reader.messages(connections=[conn])][:count]
        dets = sum(len(decode_detection_array(r)) for r in raws)
        rows = []
        for name, fn in (('rosbags deserialize', lambda r: reader.deserialize(r, conn.msgtype)),
                         ('numpy CDR decoder', decode_detection_array)):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                for r in raws:
                    fn(r)
                times.append((time.perf_counter() - t0) / len(raws) * 1e3)
            rows.append((name, statistics.median(times)))
    print(f'\n## Detection2DArray decoding ({len(raws)} MOT17-04 messages, '
          f'{dets / len(raws):.0f} detections each, median of 3)')
    print(f'{"decoder":<22} {"ms/message":>10} {"ratio":>6}')
    for name, ms in rows:
        print(f'{name:<22} {ms:>10.3f} {ms / rows[0][1]:>6.2f}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--frames', type=int, default=None, help='last frame (default: all)')
    args = parser.parse_args()
    data = bench_data()
    if data is None:
        print('bench data not found (../shared/bench-data or $ASSOC_BENCH_DATA)')
        return 1
    seq = data / 'MOT17' / 'train' / 'MOT17-04'
    det = seq / 'det' / 'yolox_x_ablation.txt'
    with tempfile.TemporaryDirectory(prefix='replay_bench_') as tmpname:
        tmp = Path(tmpname)
        bag, bag_gt = tmp / 'mot17_04', tmp / 'mot17_04_gt'
        t0 = time.perf_counter()
        bagio.write_mot_sequence(seq, det, bag, last_frame=args.frames)
        bagio.write_mot_sequence(seq, det, bag_gt, with_gt=True, last_frame=args.frames)
        print(f'bags written in {time.perf_counter() - t0:.1f} s')
        frames = list(mot.iter_frames(seq, det, last_frame=args.frames))
        nofsync = {'log_fsync': False}  # the replay command's default
        conditions = {
            'baseline: tracker only': lambda: run_baseline(frames),
            'replay, logging off': lambda: replay_once(bag, tmp, False, {}),
            'replay, logging on (CLI)': lambda: replay_once(bag, tmp, True, nofsync),
            'logging on, thread writer': lambda: replay_once(bag, tmp, True, nofsync,
                                                             writer_process=False),
            'logging on, fsync/sample': lambda: replay_once(bag, tmp, True, {}),
            'replay +gt, logging on (CLI)': lambda: replay_once(bag_gt, tmp, True, nofsync),
        }
        results: dict[str, list[dict]] = {k: [] for k in conditions}
        for _ in range(args.repeats):
            for name, fn in conditions.items():
                results[name].append(fn())
        n = len(frames)
        print(f'\n## Replay of MOT17-04 ({n} frames), median of {args.repeats} runs '
              f'(conditions interleaved); {os.cpu_count()} CPUs, load '
              f'{os.getloadavg()[0]:.1f}')
        print(f'{"condition":<30} {"track fps":>9} {"e2e fps":>8} {"tracker %":>9} '
              f'{"outside ms/f":>12} {"wait ms/f":>9} {"e2e / base":>10}')
        base = statistics.median(n / r['e2e'] for r in results['baseline: tracker only'])
        for name, runs in results.items():
            loop_fps = statistics.median(r['frames'] / r['loop'] for r in runs)
            e2e_fps = statistics.median(r['frames'] / r['e2e'] for r in runs)
            share = statistics.median(r['track'] / r['loop'] for r in runs)
            outside = statistics.median((r['loop'] - r['track']) / r['frames'] * 1e3
                                        for r in runs)
            wait = statistics.median(r['wait'] / r['frames'] * 1e3 for r in runs)
            print(f'{name:<30} {loop_fps:>9.0f} {e2e_fps:>8.0f} {share:>9.0%} '
                  f'{outside:>12.2f} {wait:>9.2f} {e2e_fps / base:>10.2f}')
        decode_table(bag)
    return 0


if __name__ == '__main__':
    sys.exit(main())
