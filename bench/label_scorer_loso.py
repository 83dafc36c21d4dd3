"""Learned per-pair label scorer vs the greedy rule, leave one MOT17 sequence out.

An experiment, not a shipped filter: a logistic regression (numpy, Newton steps, L2) over the
per-pair keys and ``ctx_*`` values (NaN -> training median plus a missing flag, clipped to the
training 1st..99th percentile, standardised), target "wrong under either definition". For each
sequence it is fitted on the other six, its threshold set there to keep 95% of the right labels
under both definitions, then it scores the held-out sequence; the rows pool the seven held-out
sequences. ``--with-greedy`` runs the preset's greedy tuning the same way (slow). Samples come
from ``bench/label_quality.py --work DIR`` (run it first; nothing is written here).

    PYTHONPATH=. .venv/bin/python bench/label_scorer_loso.py --work /tmp/lq_s9 [--with-greedy]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assoc_logger_ros.dataset.label_filter import PRESETS, keep_mask  # noqa: E402
from assoc_logger_ros.dataset.labels import CORRECT, WRONG, score_directory  # noqa: E402
from assoc_logger_ros.dataset.track_context import RETRACK_KEYS  # noqa: E402
from bench.label_quality import CONTEXT, SEQS, SINGLE, apply_rule, greedy, row  # noqa: E402

FEATURES = tuple(dict.fromkeys(k for k, _ in SINGLE + CONTEXT if k not in RETRACK_KEYS))
DEFS = ('verdict', 'verdict_consistent')


def design(pairs: dict[str, np.ndarray], stats: dict | None = None) -> tuple[np.ndarray, dict]:
    """(N, F) standardised features with missing flags; ``stats`` from the training part."""
    raw = np.stack([pairs[k].astype(np.float64) for k in FEATURES], axis=1)
    miss = ~np.isfinite(raw)
    if stats is None:
        lo = np.nanpercentile(raw, 1, axis=0)
        hi = np.nanpercentile(raw, 99, axis=0)
        med = np.nanmedian(raw, axis=0)
        flags = miss.any(axis=0)
        stats = {'lo': lo, 'hi': hi, 'med': med, 'flags': flags}
    x = np.where(miss, stats['med'], raw)
    x = np.clip(x, stats['lo'], stats['hi'])
    x = np.concatenate([x, miss[:, stats['flags']].astype(np.float64)], axis=1)
    if 'mu' not in stats:
        stats['mu'], stats['sd'] = x.mean(axis=0), x.std(axis=0) + 1e-9
    return (x - stats['mu']) / stats['sd'], stats


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 25) -> np.ndarray:
    """Class-balanced L2 logistic regression by Newton steps; returns weights (bias last)."""
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    w_cls = np.where(y, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    w = np.zeros(xb.shape[1])
    reg = l2 * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        g = xb.T @ (w_cls * (p - y)) / len(y) + reg @ w / len(y)
        h = (xb * (w_cls * p * (1 - p))[:, None]).T @ xb / len(y) + reg / len(y)
        w -= np.linalg.solve(h, g)
    return w


def score(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x @ w[:-1] + w[-1]


def threshold(s: np.ndarray, pairs: dict[str, np.ndarray], kept: float = 0.95) -> float:
    """Smallest score threshold keeping ``kept`` of the right labels under both definitions."""
    return max(float(np.quantile(s[pairs[d] == CORRECT], kept)) for d in DEFS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work', type=Path, default=Path('/tmp/label_quality'))
    parser.add_argument('--seqs', nargs='+', default=list(SEQS))
    parser.add_argument('--with-greedy', action='store_true')
    parser.add_argument('--kept', type=float, nargs='+', default=[0.95],
                        help='share of right labels the training threshold keeps')
    args = parser.parse_args()
    tables, by_seq = [], []
    for seq in args.seqs:
        d = args.work / 'samples' / seq
        if not (d / 'manifest.jsonl').exists():
            print(f'no samples at {d}; run bench/label_quality.py --work {args.work} first')
            return 1
        _, pairs, _ = score_directory(d, pairs=True, context=True)
        tables.append(pairs)
        by_seq.append(np.full(pairs['verdict'].size, seq))
    pairs = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}
    seq_of = np.concatenate(by_seq)
    y_all = (pairs['verdict'] == WRONG) | (pairs['verdict_consistent'] == WRONG)
    known = np.zeros(y_all.size, bool)
    for d in DEFS:
        known |= np.isin(pairs[d], (CORRECT, WRONG))
    learned = {k: np.zeros(y_all.size, bool) for k in args.kept}
    rule_out = np.zeros(y_all.size, bool)
    for seq in args.seqs:
        test, train = seq_of == seq, seq_of != seq
        tr = {k: v[train] for k, v in pairs.items()}
        x_tr, stats = design(tr)
        w = fit_logistic(x_tr[known[train]], y_all[train][known[train]].astype(np.float64))
        x_te, _ = design({k: v[test] for k, v in pairs.items()}, stats)
        for kept, out in learned.items():
            out[test] = score(x_te, w) > threshold(score(x_tr, w), tr, kept)
        if args.with_greedy:
            rule_out[test] = apply_rule({k: v[test] for k, v in pairs.items()}, greedy(tr))
    matched = np.ones(y_all.size, bool)
    keep = keep_mask(pairs, pairs['det_visibility'], pairs['det_scores'], matched,
                     PRESETS['recommended'])
    print(f'## Leave one sequence out ({len(args.seqs)} folds, pooled held-out scores)')
    print('| filter | per-frame: wrong removed | right kept | consistent: wrong removed '
          '| right kept |')
    print('|---|---:|---:|---:|---:|')
    print(row('preset `recommended` (tuned on all seven: not held out)', ~keep, pairs))
    for kept, out in learned.items():
        print(row(f'logistic scorer, threshold keeping {100 * kept:g}% in training, held out',
                  out, pairs))
    if args.with_greedy:
        print(row('greedy rule, held out', rule_out, pairs))
    return 0


if __name__ == '__main__':
    sys.exit(main())
