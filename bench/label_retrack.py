"""Re-tracking votes as label evidence on MOT17: each threshold, alone and with the preset.

The keys are the package's own ``ctx_retrack_votes``, ``ctx_retrack_splits`` and
``ctx_window_retrack_votes`` (``assoc_logger_ros/dataset/retrack.py``: the session's
detections tracked again, offline, in five other runs; no ground truth). Ground truth only
scores: the share of wrong labels each threshold removes and of right labels it keeps, alone
and joined to the ``session`` preset (the one without re-tracking). Samples come from
``bench/label_quality.py --work DIR`` (run it first); the per-pair table is the one
``bench/label_scorer_boost.py`` caches in DIR.

    PYTHONPATH=. .venv/bin/python bench/label_retrack.py --work /tmp/label_quality
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assoc_logger_ros.dataset.label_filter import PRESETS, keep_mask  # noqa: E402
from assoc_logger_ros.dataset.retrack import RUNS  # noqa: E402
from assoc_logger_ros.dataset.track_context import RETRACK_KEYS  # noqa: E402
from bench.label_quality import SEQS, row  # noqa: E402
from bench.label_scorer_boost import load_pairs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work', type=Path, default=Path('/tmp/label_quality'))
    parser.add_argument('--seqs', nargs='+', default=list(SEQS))
    args = parser.parse_args()
    if not (args.work / 'samples').is_dir():
        print(f'no samples under {args.work}; run bench/label_quality.py --work {args.work}')
        return 1
    t0 = time.time()
    pairs, _ = load_pairs(args.work, args.seqs)
    matched = np.ones(pairs['verdict'].size, bool)
    keep = keep_mask(pairs, pairs['det_visibility'], pairs['det_scores'], matched,
                     PRESETS['recommended'])
    rest = keep_mask(pairs, pairs['det_visibility'], pairs['det_scores'], matched,
                     PRESETS['session'])
    print(f'## Re-tracking runs that disagree with a label (of {RUNS}), MOT17 train')
    print('| filter | per-frame: wrong removed | right kept | consistent: wrong removed '
          '| right kept |')
    print('|---|---:|---:|---:|---:|')
    print(row('preset `recommended`', ~keep, pairs))
    print(row('preset `session` (no re-tracking)', ~rest, pairs))
    with np.errstate(invalid='ignore'):
        for key in RETRACK_KEYS:
            for t in range(1, RUNS + 1):
                flag = pairs[key] >= t
                print(row(f'{key} >= {t}', flag, pairs))
                print(row(f'preset `session` or {key} >= {t}', flag | ~rest, pairs))
    print(f'\n({time.time() - t0:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
