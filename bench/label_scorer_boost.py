"""Boosted trees as a per-pair label scorer, leave one MOT17 sequence out.

The trees are the package's (``dataset/boost.py``, numpy only: logistic loss, small trees over
quantile bins of the per-pair keys and ``ctx_*`` values, a NaN sent to the side of each split
that fits best), what ``labels --fit-scorer`` fits. For each sequence: fit on the other six,
set the score threshold there to keep ``--kept`` of the right labels under both definitions
(``--calibrate train``: on the model's own scores of those six; ``oof``: on their out-of-fold
scores, as ``labels --fit-scorer`` does), score the held-out sequence; the rows pool the seven
held-out sequences. ``--mot15 WORK2`` (and ``--mot15-acf WORK3``) add MOT15 train, replayed the
same way, to every fit as training only: never thresholded on, never scored. ``--target`` picks
what "wrong" means in training (either definition, or one). Samples come from
``bench/label_quality.py --work DIR`` (run it first); the per-pair table is cached as
DIR/pairs_v3.npz. ``--extra`` adds ``match_stage`` and the same track's previous and next
pair's keys; ``--in-sample`` also fits and scores on all; ``--retrack`` adds the re-tracking
keys (``ctx_retrack_*``, ``dataset/retrack.py``); ``--without KEY ..`` leaves keys out.
``--nested`` chooses, for each held-out sequence, between the features with and without the
overlap keys (``OVERLAP_KEYS``) by the same leave-one-out on its six training sequences only,
so the choice never sees the sequence it is scored on.

    PYTHONPATH=. .venv/bin/python bench/label_scorer_boost.py --work /tmp/lq --retrack \
        --target consistent --kept 0.95 0.955 --without ctx_overlap ctx_separation \
        ctx_since_overlap ctx_swap --mot15 /tmp/lq15 --calibrate oof
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assoc_logger_ros.dataset import boost  # noqa: E402
from assoc_logger_ros.dataset.boost import BoostSettings  # noqa: E402
from assoc_logger_ros.dataset.label_filter import PRESETS, keep_mask  # noqa: E402
from assoc_logger_ros.dataset.label_scorer import keep_threshold, matrix, out_of_fold  # noqa: E402
from assoc_logger_ros.dataset.labels import CORRECT, WRONG, score_directory  # noqa: E402
from assoc_logger_ros.dataset.track_context import OVERLAP_KEYS, RETRACK_KEYS  # noqa: E402
from bench.label_quality import CONTEXT, SEQS, SINGLE, collect, default_data, row  # noqa: E402

FEATURES = tuple(dict.fromkeys(k for k, _ in SINGLE + CONTEXT if k not in RETRACK_KEYS))
DEFS = ('verdict', 'verdict_consistent')
MOT15_DET = 'det/sort_frcnn.txt'   # the one MOT15 detection file every train sequence has
MOT15_ACF = 'det/det.txt'          # the official public (ACF) detections, 7 of 11 sequences


def load_mot15(data: Path, work: Path, det: str = MOT15_DET
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """MOT15 train replayed like MOT17 (``mot2bag --with-gt``, ``replay``): its per-pair table."""
    root = data / 'MOT15' / 'train'
    seqs = sorted(p.name for p in root.iterdir() if (p / det).is_file())
    collect(data, work, seqs, False, 'MOT15', det)
    pairs, seq_of = load_pairs(work, seqs)
    return pairs, np.char.add(f'MOT15 {det}: ', seq_of)


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


def threshold(s: np.ndarray, pairs: dict[str, np.ndarray], kept: float) -> float:
    """Smallest score threshold keeping ``kept`` of the right labels under both definitions."""
    return keep_threshold(s, [pairs[d] for d in DEFS], kept)


def held_out(x: np.ndarray, y: np.ndarray, known: np.ndarray, seq_of: np.ndarray,
             pairs: dict[str, np.ndarray], seqs: list[str], kept: list[float],
             args: argparse.Namespace, tests: list[str] | None = None
             ) -> dict[float, np.ndarray]:
    """Per kept share: the pairs removed held out.

    Each of ``tests`` (default ``seqs``) is scored by a model fitted on the rest of ``seqs``
    and on every extra sequence (``seq_of`` not in ``SEQS``); the threshold comes from the
    rest of ``seqs`` alone: their training scores (``--calibrate train``) or their out-of-fold
    scores (``oof``, what ``labels --fit-scorer`` does).
    """
    out = {k: np.zeros(y.size, bool) for k in kept}
    extra = ~np.isin(seq_of, SEQS)
    settings = BoostSettings(args.rounds, args.depth, args.lr, args.pos_weight)
    for seq in tests or seqs:
        test = seq_of == seq
        rows = known & (np.isin(seq_of, seqs) | extra) & ~test
        cal = np.isin(seq_of[rows], seqs)
        if args.calibrate == 'oof':
            model, s_cal, _ = out_of_fold(x[rows], y[rows], seq_of[rows], cal, settings)
            s_cal = s_cal[cal]
        else:
            model = boost.fit(x[rows], y[rows], settings)
            s_cal = model.score(x[rows][cal])
        s_te = model.score(x[test])
        tr = {k: v[rows][cal] for k, v in pairs.items() if k in DEFS}
        for share, o in out.items():
            o[test] = s_te > threshold(s_cal, tr, share)
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
    parser.add_argument('--calibrate', choices=('train', 'oof'), default='train',
                        help="threshold from the training sequences' own scores, or from their "
                        'out-of-fold scores (what labels --fit-scorer does)')
    parser.add_argument('--mot15', type=Path, metavar='WORK2',
                        help='also train (never calibrate or score) on MOT15 train, replayed '
                        'into WORK2 (built there when absent)')
    parser.add_argument('--mot15-acf', type=Path, metavar='WORK3',
                        help='also train on MOT15 train with its ACF detections (det/det.txt), '
                        'replayed into WORK3')
    parser.add_argument('--data', type=Path, default=default_data())
    args = parser.parse_args()
    t0 = time.time()
    pairs, seq_of = load_pairs(args.work, args.seqs)
    for work, det in ((args.mot15, MOT15_DET), (args.mot15_acf, MOT15_ACF)):
        if work:
            p15, s15 = load_mot15(args.data, work, det)
            keys = [k for k in pairs if k in p15]
            pairs = {k: np.concatenate([pairs[k], p15[k]]) for k in keys}
            seq_of = np.concatenate([seq_of, s15])
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
    seven = np.isin(seq_of, SEQS)
    scored = {k: v[seven] for k, v in pairs.items() if k in DEFS}
    print(row('preset `recommended` (tuned on all seven: not held out)', ~keep[seven], scored))
    label = 'nested choice of the overlap keys, ' if args.nested else ''
    where = 'out of fold' if args.calibrate == 'oof' else 'in training'
    also = ''.join(f', + MOT15{tag} in training' for tag, on in
                   (('', args.mot15), (' ACF', args.mot15_acf)) if on)
    for kept, o in out.items():
        print(row(f'boosted{also}, {label}threshold keeping {100 * kept:g}% {where}, held out',
                  o[seven], scored))
    for line in picks:
        print(f'- {line}')
    if args.in_sample:
        fit = known & seven
        model = boost.fit(x[fit], y[fit], BoostSettings(args.rounds, args.depth, args.lr,
                                                        args.pos_weight))
        s = model.score(x[seven])
        for kept in args.kept:
            print(row(f'boosted, fitted on all seven, keeping {100 * kept:g}% (in-sample)',
                      s > threshold(s, scored, kept), scored))
    print(f'\n({time.time() - t0:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
