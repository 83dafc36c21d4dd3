"""Label quality on MOT17 train: wrong labels each filter removes, right labels it keeps.

Ground truth is used only to score. For every sequence: ``mot2bag --with-gt`` (once), then
``replay`` with defaults, then the ``labels`` scoring of every matched pair (both definitions,
see ``assoc_logger_ros/dataset/labels.py``). Then, for each filter, the share of wrong labels
it removes and of right labels it keeps:

* whole-sample filters of ``filter`` (a dropped sample removes all its pairs):
  ``--max-frame-switches 0``, ``--min-visibility 0.3``;
* each per-pair confidence key alone, at the threshold that keeps 95% of the right labels
  (chosen with ground truth: it shows how well the key separates, it is not a usable filter);
* the ``recommended`` preset of ``filter --label-preset`` (fixed thresholds, tuned on all seven
  sequences), and as a held-out check the same greedy tuning run on 02, 04 and 05 only and
  scored on the other four.

    .venv/bin/python bench/label_quality.py [--data DIR] [--work /tmp/label_quality] [--seqs ..]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import subprocess
import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assoc_logger_ros.dataset.label_filter import PRESETS, keep_mask  # noqa: E402
from assoc_logger_ros.dataset.labels import CORRECT, WRONG, score_directory  # noqa: E402
from assoc_logger_ros.dataset.switch_events import switch_events  # noqa: E402

SEQS = ('MOT17-02', 'MOT17-04', 'MOT17-05', 'MOT17-09', 'MOT17-10', 'MOT17-11', 'MOT17-13')
DET = 'det/yolox_x_ablation.txt'
SINGLE = (('pair_row_margin', '<'), ('pair_col_margin', '<'), ('pair_iou', '<'),
          ('pair_time_since_update', '>'), ('pair_track_age', '<'), ('pair_height_ratio', '>'),
          ('pair_height_ratio', '<'), ('pair_rival_track_iou', '>'), ('pair_rival_det_iou', '>'),
          ('pair_det_overlap', '>'), ('det_scores', '<'), ('det_visibility', '<'))
GREEDY = SINGLE[:4] + SINGLE[5:]


def default_data() -> Path:
    env = os.environ.get('ASSOC_BENCH_DATA')
    return Path(env) if env else Path(__file__).resolve().parents[2] / 'shared' / 'bench-data'


def collect(data: Path, work: Path, seqs: list[str], fresh: bool) -> dict[str, Path]:
    """Bag and samples of every sequence (reused when present unless ``fresh``)."""
    out = {}
    py = sys.executable
    for seq in seqs:
        src = data / 'MOT17' / 'train' / seq
        bag, samples = work / 'bags' / seq, work / 'samples' / seq
        if fresh and samples.exists():
            subprocess.run(['rm', '-rf', str(samples)], check=True)
        if not bag.exists():
            subprocess.run([py, '-m', 'assoc_logger_ros', 'mot2bag', str(src), '--det',
                            str(src / DET), '--out', str(bag), '--with-gt'], check=True,
                           stdout=subprocess.DEVNULL)
        if not (samples / 'manifest.jsonl').exists():
            subprocess.run([py, '-m', 'assoc_logger_ros', 'replay', str(bag), '--log-dir',
                            str(samples), '--quiet'], check=True, stdout=subprocess.DEVNULL)
        out[seq] = samples
    return out


def pct(x: float) -> str:
    return f'{100 * x:6.1f}%'


def row(name: str, removed: np.ndarray, pairs: dict[str, np.ndarray]) -> str:
    cells = []
    for key in ('verdict', 'verdict_consistent'):
        v = pairs[key]
        bad, ok = v == WRONG, v == CORRECT
        cells += [pct(removed[bad].mean() if bad.any() else 0.0),
                  pct(1 - removed[ok].mean() if ok.any() else 0.0)]
    return f'| {name} | ' + ' | '.join(cells) + ' |'


def fails(pairs: dict[str, np.ndarray], key: str, op: str, t: float) -> np.ndarray:
    x = pairs[key].astype(np.float64)
    with np.errstate(invalid='ignore'):
        return (x < t) if op == '<' else (x > t)


def greedy(pairs: dict[str, np.ndarray], budget: float = 0.05) -> dict[tuple[str, str], float]:
    """The preset's tuning procedure: add the threshold with the best wrong/right ratio."""
    v = pairs['verdict']
    ok, bad = v == CORRECT, v == WRONG
    removed = np.zeros(v.size, bool)
    rule: dict[tuple[str, str], float] = {}
    for _ in range(40):
        best = None
        for key, op in GREEDY:
            x = pairs[key].astype(np.float64)
            for q in np.linspace(0.002, 0.05, 25):
                t = float(np.round(np.nanquantile(x[ok], q if op == '<' else 1 - q), 2))
                new = removed | fails(pairs, key, op, t)
                if new[ok].mean() > budget:
                    continue
                gain = new[bad].mean() - removed[bad].mean()
                if gain <= 0:
                    continue
                score = gain / max(new[ok].mean() - removed[ok].mean(), 1e-4)
                if best is None or score > best[0]:
                    best = (score, key, op, t, new)
        if best is None:
            break
        _, key, op, t, removed = best
        rule[(key, op)] = t
    return rule


