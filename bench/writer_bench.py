"""Sample writer benchmark: throughput, bytes per sample, and logging's cost to the tracker.

Tables printed:
1. per size (T = D = 10, 50, 200; 256-d embeddings), compressed or not, fsync on or off:
   bytes per sample, the writer's steps (build, validate, encode) and, for comparison in the
   same run, the previous encoder (``zipfile`` + ``np.lib.format.write_array``,
   ``npzfile.encode_zipfile``), then samples/s the writer sustains end to end.
2. the same steps on real tracker output (MOT17-04, YOLOX detections, no embeddings).
3. tracker per-frame time through ``Pipeline`` with logging off vs on (live settings: the
   writer drops when full), writer as a thread and as a child process (``log_writer``), on
   MOT17-04 (if ../shared/bench-data exists) and on a generated scene with embeddings;
   conditions alternate and medians are compared (goal: ratio <= 1.10).

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
from assoc_logger_ros.recording.npzfile import encode, encode_zipfile  # noqa: E402
from assoc_logger_ros.recording.sample import build  # noqa: E402
from assoc_logger_ros.recording.synthetic import make_snapshot  # noqa: E402
from assoc_logger_ros.recording.validate import validate  # noqa: E402
from assoc_logger_ros.recording.writer import SampleWriter  # noqa: E402

WRITERS = ('thread', 'process')


def bench_data() -> Path | None:
    env = os.environ.get('ASSOC_BENCH_DATA')
    path = Path(env) if env else ROOT.parent / 'shared' / 'bench-data'
    return path if path.is_dir() else None


def writer_table(quick: bool) -> None:
    print('## 1. Writer: bytes per sample and sustained samples/s (T = D, 256-d embeddings)')
    print(f'{"T=D":>5} {"compress":>8} {"fsync":>5} {"bytes/sample":>12} {"build ms":>8} '
          f'{"valid. ms":>9} {"encode ms":>9} {"prev enc.":>9} {"samples/s":>9} '
          f'{"(min-max of 3)":>15}')
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
                steps = step_times(snaps[:20], compress)
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
                      f'{st["bytes_written"] / st["written"]:>12.0f} {steps} '
                      f'{statistics.median(rates):>9.1f} {min(rates):>7.1f}-{max(rates):<7.1f}')
    print('(ms: median per sample; prev enc. = the zipfile + write_array encoder used before, '
          'same run)')
    print()


def step_times(snaps, compress: bool, embed_cap: int = 256) -> str:
    """Median ms of build, validate, encode and the reference encoder, as table cells."""
    times: dict[str, list[float]] = {'build': [], 'validate': [], 'encode': [], 'prev': []}
    for s in snaps:
        t0 = time.perf_counter()
        arrays = build(s, 'bench', {}, embed_cap).arrays
        t1 = time.perf_counter()
        validate(arrays)
        t2 = time.perf_counter()
        encode(arrays, compress)
        t3 = time.perf_counter()
        encode_zipfile(arrays, compress)
        t4 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[key].append(dt)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    return (f'{ms["build"]:>8.3f} {ms["validate"]:>9.3f} {ms["encode"]:>9.3f} '
            f'{ms["prev"]:>9.3f}')


def real_steps_table() -> None:
    frames = frames_mot17(300)
    if not frames:
        return
    from assoc_logger_ros.tracking.byte_tracker import ByteTracker
    settings = resolve({}, env={})
    tracker = ByteTracker(settings.tracker, settings.memory)
    snaps = [tracker.update(f) for f in frames][100:]
    print('## 2. The same steps on MOT17-04 tracker output (200 samples, ~45 x 45, no '
          'embeddings, K = 256)')
    print(f'{"compress":>8} {"bytes/sample":>12} {"build ms":>8} {"valid. ms":>9} '
          f'{"encode ms":>9} {"prev enc.":>9} {"prev bytes":>10}')
    for compress in (True, False):
        arrays = [build(s, 'bench', {}, 256).arrays for s in snaps]
        size = statistics.median(len(encode(a, compress)) for a in arrays)
        prev = statistics.median(len(encode_zipfile(a, compress)) for a in arrays)
        print(f'{str(compress):>8} {size:>12.0f} {step_times(snaps, compress)} {prev:>10.0f}')
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


def time_pipeline(frames, log_dir: str | None, rate: float | None = None,
                  writer: str = 'thread') -> tuple[list[float], dict]:
    """Per-frame process() times; with ``rate`` frames arrive at that rate (live robot)."""
    from assoc_logger_ros.pipeline import Pipeline
    settings = {'log_min_free_mb': 0.0, 'log_dir': log_dir or '', 'log_writer': writer}
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
    p.close()  # counters after the final flush (the process writer's arrive late otherwise)
    return times, p.stats()


def pipeline_table(quick: bool) -> None:
    print('## 3. Tracker per-frame time through Pipeline, logging off vs on')
    print(f'{"sequence":<18} {"pace":>9} {"writer":>7} {"frames":>6} {"dets/fr":>7} '
          f'{"off ms":>7} {"on ms":>7} {"ratio":>6} {"off mean":>8} {"on mean":>8} '
          f'{"written":>7} {"dropped":>7}')
    limit = 150 if quick else 300
    repeats = 2 if quick else 3
    for name, loader in (('MOT17-04 (YOLOX)', frames_mot17), ('scene 40 walkers', frames_scene)):
        frames = loader(limit)
        if not frames:
            print(f'{name:<18} skipped (no ../shared/bench-data)')
            continue
        for rate in (30.0, None):
            off: list[float] = []
            on: dict[str, list[float]] = {w: [] for w in WRITERS}
            written = dict.fromkeys(WRITERS, 0)
            dropped = dict.fromkeys(WRITERS, 0)
            for _ in range(repeats):  # alternate conditions so drifting load hits all
                off += time_pipeline(frames, None, rate)[0]
                for writer in WRITERS:
                    with tempfile.TemporaryDirectory() as d:
                        t, st = time_pipeline(frames, d, rate, writer)
                        on[writer] += t
                        written[writer] += st['writer_written']
                        dropped[writer] += st['writer_dropped_queue_full']
            dets = statistics.mean(len(f) for f in frames)
            m_off = statistics.median(off)
            pace = '30 Hz' if rate else 'flat out'
            for writer in WRITERS:
                m_on = statistics.median(on[writer])
                print(f'{name:<18} {pace:>9} {writer:>7} {len(frames):>6} {dets:>7.1f} '
                      f'{1e3 * m_off:>7.2f} {1e3 * m_on:>7.2f} {m_on / m_off:>6.3f} '
                      f'{1e3 * statistics.mean(off):>8.2f} '
                      f'{1e3 * statistics.mean(on[writer]):>8.2f} {written[writer]:>7} '
                      f'{dropped[writer]:>7}')
    print('(ms = per-frame Pipeline.process time, median over all repeats; ratio = on/off '
          'medians;\n writer: log_writer thread or process (child process; off-core work);'
          '\n 30 Hz: frames arrive at camera rate (live robot); flat out: as fast as '
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
        real_steps_table()
    if not args.skip_pipeline:
        pipeline_table(args.quick)
    return 0


if __name__ == '__main__':
    sys.exit(main())
