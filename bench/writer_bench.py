"""Sample writer benchmark: throughput, bytes per sample, and logging's cost to the tracker.

Tables printed:
1. per size (T = D = 10, 50, 200; 256-d embeddings), compressed or not, fsync on or off:
   bytes per sample, build+validate+encode time, samples/s the writer sustains end to end.
2. tracker per-frame time through ``Pipeline`` with logging off vs on (live settings: the
   writer drops when full), on MOT17-04 (YOLOX detections, if ../shared/bench-data exists) and
   on a generated scene with embeddings; conditions alternate and medians are compared (goal:
   ratio <= 1.10).

Run: ``nice python bench/writer_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assoc_logger_ros.config import RecorderConfig, resolve  # noqa: E402
from assoc_logger_ros.recording.npzfile import encode  # noqa: E402
from assoc_logger_ros.recording.sample import build  # noqa: E402
from assoc_logger_ros.recording.synthetic import make_snapshot  # noqa: E402
from assoc_logger_ros.recording.validate import validate  # noqa: E402
from assoc_logger_ros.recording.writer import SampleWriter  # noqa: E402


def bench_data() -> Path | None:
    env = os.environ.get('ASSOC_BENCH_DATA')
    path = Path(env) if env else ROOT.parent / 'shared' / 'bench-data'
    return path if path.is_dir() else None


def writer_table(quick: bool) -> None:
    print('## 1. Writer: bytes per sample and sustained samples/s (T = D, 256-d embeddings)')
    print(f'{"T=D":>5} {"compress":>8} {"fsync":>5} {"bytes/sample":>12} {"encode ms":>9} '
          f'{"samples/s":>9} {"(min-max of 3)":>15}')
    for n in (10, 50, 200):
        count = {10: 300, 50: 150, 200: 40}[n] // (3 if quick else 1)
        snaps = [make_snapshot(n, n, seed=i, frame_idx=i, embed_dim=256) for i in range(count)]
        for compress in (True, False):
            for fsync in (True, False):
                if not compress and not fsync:
                    continue
                cfg = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=256,
                                     log_compress=compress, log_fsync=fsync,
                                     log_wait_when_full=True, log_queue_size=64)
                enc = []
                for s in snaps[:20]:
                    t0 = time.perf_counter()
                    arrays = build(s, 'bench', {}, 256).arrays
                    validate(arrays)
                    content = encode(arrays, compress)
                    enc.append(time.perf_counter() - t0)
                rates = []
                for _ in range(3):  # the median of three runs tames a shared machine's noise
                    with tempfile.TemporaryDirectory() as d:
                        t0 = time.perf_counter()
                        w = SampleWriter(d, cfg)
                        for s in snaps:
                            w.submit(s, 'bench', {})
                        w.close()
                        dt = time.perf_counter() - t0
                        st = w.stats()
                    rates.append(st['written'] / dt)
                print(f'{n:>5} {str(compress):>8} {str(fsync):>5} '
                      f'{st["bytes_written"] / st["written"]:>12.0f} '
                      f'{1e3 * statistics.median(enc):>9.2f} {statistics.median(rates):>9.1f} '
                      f'{min(rates):>7.1f}-{max(rates):<7.1f}')
                del content
    print()


def frames_mot17(limit: int):
    data = bench_data()
    if data is None:
        return None
    from assoc_logger_ros import motchallenge as mc
    seq = data / 'MOT17' / 'train' / 'MOT17-04'
    return list(mc.iter_frames(seq, seq / 'det' / 'yolox_x_ablation.txt', last_frame=limit))


def frames_scene(limit: int):
    from assoc_logger_ros.sim.scene import SceneConfig, generate_scene
    return generate_scene(SceneConfig(seed=7, num_frames=limit, num_walkers=40,
                                      emb_dim=128)).to_frames()


def time_pipeline(frames, log_dir: str | None, rate: float | None = None
                  ) -> tuple[list[float], dict]:
    """Per-frame process() times; with ``rate`` frames arrive at that rate (live robot)."""
    from assoc_logger_ros.pipeline import Pipeline
    settings = {'log_min_free_mb': 0.0, 'log_dir': log_dir or ''}
    p = Pipeline(resolve(settings, env={}), session_id='bench', source='bench')
    times = []
    start = time.perf_counter()
    for i, f in enumerate(frames):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        t0 = time.perf_counter()
        p.process(f)
        times.append(time.perf_counter() - t0)
    stats = p.stats()
    p.close()
    return times, stats


def pipeline_table(quick: bool) -> None:
    print('## 2. Tracker per-frame time through Pipeline, logging off vs on')
    print(f'{"sequence":<18} {"pace":>9} {"frames":>6} {"dets/fr":>7} {"off ms":>7} '
          f'{"on ms":>7} {"ratio":>6} {"off mean":>8} {"on mean":>8} {"written":>7} '
          f'{"dropped":>7}')
    limit = 150 if quick else 300
    repeats = 2 if quick else 3
    for name, loader in (('MOT17-04 (YOLOX)', frames_mot17), ('scene 40 walkers', frames_scene)):
        frames = loader(limit)
        if not frames:
            print(f'{name:<18} skipped (no ../shared/bench-data)')
            continue
        for rate in (30.0, None):
            off, on = [], []
            written = dropped = 0
            for _ in range(repeats):  # alternate conditions so drifting load hits both
                off += time_pipeline(frames, None, rate)[0]
                with tempfile.TemporaryDirectory() as d:
                    t, st = time_pipeline(frames, d, rate)
                    on += t
                    written += st['writer_written']
                    dropped += st['writer_dropped_queue_full']
            dets = statistics.mean(len(f) for f in frames)
            m_off, m_on = statistics.median(off), statistics.median(on)
            pace = '30 Hz' if rate else 'flat out'
            print(f'{name:<18} {pace:>9} {len(frames):>6} {dets:>7.1f} {1e3 * m_off:>7.2f} '
                  f'{1e3 * m_on:>7.2f} {m_on / m_off:>6.3f} {1e3 * statistics.mean(off):>8.2f} '
                  f'{1e3 * statistics.mean(on):>8.2f} {written:>7} {dropped:>7}')
    print('(ms = per-frame Pipeline.process time, median over all repeats; ratio = on/off '
          'medians;\n 30 Hz: frames arrive at camera rate (live robot); flat out: as fast as '
          'possible (offline),\n where the writer cannot keep up and drops; written/dropped '
          'summed over the repeats)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer samples and frames')
    parser.add_argument('--skip-writer', action='store_true')
    parser.add_argument('--skip-pipeline', action='store_true')
    args = parser.parse_args()
    if not args.skip_writer:
        writer_table(args.quick)
    if not args.skip_pipeline:
        pipeline_table(args.quick)
    return 0


if __name__ == '__main__':
    sys.exit(main())