def apply_rule(pairs: dict[str, np.ndarray], rule: dict[tuple[str, str], float]) -> np.ndarray:
    removed = np.zeros(pairs['verdict'].size, bool)
    for (key, op), t in rule.items():
        removed |= fails(pairs, key, op, t)
    return removed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=default_data())
    parser.add_argument('--work', type=Path, default=Path('/tmp/label_quality'))
    parser.add_argument('--seqs', nargs='+', default=list(SEQS))
    parser.add_argument('--fresh', action='store_true', help='replay again even if present')
    args = parser.parse_args()
    if not (args.data / 'MOT17' / 'train').is_dir():
        print(f'bench data not found at {args.data}; set ASSOC_BENCH_DATA')
        return 1
    dirs = collect(args.data, args.work, args.seqs, args.fresh)
    tables, by_seq, scorers, reports = [], [], {}, []
    for seq, d in dirs.items():
        rep, pairs, sc = score_directory(d, pairs=True)
        reports.append((seq, rep))
        scorers.update({f'{seq}/{k}': v for k, v in sc.items()})
        tables.append(pairs)
        by_seq.append(np.full(pairs['verdict'].size, seq))
    pairs = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}
    seq_of = np.concatenate(by_seq)

    print(f'## Label accuracy, MOT17 train ({", ".join(args.seqs)}), replay defaults')
    print('| definition | verifiable | correct | wrong | flip-backs | unverifiable | missed |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for key in ('per_frame', 'consistent'):
        tot = dict.fromkeys(('verifiable', 'correct', 'wrong', 'flip_backs', 'unverifiable',
                             'missed_continuations'), 0)
        for _, rep in reports:
            for f in tot:
                tot[f] += rep['total'].get(key, {}).get(f, 0)
        acc = tot['correct'] / max(tot['verifiable'], 1)
        print(f'| {key} | {tot["verifiable"]} | {100 * acc:.2f}% | {tot["wrong"]} | '
              f'{tot["flip_backs"]} | {tot["unverifiable"]} | {tot["missed_continuations"]} |')
    ev = switch_events(scorers)
    print(f'\nest_id_switches events (+-{ev["window_samples"]} samples): {ev["confirmed"]} of '
          f'{ev["estimated_events"]} confirmed (precision {ev["precision"]}), {ev["found"]} of '
          f'{ev["true_events"]} frames with wrong labels found (recall {ev["recall"]})')

    print('\n## Filters: wrong labels removed / right labels kept')
    print('| filter | per-frame: wrong removed | right kept | consistent: wrong removed '
          '| right kept |')
    print('|---|---:|---:|---:|---:|')
    print(row('none', np.zeros(seq_of.size, bool), pairs))
    print(row('sample: --max-frame-switches 0', pairs['frame_switches'] > 0, pairs))
    print(row('sample: --min-visibility 0.3', pairs['sample_visibility'] < 0.3, pairs))
    ok = pairs['verdict'] == CORRECT
    for key, op in SINGLE:
        x = pairs[key].astype(np.float64)
        t = float(np.nanquantile(x[ok], 0.05 if op == '<' else 0.95))
        print(row(f'pair: {key} {op} {t:.3g} (GT-chosen, 95% kept)', fails(pairs, key, op, t),
                  pairs))
    preset = PRESETS['recommended']
    matched = np.ones(seq_of.size, bool)
    keep = keep_mask(pairs, pairs['det_visibility'], pairs['det_scores'], matched, preset)
    print(row('**preset `--label-preset recommended`**', ~keep, pairs))
    tune = np.isin(seq_of, ['MOT17-02', 'MOT17-04', 'MOT17-05'])
    if tune.any() and (~tune).any():
        sub = {k: v[tune] for k, v in pairs.items()}
        rest = {k: v[~tune] for k, v in pairs.items()}
        rule = greedy(sub)
        print(row('greedy rule tuned on 02/04/05, scored on the others', apply_rule(rest, rule),
                  rest))
        print(row('preset, scored on 09/10/11/13 only', ~keep[~tune], rest))
        print('\nheld-out rule: ' + ', '.join(f'{k} {op} {t}' for (k, op), t in rule.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
