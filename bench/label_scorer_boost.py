"""Boosted trees as a per-pair label scorer, leave one MOT17 sequence out (an experiment).

Gradient boosting (logistic loss, numpy only) of small trees over quantile bins of the per-pair
keys and ``ctx_*`` values; a NaN goes to the side of each split that fits best, so no imputing.
For each sequence: fit on the other six, set the score threshold there to keep ``--kept`` of
the right labels under both definitions, score the held-out sequence; the rows pool the seven
held-out sequences. ``--target`` picks what "wrong" means in training (either definition, or
the consistent one only). Samples come from ``bench/label_quality.py --work DIR`` (run it
first); the per-pair table is cached as DIR/pairs_v3.npz. ``--extra`` adds ``match_stage`` and
the same track's previous and next pair's keys; ``--in-sample`` also fits and scores on all;
``--retrack`` adds the re-tracking keys (``ctx_retrack_*``, ``dataset/retrack.py``);
``--without KEY ..`` leaves keys out. ``--nested`` chooses, for each held-out sequence, between
the features with and without the overlap keys (``OVERLAP_KEYS``) by the same leave-one-out
on its six training sequences only, so the choice never sees the sequence it is scored on.

    PYTHONPATH=. .venv/bin/python bench/label_scorer_boost.py --work /tmp/lq_s10
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assoc_logger_ros.dataset.label_filter import PRESETS, keep_mask  # noqa: E402
from assoc_logger_ros.dataset.labels import CORRECT, WRONG, score_directory  # noqa: E402
from assoc_logger_ros.dataset.track_context import RETRACK_KEYS  # noqa: E402
from bench.label_quality import CONTEXT, SEQS, SINGLE, row  # noqa: E402

FEATURES = tuple(dict.fromkeys(k for k, _ in SINGLE + CONTEXT if k not in RETRACK_KEYS))
DEFS = ('verdict', 'verdict_consistent')
OVERLAP_KEYS = ('ctx_overlap', 'ctx_separation', 'ctx_since_overlap', 'ctx_swap')
BINS = 32


def load_pairs(work: Path, seqs: list[str], cache_name: str = 'pairs_v3.npz'
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Pooled per-pair table and each row's sequence (cached in work/``cache_name``)."""
    cache = work / cache_name
    if cache.exists():
        z = dict(np.load(cache, allow_pickle=False))
        seq_of = z.pop('_seq')
        if sorted(set(seq_of)) == sorted(seqs):
            return z, seq_of
    tables, by_seq = [], []
    for seq in seqs:
        _, pairs, _ = score_directory(work / 'samples' / seq, pairs=True, context=True,
                                      retrack=True)
        tables.append(pairs)
        by_seq.append(np.full(pairs['verdict'].size, seq))
    pairs = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}
    seq_of = np.concatenate(by_seq)
    np.savez(cache, _seq=seq_of, **{k: v for k, v in pairs.items() if v.dtype != object})
    return pairs, seq_of


SHIFTED = ('pair_col_margin', 'pair_row_margin', 'pair_iou', 'ctx_resid', 'pair_rival_det_iou',
           'det_scores', 'det_visibility')


def add_shifted(pairs: dict[str, np.ndarray], seq_of: np.ndarray) -> tuple[str, ...]:
    """Add the same track's previous and next labelled pair's keys (no GT); their names."""
    order = np.lexsort((pairs['sample'], pairs['track'], seq_of))
    same_prev = np.zeros(order.size, bool)
    same_prev[1:] = ((seq_of[order][1:] == seq_of[order][:-1])
                     & (pairs['track'][order][1:] == pairs['track'][order][:-1]))
    names = []
    for key in SHIFTED:
        x = pairs[key].astype(np.float64)[order]
        prev, nxt = np.full(x.size, np.nan), np.full(x.size, np.nan)
        prev[1:] = np.where(same_prev[1:], x[:-1], np.nan)
        nxt[:-1] = np.where(same_prev[1:], x[1:], np.nan)
        for tag, v in (('prev', prev), ('next', nxt)):
            out = np.empty(x.size)
            out[order] = v
            pairs[f'{tag}_{key}'] = out
            names.append(f'{tag}_{key}')
    return tuple(names)


def matrix(pairs: dict[str, np.ndarray], features: tuple[str, ...]) -> np.ndarray:
    return np.stack([pairs[k].astype(np.float64) for k in features], axis=1)


def bin_edges(x: np.ndarray) -> list[np.ndarray]:
    """Per feature: unique training quantiles (a value <= edges[k] falls in bin <= k)."""
    qs = np.linspace(0, 1, BINS + 1)[1:-1]
    out = []
    for j in range(x.shape[1]):
        col = x[:, j][np.isfinite(x[:, j])]
        out.append(np.unique(np.quantile(col, qs)) if col.size else np.zeros(0))
    return out


