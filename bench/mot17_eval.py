"""MOT17 half-val with the reference settings: our tracker, scored by TrackEval.

Protocol: ``../shared/notes/mot-protocol.md`` (7 sequences, YOLOX-X ablation detections, frames
N//2+2..N, a fresh tracker per sequence, reference output filter, TrackEval COMBINED).
Runs the tracker with the reference settings (``tracking/reference.py``: the accuracy settings
beyond the reference off) in time mode (stamps, 1 s buffer) and in frame mode (update counts) and
prints one table; the official ByteTrack row is the number measured in the protocol note. The
defaults and the candidates are compared in ``bench/tracking_quality.py``.

    bash scripts/bench_env.sh; BENCH=/tmp/assoc_benchvenv/bin/python   # has trackeval
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. nice $BENCH bench/mot17_eval.py [--data DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
import tempfile

import numpy as np

from assoc_logger_ros import motchallenge as mc
from assoc_logger_ros.commands.evaluate import evaluate, format_table
from assoc_logger_ros.commands.mot import track_sequence
from assoc_logger_ros.config import TrackerConfig
from assoc_logger_ros.tracking.reference import reference_config

SEQS = ('MOT17-02', 'MOT17-04', 'MOT17-05', 'MOT17-09', 'MOT17-10', 'MOT17-11', 'MOT17-13')
DET = 'det/yolox_x_ablation.txt'
REFERENCE = {'HOTA': 67.80, 'MOTA': 77.79, 'IDF1': 79.89, 'IDSW': 170}


def default_data() -> Path:
    env = os.environ.get('ASSOC_BENCH_DATA')
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / 'shared' / 'bench-data'


def run_all(root: Path, cfg: TrackerConfig, out_dir: Path) -> np.ndarray:
    """Track every half sequence into ``out_dir/<SEQ>.txt``; returns all update times (s)."""
    times = []
    for seq in SEQS:
        info = mc.read_seqinfo(root / seq)
        res = track_sequence(root / seq, root / seq / DET, cfg, first_frame=info.half_val_first)
        mc.write_results(out_dir / f'{seq}.txt', res.rows)
        times.append(res.update_s)
    return np.concatenate(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=default_data())
    parser.add_argument('--modes', nargs='+', default=['time', 'frame'],
                        choices=['time', 'frame'])
    parser.add_argument('--keep', type=Path, default=None,
                        help='also keep the result files under this folder')
    args = parser.parse_args()
    root = args.data / 'MOT17' / 'train'
    if not root.is_dir():
        print(f'bench data not found at {root}; set ASSOC_BENCH_DATA')
        return 1
    with tempfile.TemporaryDirectory(prefix='mot17_') as tmp:
        results, timing = {}, {}
        for mode in args.modes:
            name = f'ours ({mode} mode)'
            out = (args.keep or Path(tmp)) / mode
            times = run_all(root, reference_config(frame_mode=(mode == 'frame')), out)
            results[name] = out
            ms = 1e3 * times
            timing[name] = {'frames': str(ms.size), 'median ms': f'{np.median(ms):.3f}',
                            'p99 ms': f'{np.percentile(ms, 99):.3f}'}
        scores = evaluate(root, results, list(SEQS), half_val=True)
    print('MOT17 half-val, TrackEval COMBINED (official ByteTrack code: HOTA 67.80, '
          'MOTA 77.79, IDF1 79.89, IDSW 170)')
    print(format_table(scores, 'COMBINED', timing))
    print('\nper sequence (HOTA / MOTA / IDF1 / IDSW):')
    for seq in SEQS:
        cells = [f'{n}: {s[seq]["HOTA"]:.2f} / {s[seq]["MOTA"]:.2f} / {s[seq]["IDF1"]:.2f} / '
                 f'{int(s[seq]["IDSW"])}' for n, s in scores.items()]
        print(f'  {seq}  ' + '   '.join(cells))
    # the reference numbers are quoted to 2 decimals: compare at that precision
    ok = all(round(s['COMBINED'][k], 2) >= REFERENCE[k]
             for s in scores.values() for k in ('HOTA', 'MOTA', 'IDF1'))
    print('target (HOTA >= 67.80, MOTA >= 77.79, IDF1 >= 79.89):', 'met' if ok else 'NOT met')
    return 0


if __name__ == '__main__':
    sys.exit(main())
