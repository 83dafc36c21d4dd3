"""What each ``filter --label-preset`` costs: wall time and peak memory, against ``per-frame``.

``per-frame`` reads each sample once; ``session`` reads the whole session first (the ``ctx_*``
evidence of ``dataset/track_context.py``); ``recommended`` also tracks each session again five
times (``dataset/retrack.py``); ``recommended --jobs N`` rows run those re-tracking runs in N
worker processes (``--jobs``; 0 is one per CPU). Each run is its own child process
(``python -m assoc_logger_ros filter DIR --out TMP --label-preset P``), which reports its own
wall time and peak RSS, and the largest peak RSS of its worker processes; the table gives
medians of ``--repeats`` runs and ratios to ``per-frame`` in the same run.

Input: ``--dir`` (a sample directory, e.g. ``/tmp/lq/samples/MOT17-02`` from
``bench/label_quality.py``), else a generated scene (``--frames``, ``--walkers``), recorded
with the package's own pipeline first.

    PYTHONPATH=. .venv/bin/python bench/filter_presets_bench.py [--dir DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assoc_logger_ros.dataset.label_filter import PRESETS  # noqa: E402

CHILD = """
import json, resource, sys, time
from assoc_logger_ros import cli
t0 = time.perf_counter()
rc = cli.main(sys.argv[1:])
print(json.dumps({"rc": rc, "s": time.perf_counter() - t0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def generated(directory: Path, frames: int, walkers: int) -> Path:
    """A generated scene recorded by the pipeline (no ROS, no bench data)."""
    from assoc_logger_ros.sim.record import record_scene
    from assoc_logger_ros.sim.scene import SceneConfig
    return record_scene(directory, SceneConfig(seed=1, num_frames=frames, num_walkers=walkers))


def run(src: Path, out: Path, config: str) -> dict[str, float]:
    preset, _, jobs = config.partition(' --jobs ')
    cmd = [sys.executable, '-c', CHILD, 'filter', str(src), '--out', str(out),
           '--label-preset', preset, *(['--jobs', jobs] if jobs else [])]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, 'PYTHONPATH': str(ROOT)})
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result['rc'] != 0:
        raise SystemExit(f'filter --label-preset {preset} failed: {proc.stderr.strip()}')
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dir', type=Path, help='sample directory (default: a generated scene)')
    parser.add_argument('--frames', type=int, default=600)
    parser.add_argument('--walkers', type=int, default=30)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--jobs', type=int, nargs='*', default=[2],
                        help='worker processes for the extra recommended rows (default: 2)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = args.dir or generated(Path(tmp) / 'scene', args.frames, args.walkers)
        if not (src / 'manifest.jsonl').exists():
            print(f'no samples at {src}')
            return 1
        samples = sum(1 for _ in (src / 'manifest.jsonl').open())
        order = (['per-frame'] + sorted(set(PRESETS) - {'per-frame'})
                 + [f'recommended --jobs {n}' for n in args.jobs])
        results: dict[str, list[dict[str, float]]] = {p: [] for p in order}
        for k in range(args.repeats):       # interleaved, so drift hits every preset alike
            for i, config in enumerate(order):
                results[config].append(run(src, Path(tmp) / f'out-{i}-{k}', config))
        base = {m: statistics.median(r[m] for r in results['per-frame']) for m in ('s', 'rss_mb')}
        print(f'## filter --label-preset P on {src} ({samples} samples), '
              f'median of {args.repeats} runs')
        print(f'({os.cpu_count()} CPUs)')
        print('| preset | wall s | x per-frame | peak RSS MB | x per-frame | worker peak MB |')
        print('|---|---:|---:|---:|---:|---:|')
        for config in order:
            s = statistics.median(r['s'] for r in results[config])
            mb = statistics.median(r['rss_mb'] for r in results[config])
            workers = statistics.median(r['worker_mb'] for r in results[config])
            print(f'| {config} | {s:.2f} | {s / base["s"]:.2f} | {mb:.0f} | '
                  f'{mb / base["rss_mb"]:.2f} | {workers:.0f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