def to_bins(x: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    b = np.empty(x.shape, np.int64)
    for j, e in enumerate(edges):
        b[:, j] = np.searchsorted(e, x[:, j], side='left')
        b[~np.isfinite(x[:, j]), j] = BINS   # the NaN bin
    return b


def best_split(b: np.ndarray, g: np.ndarray, h: np.ndarray, lam: float, min_h: float
               ) -> tuple[float, int, int, bool] | None:
    """(gain, feature, bin k, nan_left) of the best split 'bin <= k' of one node."""
    n, f = b.shape
    flat = (b + np.arange(f) * (BINS + 1)).ravel()
    gs = np.bincount(flat, np.repeat(g, f), f * (BINS + 1)).reshape(f, BINS + 1)
    hs = np.bincount(flat, np.repeat(h, f), f * (BINS + 1)).reshape(f, BINS + 1)
    gt, ht = g.sum(), h.sum()
    base = gt * gt / (ht + lam)
    gl, hl = np.cumsum(gs[:, :BINS - 1], axis=1), np.cumsum(hs[:, :BINS - 1], axis=1)
    best = None
    for nan_left in (False, True):
        gl2 = gl + (gs[:, BINS:] if nan_left else 0)
        hl2 = hl + (hs[:, BINS:] if nan_left else 0)
        gr, hr = gt - gl2, ht - hl2
        gain = gl2 ** 2 / (hl2 + lam) + gr ** 2 / (hr + lam) - base
        gain[(hl2 < min_h) | (hr < min_h)] = -np.inf
        j, k = np.unravel_index(np.argmax(gain), gain.shape)
        if np.isfinite(gain[j, k]) and (best is None or gain[j, k] > best[0]):
            best = (float(gain[j, k]), int(j), int(k), nan_left)
    return best if best is not None and best[0] > 0 else None


def fit_tree(b: np.ndarray, g: np.ndarray, h: np.ndarray, depth: int, lam: float,
             min_h: float, lr: float) -> list:
    """Nested list tree: [feature, bin, nan_left, left, right] or a float leaf value."""
    split = best_split(b, g, h, lam, min_h) if depth > 0 else None
    if split is None:
        return float(-lr * g.sum() / (h.sum() + lam))
    _, j, k, nan_left = split
    left = (b[:, j] <= k) if not nan_left else ((b[:, j] <= k) | (b[:, j] == BINS))
    return [j, k, nan_left,
            fit_tree(b[left], g[left], h[left], depth - 1, lam, min_h, lr),
            fit_tree(b[~left], g[~left], h[~left], depth - 1, lam, min_h, lr)]


def tree_predict(tree: list | float, b: np.ndarray) -> np.ndarray:
    if not isinstance(tree, list):
        return np.full(len(b), tree)
    j, k, nan_left, lt, rt = tree
    left = (b[:, j] <= k) | ((b[:, j] == BINS) & nan_left)
    out = np.empty(len(b))
    out[left] = tree_predict(lt, b[left])
    out[~left] = tree_predict(rt, b[~left])
    return out


def fit_boost(b: np.ndarray, y: np.ndarray, rounds: int, depth: int, lr: float,
              pos_weight: float, lam: float = 1.0, min_h: float = 2.0
              ) -> tuple[float, list]:
    """(base score, trees) of logistic-loss gradient boosting on binned features."""
    w = np.where(y > 0, pos_weight, 1.0)
    p0 = float(np.clip(np.average(y, weights=w), 1e-6, 1 - 1e-6))
    base = float(np.log(p0 / (1 - p0)))
    f = np.full(len(y), base)
    trees = []
    for _ in range(rounds):
        p = 1 / (1 + np.exp(-f))
        g, h = w * (p - y), w * p * (1 - p)
        tree = fit_tree(b, g, h, depth, lam, min_h, lr)
        trees.append(tree)
        f += tree_predict(tree, b)
    return base, trees


def predict(model: tuple[float, list], b: np.ndarray) -> np.ndarray:
    base, trees = model
    return base + sum(tree_predict(t, b) for t in trees)


def threshold(s: np.ndarray, pairs: dict[str, np.ndarray], kept: float) -> float:
    """Smallest score threshold keeping ``kept`` of the right labels under both definitions."""
    return max(float(np.quantile(s[pairs[d] == CORRECT], kept)) for d in DEFS)


def held_out(x: np.ndarray, y: np.ndarray, known: np.ndarray, seq_of: np.ndarray,
             pairs: dict[str, np.ndarray], seqs: list[str], kept: list[float],
             args: argparse.Namespace, tests: list[str] | None = None
             ) -> dict[float, np.ndarray]:
    """Per kept share: the pairs removed held out.

    Each of ``tests`` (default ``seqs``) is scored by a model fitted on the rest of ``seqs``.
    """
    out = {k: np.zeros(y.size, bool) for k in kept}
    for seq in tests or seqs:
        test, train = seq_of == seq, np.isin(seq_of, seqs) & (seq_of != seq)
        edges = bin_edges(x[train])
        b_tr, b_te = to_bins(x[train], edges), to_bins(x[test], edges)
        fit = known[train]
        model = fit_boost(b_tr[fit], y[train][fit], args.rounds, args.depth, args.lr,
                          args.pos_weight)
        s_tr, s_te = predict(model, b_tr), predict(model, b_te)
        tr = {k: v[train] for k, v in pairs.items() if k in DEFS}
        for share, o in out.items():
            o[test] = s_te > threshold(s_tr, tr, share)
    return out


def removed_at(removed: np.ndarray, pairs: dict[str, np.ndarray], mask: np.ndarray) -> float:
    """Share of the consistent wrong labels in ``mask`` that ``removed`` takes out."""
    bad = (pairs['verdict_consistent'] == WRONG) & mask
    return float(removed[bad].mean()) if bad.any() else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work', type=Path, default=Path('/tmp/label_quality'))
    parser.add_argument('--seqs', nargs='+', default=list(SEQS))
    parser.add_argument('--kept', type=float, nargs='+', default=[0.95, 0.96, 0.97])
    parser.add_argument('--rounds', type=int, default=100)
    parser.add_argument('--depth', type=int, default=2)
    parser.add_argument('--lr', type=float, default=0.1)
    parser.add_argument('--pos-weight', type=float, default=10.0)
    parser.add_argument('--target', choices=('either', 'consistent', 'per_frame'),
                        default='either')
    parser.add_argument('--extra', action='store_true',
                        help="add match_stage and the track's previous/next pair's keys")
    parser.add_argument('--retrack', action='store_true',
                        help='add the re-tracking keys ctx_retrack_* (dataset/retrack.py)')
    parser.add_argument('--without', nargs='+', default=[], metavar='KEY',
                        help='leave these keys out of the features')
    parser.add_argument('--nested', action='store_true',
                        help='choose with or without OVERLAP_KEYS per held-out sequence by '
                        'leave-one-out on its training sequences (the first --kept share)')
    parser.add_argument('--in-sample', action='store_true',
                        help='also fit on all seven and score them (not held out)')
    args = parser.parse_args()
    t0 = time.time()
    pairs, seq_of = load_pairs(args.work, args.seqs)
    bad = {'either': (pairs['verdict'] == WRONG) | (pairs['verdict_consistent'] == WRONG),
           'consistent': pairs['verdict_consistent'] == WRONG,
           'per_frame': pairs['verdict'] == WRONG}[args.target]
    known = np.zeros(bad.size, bool)
    for d in DEFS:
        known |= np.isin(pairs[d], (CORRECT, WRONG))
    feats = FEATURES + (RETRACK_KEYS if args.retrack else ())
    feats = tuple(k for k in feats if k not in args.without)
    if args.extra:
        feats = feats + ('match_stage',) + add_shifted(pairs, seq_of)
    x = matrix(pairs, feats)
    y = bad.astype(np.float64)
    picks = []
    if not args.nested:
        out = held_out(x, y, known, seq_of, pairs, args.seqs, args.kept, args)
    else:
        plain = [j for j, k in enumerate(feats) if k not in OVERLAP_KEYS]
        out = {k: np.zeros(bad.size, bool) for k in args.kept}
        for seq in args.seqs:
            inner = [s for s in args.seqs if s != seq]
            mask = np.isin(seq_of, inner)
            score = {name: removed_at(held_out(xs, y, known, seq_of, pairs, inner,
                                               args.kept[:1], args)[args.kept[0]], pairs, mask)
                     for name, xs in (('with', x), ('without', x[:, plain]))}
            pick = max(score, key=score.get)
            picks.append(f'{seq}: {pick} overlap keys (inner {100 * score["with"]:.1f}% '
                         f'with, {100 * score["without"]:.1f}% without)')
            xs = x if pick == 'with' else x[:, plain]
            chosen = held_out(xs, y, known, seq_of, pairs, args.seqs, args.kept, args,
                              tests=[seq])
            for kept, o in out.items():
                o[seq_of == seq] = chosen[kept][seq_of == seq]
    matched = np.ones(bad.size, bool)
    keep = keep_mask(pairs, pairs['det_visibility'], pairs['det_scores'], matched,
                     PRESETS['recommended'])
    print(f'## Leave one sequence out, boosted trees (depth {args.depth}, {args.rounds} rounds, '
          f'lr {args.lr}, positive weight {args.pos_weight}, target {args.target}, '
          f'{len(feats)} features)')
    print('| filter | per-frame: wrong removed | right kept | consistent: wrong removed '
          '| right kept |')
    print('|---|---:|---:|---:|---:|')
    print(row('preset `recommended` (tuned on all seven: not held out)', ~keep, pairs))
    label = 'nested choice of the overlap keys, ' if args.nested else ''
    for kept, o in out.items():
        print(row(f'boosted, {label}threshold keeping {100 * kept:g}% in training, held out',
                  o, pairs))
    for line in picks:
        print(f'- {line}')
    if args.in_sample:
        edges = bin_edges(x)
        b = to_bins(x, edges)
        model = fit_boost(b[known], y[known], args.rounds, args.depth, args.lr,
                          args.pos_weight)
        s = predict(model, b)
        for kept in args.kept:
            print(row(f'boosted, fitted on all seven, keeping {100 * kept:g}% (in-sample)',
                      s > threshold(s, pairs, kept), pairs))
    print(f'\n({time.time() - t0:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
