"""Bounded sample reading vs ``np.load``: the cost on real samples and on zip bombs.

Tables printed:
1. per sample size (T = D = 10, 50, 200; 256-d random embeddings, deflated): median time to
   read every array with ``np.load(allow_pickle=False)`` (the previous reader, peer) and with
   ``sample_file.load_sample`` (regular-file check, headers checked against the schema's shape
   rules and the byte cap, then inflated), and ``probe_sample`` (headers only, what filter and
   merge check before linking). Ratio = bounded / np.load.
2. zip bombs (a valid sample whose ``cost_matrix`` declares T' x D' float32 zeros that deflate
   to a few MB), each reader in its own child process: wall time and peak RSS growth. The peer
   runs on the 256 MiB and 1 GiB bombs only (the 4 GiB one took over 180 s in the issue).

Run: ``nice python bench/sample_read_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from assoc_logger_ros.recording.hostile import deflated, write_zip, zero_bomb  # noqa: E402
from assoc_logger_ros.recording.npzfile import encode, npy_header  # noqa: E402
from assoc_logger_ros.recording.sample import build  # noqa: E402
from assoc_logger_ros.recording.sample_file import load_sample, probe_sample  # noqa: E402
from assoc_logger_ros.recording.synthetic import make_snapshot  # noqa: E402


def np_load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def median_ms(fn, path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def read_table(tmp: Path, quick: bool) -> None:
    print('## 1. Reading valid samples (median ms per sample; peer np.load in the same run)')
    print(f'{"T=D":>5} {"bytes":>9} {"np.load":>9} {"bounded":>9} {"ratio":>6} {"probe":>8}')
    for n in (10, 50, 200):
        arrays = build(make_snapshot(n, n, seed=n, embed_dim=256), 'bench',
                       {'source': 'bench'}, 256).arrays
        path = tmp / f'sample_{n:07d}.npz'
        path.write_bytes(encode(arrays))
        repeats = {10: 300, 50: 200, 200: 60}[n] // (3 if quick else 1)
        for fn in (np_load, load_sample, probe_sample):  # warm-up
            fn(path)
        peer, ours, probe = [], [], []
        for _ in range(3):  # alternate so load drift hits both alike
            peer.append(median_ms(np_load, path, repeats))
            ours.append(median_ms(load_sample, path, repeats))
            probe.append(median_ms(probe_sample, path, repeats))
        p, o, q = statistics.median(peer), statistics.median(ours), statistics.median(probe)
        print(f'{n:>5} {path.stat().st_size:>9} {p:>9.3f} {o:>9.3f} {o / p:>6.2f} {q:>8.3f}')


def bomb(path: Path, side: int) -> Path:
    arrays = build(make_snapshot(6, 7, seed=1, embed_dim=8), 'bench', {'source': 'bench'},
                   16).arrays
    members = []
    for key, arr in arrays.items():
        if key == 'cost_matrix':
            header = npy_header(np.dtype('float32'), (side, side))
            members.append((f'{key}.npy', *zero_bomb(header, side * side * 4)))
        else:
            members.append((f'{key}.npy', *deflated(npy_header(arr.dtype, arr.shape)
                                                    + arr.tobytes())))
    write_zip(path, members)
    return path


_CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from assoc_logger_ros.recording.sample_file import load_sample
def np_load(p):
    with np.load(p, allow_pickle=False) as d:
        return {{k: d[k] for k in d.files}}
fn = {{'np.load': np_load, 'bounded': load_sample}}[{reader!r}]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    fn({path!r}); result = 'loaded'
except Exception as exc:
    result = type(exc).__name__
dt = time.perf_counter() - t0
print(dt, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, result)
"""


def bomb_table(tmp: Path, quick: bool) -> None:
    print('\n## 2. Zip bombs (cost_matrix of zeros; each reader in its own process)')
    print(f'{"declared":>9} {"file":>8} {"reader":>8} {"seconds":>8} {"RSS +MiB":>9} result')
    sides = (8192, 16384, 32000) if not quick else (8192, 32000)
    for side in sides:
        path = bomb(tmp / f'bomb_{side}.npz', side)
        readers = ('np.load', 'bounded') if side <= 16384 else ('bounded',)
        for reader in readers:
            code = _CHILD.format(root=str(ROOT), reader=reader, path=str(path))
            out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                                 timeout=600, check=True).stdout.split()
            print(f'{side * side * 4 / 2**30:>7.2f}Gi {path.stat().st_size / 2**20:>6.1f}Mi '
                  f'{reader:>8} {float(out[0]):>8.3f} {float(out[1]):>9.1f} {out[2]}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer repeats and bombs')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        read_table(Path(tmp), args.quick)
        bomb_table(Path(tmp), args.quick)


if __name__ == '__main__':
    main()
