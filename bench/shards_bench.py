"""Directory (one npz per sample) vs shards (tar + Parquet index), and inspect at 1M rows.

Size, file count, tool times and read throughput of the two layouts holding the same samples,
then the Parquet ``inspect`` at one million rows.

Dataset: ``--samples`` distinct synthetic samples, each its own ``make_snapshot`` (T = 8-12
tracks, D = 10-13 detections, 16-d embeddings, about 12 kB on disk each) built into the schema's
arrays and encoded exactly as the recorder does (``recording.sample.build`` +
``recording.npzfile.encode``), no tracker, written by ``--jobs`` processes; sessions of 25,000
frames (at least 4). Both layouts hold the same samples.

Rows (each timed once, in the same run, directory first):
- bytes on disk (allocated blocks) and file count;
- pack (directory -> shards + Parquet index);
- inspect --no-validate (manifest / Parquet index) and inspect (every sample validated);
- filter (--min-matched 6: directory hard links, shards copy bytes; plus the DuckDB select);
- trainer input (samples/s into what the trainer consumes): the default in-memory recipe
  (``training.data.load_examples``: every sample read and labelled into examples) on the
  directory (baseline) and on the shards, and ``train --stream``'s input (``--workers``
  DataLoader workers, shuffle buffer 2048, labelled and collated batches);
- full read pass (samples/s). Baseline: the directory the seed way
  (``np.load`` per file, manifest order). Against it, warm (page cache): the directory through
  the fast decoder, the shard stream with ``np.load`` (the format alone) and the shard stream
  with the fast decoder; cold (each of our files evicted from the page cache with
  ``posix_fadvise(DONTNEED)`` first): the directory and the shards, both with the fast decoder.
- inspect --no-validate of a synthetic 1,000,000-row Parquet index (manifest columns, 16
  sessions), in process and as the CLI end to end (interpreter start and imports included).

Goals (issue 13): shards >= 5x faster full pass; Parquet inspect < 5 s at 1M rows.
Run: ``nice .venv/bin/python bench/shards_bench.py [--samples 1000000] [--dir-subset 10000]
[--skip-cold] [--skip-numpy]`` (the slow rows off at scale; disk: about 2.5x the directory's
size). ``--dir-subset K`` times the directory's read and trainer-input rows on every
(N/K)-th sample of the full directory, the shard rows stay on all N; at N >= ``--index-rows``
the last row is the CLI ``inspect`` of the shards' own index instead of a synthetic one.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assoc_logger_ros.dataset.ops import filter_dataset  # noqa: E402
from assoc_logger_ros.dataset.select import Criteria  # noqa: E402
from assoc_logger_ros.dataset.summary import summarize  # noqa: E402
from assoc_logger_ros.recording import manifest  # noqa: E402
from assoc_logger_ros.recording.schema import sample_name  # noqa: E402
from assoc_logger_ros.recording.synthetic import make_snapshot  # noqa: E402
from assoc_logger_ros.shards import layout  # noqa: E402
from assoc_logger_ros.shards.pack import pack  # noqa: E402
from assoc_logger_ros.shards.stream import iter_samples  # noqa: E402
from assoc_logger_ros.shards.tools import filter_shards, summarize_any  # noqa: E402

SESSION_SAMPLES = 25_000   # a session: about 14 minutes at 30 Hz


def _write_chunk(args: tuple[str, int, int, int]) -> list[str]:
    """Samples ``lo``..``hi - 1`` of ``n`` as npz files in ``d``; their manifest lines."""
    from assoc_logger_ros.recording.npzfile import encode
    from assoc_logger_ros.recording.sample import build
    d, lo, hi, n = args
    sessions = max(4, -(-n // SESSION_SAMPLES))
    lines = []
    for i in range(lo, hi):
        sess = i * sessions // n
        first = sess * n // sessions + (1 if sess * n % sessions else 0)
        frame = i - first
        snap = make_snapshot(8 + i % 5, 10 + i % 4, seed=i, frame_idx=frame, embed_dim=16,
                             stamp_ns=10**18 + sess * 10**15 + frame * 33_333_333)
        sample = build(snap, f'robot{sess % 4}-s{sess:03d}', {'source': 'bench'}, 16)
        blob = encode(sample.arrays)
        name = sample_name(i)
        fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, blob)
        os.close(fd)
        lines.append(manifest.dumps(sample.record(name, len(blob))))
    return lines


def make_dataset(d: Path, n: int, jobs: int) -> None:
    """``n`` distinct synthetic samples (the recorder's arrays and encoder, no tracker).

    Each sample is its own ``make_snapshot`` (T = 8-12, D = 10-13, 16-d embeddings), built
    into the schema's arrays by ``recording.sample.build`` and encoded by
    ``recording.npzfile.encode`` as the writer does; sessions of 25,000 frames.
    """
    import multiprocessing as mp
    d.mkdir()
    step = 2000
    chunks = [(str(d), lo, min(lo + step, n), n) for lo in range(0, n, step)]
    with mp.get_context('fork').Pool(max(jobs, 1)) as pool, \
            open(d / 'manifest.jsonl', 'w', encoding='utf-8') as fh:
        for lines in pool.imap(_write_chunk, chunks):
            fh.writelines(lines)


def disk_usage(d: Path) -> tuple[int, int]:
    """(allocated bytes, regular files) under ``d``."""
    total, files = 0, 0
    for root, _, names in os.walk(d):
        for n in names:
            st = os.lstat(os.path.join(root, n))
            total += st.st_blocks * 512
            files += 1
    return total, files


def evict(d: Path) -> None:
    """Drop our own files under ``d`` from the page cache (cold-read measurement)."""
    for root, _, names in os.walk(d):
        for n in names:
            fd = os.open(os.path.join(root, n), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def timed(fn, *args, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def every_nth(d: Path, stride: int):
    """(manifest line, npz name) of every ``stride``-th sample of directory ``d``."""
    with open(d / 'manifest.jsonl', encoding='utf-8') as fh:
        for i, line in enumerate(fh):
            if i % stride == 0:
                yield line, json.loads(line)['npz']


def dir_pass(d: Path, stride: int = 1) -> int:
    """The seed-style full pass: manifest order, np.load per file, every array read.

    ``stride`` > 1 reads every ``stride``-th sample only (a rate measured across the whole
    directory when a full seed-style pass would take hours).
    """
    n = 0
    for _, name in every_nth(d, stride):
        with np.load(d / name) as z:
            sample = {k: z[k] for k in z.files}
        n += len(sample) > 0
    return n


def dir_fast_pass(d: Path) -> int:
    """The directory read with the shards' fast decoder (separates format from decoder)."""
    from assoc_logger_ros.shards.source import open_source
    return sum(1 for _, arrays, _ in open_source(d).iter_loaded() if arrays)


def link_subset(src: Path, dst: Path, stride: int) -> int:
    """Every ``stride``-th sample of ``src`` hard-linked into the directory ``dst``."""
    dst.mkdir()
    n = 0
    with open(dst / 'manifest.jsonl', 'w', encoding='utf-8') as out:
        for line, name in every_nth(src, stride):
            os.link(src / name, dst / name)
            out.write(line)
            n += 1
    return n


def shard_pass(d: Path, decoder: str) -> int:
    return sum(1 for s in iter_samples(d, decoder=decoder) if s)


def trainer_pass(d: Path) -> int:
    """The trainer's default input: every sample labelled into examples held in memory."""
    from assoc_logger_ros.training.data import load_examples
    return len(load_examples([d]))


def stream_pass(d: Path, workers: int) -> tuple[int, int]:
    """``train --stream`` input: DataLoader workers, shuffle buffer, collated batches."""
    from assoc_logger_ros.training import stream_input as si
    plan = si.make_plan([d], val_fraction=0.0)
    stream = si.ExampleStream(plan, 'train', batch_size=32, shuffle_buffer=2048, seed=0,
                              track_thresh=0.6, embed_dim=None)
    read = examples = 0
    for item in si.loader(stream, workers, 0):
        read += item['read']
        examples += len(item['ids'])
    return read, examples


def million_index(d: Path, rows: int) -> None:
    """A shard directory holding only a synthetic ``rows``-row Parquet index."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    from assoc_logger_ros.shards.index import PARTITION, SOURCE_NAME, session_key
    rng = np.random.default_rng(0)
    d.mkdir()
    (d / layout.MARKER_NAME).write_bytes(layout.marker_text())
    sessions = np.array([f'robot{i % 4}-2026-12-0{i // 4 + 1}' for i in range(16)])
    sid = np.sort(rng.integers(0, 16, rows))
    tracks = rng.integers(0, 40, rows)
    dets = rng.integers(0, 40, rows)
    cols = {
        'npz': pa.array([sample_name(i) for i in range(rows)]),
        'session': pa.array(sessions[sid]),
        'frame_idx': pa.array(np.arange(rows)),
        'stamp_ns': pa.array(10**18 + np.arange(rows) * 33_333_333),
        'tracks': pa.array(tracks), 'detections': pa.array(dets),
        'matched_pairs': pa.array(np.minimum(tracks, dets)),
        'mean_visibility': pa.array(rng.uniform(0, 1, rows)),
        'est_id_switches': pa.array(np.arange(rows) // 1000),
        'est_id_switches_frame': pa.array(rng.integers(0, 2, rows)),
        'bytes': pa.array(rng.integers(5000, 20000, rows)),
        'has_gt': pa.array(rng.uniform(size=rows) < 0.5),
        'track_embed_dim': pa.array(np.full(rows, 256)),
        'det_embed_dim': pa.array(np.full(rows, 256)),
        'embed_dim': pa.array(np.full(rows, 256)),
        'embed_truncated': pa.array(np.zeros(rows, bool)),
        'schema_version': pa.array(np.full(rows, 2)),
        'shard': pa.array([layout.shard_name(i // 20000) for i in range(rows)]),
        'key': pa.array([f'k{i}' for i in range(rows)]),
        'offset': pa.array(np.arange(rows) * 10240 + 512),
        'size': pa.array(np.full(rows, 9000)),
        PARTITION: pa.array([session_key(s) for s in sessions[sid]]),
    }
    part = pads.partitioning(pa.schema([(PARTITION, pa.string())]), flavor='hive')
    pads.write_dataset(pa.table(cols), d / layout.INDEX_DIR, format='parquet',
                       partitioning=part, basename_template='part-{i}.parquet')
    (d / layout.INDEX_DIR / SOURCE_NAME).write_text(json.dumps({'shards': [], 'rows': rows}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--samples', type=int, default=10000)
    parser.add_argument('--jobs', type=int, default=2, help='processes generating the data')
    parser.add_argument('--workers', type=int, default=2,
                        help='DataLoader workers of the streamed trainer input')
    parser.add_argument('--skip-cold', action='store_true', help='no cold-cache passes')
    parser.add_argument('--skip-numpy', action='store_true',
                        help='no shard pass through np.load (the format alone; slow)')
    parser.add_argument('--index-rows', type=int, default=1_000_000)
    parser.add_argument('--dir-subset', type=int, default=0,
                        help='time the directory read and trainer-input rows on this many samples '
                             'spread evenly over the directory (0: all; at 1M a seed-style pass '
                             'takes hours here)')
    parser.add_argument('--skip-trainer', action='store_true', help='no trainer-input rows')
    parser.add_argument('--validate', action='store_true',
                        help='also time the validating inspect (slow: every sample checked)')
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix='shards_bench_'))
    rows: list[tuple[str, str, str, str]] = []
    try:
        src, sh = tmp / 'dir', tmp / 'shards'
        t_make, _ = timed(make_dataset, src, args.samples, args.jobs)
        print(f'dataset: {args.samples} distinct samples in {t_make:.0f} s', flush=True)
        t_pack, res = timed(pack, src, sh, shard_mb=256.0)
        (db, df), (sb, sf) = disk_usage(src), disk_usage(sh)
        rows.append(('bytes on disk (MiB)', f'{db / 2**20:.1f}', f'{sb / 2**20:.1f}',
                     f'{db / sb:.2f}x smaller'))
        rows.append(('files', str(df), str(sf), f'{df / sf:.0f}x fewer'))
        rows.append(('pack (s)', '-', f'{t_pack:.1f}', f'{res["shards"]} shard(s)'))
        print(rows[-1], flush=True)
        t_a, a = timed(summarize, src, load=False)
        t_b, b = timed(summarize_any, sh, load=False)
        assert a['samples'] == b['samples'] == args.samples and b.get('index') == 'parquet'
        rows.append(('inspect --no-validate (s)', f'{t_a:.2f}', f'{t_b:.2f}',
                     f'{t_a / t_b:.1f}x'))
        print(rows[-1], flush=True)
        if args.validate:
            t_a, a = timed(summarize, src)
            t_b, b = timed(summarize_any, sh)
            assert a['error_count'] == b['error_count'] == 0
            rows.append(('inspect, validating (s)', f'{t_a:.1f}', f'{t_b:.1f}',
                         f'{t_a / t_b:.1f}x'))
            print(rows[-1], flush=True)
        crit = Criteria(min_matched=6)
        t_a, a = timed(filter_dataset, src, tmp / 'fd', crit)
        t_b, b = timed(filter_shards, sh, tmp / 'fs', crit)
        assert a['selected'] == b['selected']
        rows.append(('filter --min-matched 6 (s)', f'{t_a:.2f}', f'{t_b:.2f}',
                     f'{t_a / t_b:.1f}x ({a["selected"]} kept)'))
        try:
            from assoc_logger_ros.shards.fleet import select_to_shards
            t_c, c = timed(select_to_shards, [sh], 'matched_pairs >= 6', tmp / 'fq')
            assert c['selected'] == a['selected']
            rows.append(('  same via DuckDB select (s)', '-', f'{t_c:.2f}', ''))
        except ImportError:
            pass
        for f in ('fd', 'fs', 'fq'):
            shutil.rmtree(tmp / f, ignore_errors=True)
        print(rows[-1], flush=True)
        stride = max(1, args.samples // args.dir_subset) if args.dir_subset else 1
        sub = src
        if stride > 1:
            sub = tmp / 'dir_subset'
            link_subset(src, sub, stride)
        t_dir, n_sub = timed(dir_pass, src, stride)
        what = f' ({n_sub} of {args.samples}, every {stride}th)' if stride > 1 else ''
        base = n_sub / t_dir
        rows.append((f'full pass warm: directory np.load per file{what} (samples/s)',
                     f'{base:.0f}', '-', ''))
        print(rows[-1], flush=True)
        warm = {f'directory, fast decode{what}': (n_sub, timed(dir_fast_pass, sub)[0])}
        if not args.skip_numpy:
            warm['shards, np.load'] = (args.samples, timed(shard_pass, sh, 'numpy')[0])
        warm['shards, fast decode, all samples'] = (args.samples,
                                                    timed(shard_pass, sh, 'fast')[0])
        for name, (n, t) in warm.items():
            rows.append((f'full pass warm: {name} (samples/s)', f'{base:.0f}',
                         f'{n / t:.0f}', f'{n / t / base:.1f}x'))
        print(rows[-len(warm):], flush=True)
        if not args.skip_trainer:
            t_tdir, n_dir = timed(trainer_pass, sub)
            base_t = n_sub / t_tdir
            if stride == 1:
                t_tsh, n_sh = timed(trainer_pass, sh)
                assert n_dir == n_sh
                rows.append(('trainer input: shards, in-memory recipe (samples/s)',
                             f'{base_t:.0f}', f'{args.samples / t_tsh:.0f}',
                             f'{t_tdir / t_tsh:.1f}x'))
            t_tst, (n_read, n_st) = timed(stream_pass, sh, args.workers)
            assert n_read == args.samples, (n_read, args.samples)
            rows.append((f'trainer input: directory in-memory recipe{what} vs shards, --stream '
                         f'{args.workers} workers, all samples (samples/s)', f'{base_t:.0f}',
                         f'{args.samples / t_tst:.0f}', f'{args.samples / t_tst / base_t:.1f}x'))
            print(rows[-2:], flush=True)
        if not args.skip_cold:
            evict(src)
            t_dir, _ = timed(dir_pass, src)
            evict(src)
            t_dfast, _ = timed(dir_fast_pass, src)
            evict(sh)
            t_sh, _ = timed(shard_pass, sh, 'fast')
            for name, t in (('directory, fast decode', t_dfast), ('shards, fast decode', t_sh)):
                rows.append((f'full pass cold: {name} (samples/s)',
                             f'{args.samples / t_dir:.0f}', f'{args.samples / t:.0f}',
                             f'{t_dir / t:.1f}x'))
            print(rows[-2:], flush=True)
        shutil.rmtree(src)
        big = sh
        if args.samples < args.index_rows:
            shutil.rmtree(sh)
            big = tmp / 'million'
            million_index(big, args.index_rows)
        t_in, s = timed(summarize_any, big, load=False)
        n_big = args.samples if big == sh else args.index_rows
        assert s['samples'] == n_big and s.get('index') == 'parquet'
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, '-m', 'assoc_logger_ros', 'inspect',
                               '--no-validate', str(big)], capture_output=True, text=True,
                              cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        t_cli = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stderr
        rows.append((f'inspect --no-validate, {n_big} rows Parquet (s)', '-',
                     f'{t_in:.2f}', f'CLI end to end {t_cli:.2f} s'))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f'| {args.samples} samples | directory (baseline of the row) | shards | ratio |')
    print('|---|---:|---:|---|')
    for r in rows:
        print('| ' + ' | '.join(r) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
