"""Label quality on MOT17 train: wrong labels each filter removes, right labels it keeps.

Ground truth is used only to score. For every sequence: ``mot2bag --with-gt`` (once), then
``replay`` with defaults, then the ``labels`` scoring of every matched pair (both definitions,
see ``assoc_logger_ros/dataset/labels.py``). Then, for each filter, the share of wrong labels
it removes and of right labels it keeps:

* whole-sample filters of ``filter`` (a dropped sample removes all its pairs):
  ``--max-frame-switches 0``, ``--min-visibility 0.3``;
* each per-pair confidence key alone, at the threshold that keeps 95% of the right labels
  (chosen with ground truth: it shows how well the key separates, it is not a usable filter);
* the session-level ``ctx_*`` evidence of ``dataset/track_context.py`` the same way (computed
  from the samples alone, as ``filter`` does), the re-tracking votes included;
* the presets of ``filter --label-preset`` (fixed thresholds; ``recommended`` uses both kinds
  of evidence and was tuned on all seven sequences, ``--tune-all`` prints that rule), and as a
  held-out check the same greedy tuning run on 02, 04 and 05 only and scored on the other four
  (``--loso``: leaving each sequence out in turn);
* switch events: the live ``est_id_switches`` and the offline estimate
  (``dataset/offline_switches.py``), precision and recall, on all and on the held-out four.

    .venv/bin/python bench/label_quality.py [--data DIR] [--work /tmp/label_quality] [--seqs ..]
        [--tune-all] [--loso]
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
TUNE = ('MOT17-02', 'MOT17-04', 'MOT17-05')    # the held-out rows tune here, score the rest
SINGLE = (('pair_row_margin', '<'), ('pair_col_margin', '<'), ('pair_iou', '<'),
          ('pair_time_since_update', '>'), ('pair_track_age', '<'), ('pair_height_ratio', '>'),
          ('pair_height_ratio', '<'), ('pair_rival_track_iou', '>'), ('pair_rival_det_iou', '>'),
          ('pair_det_overlap', '>'), ('det_scores', '<'), ('det_visibility', '<'))
CONTEXT = (('ctx_resid', '>'), ('ctx_resid_prev', '>'), ('ctx_return', '>'),
           ('ctx_rival_fit', '<'), ('ctx_window', '>'), ('ctx_matches_left', '<'),
           ('ctx_window_col_margin', '<'), ('ctx_window_row_margin', '<'),
           ('ctx_window_rival_det_iou', '>'), ('ctx_window_rival_track_iou', '>'),
           ('ctx_window_rival_fit', '<'), ('ctx_retrack_votes', '>'),
           ('ctx_retrack_splits', '>'), ('ctx_window_retrack_votes', '>'),
           ('ctx_overlap', '>'), ('ctx_separation', '>'), ('ctx_since_overlap', '<'),
           ('ctx_swap', '>'))
GREEDY = SINGLE[:4] + SINGLE[5:] + CONTEXT


def default_data() -> Path:
    env = os.environ.get('ASSOC_BENCH_DATA')
    return Path(env) if env else Path(__file__).resolve().parents[2] / 'shared' / 'bench-data'


def collect(data: Path, work: Path, seqs: list[str], fresh: bool, benchmark: str = 'MOT17',
            det: str = DET) -> dict[str, Path]:
    """Bag and samples of every sequence (reused when present unless ``fresh``)."""
    out = {}
    py = sys.executable
    for seq in seqs:
        src = data / benchmark / 'train' / seq
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
    """The preset's tuning procedure: add the threshold with the best wrong/right ratio.

    Both definitions count: no right labels beyond ``budget`` may go under either, and the
    gain is the mean share of wrong labels removed under the two.
    """
    oks = [pairs[k] == CORRECT for k in ('verdict', 'verdict_consistent')]
    bads = [pairs[k] == WRONG for k in ('verdict', 'verdict_consistent')]
    ok = oks[0] | oks[1]
    removed = np.zeros(ok.size, bool)
    rule: dict[tuple[str, str], float] = {}

    def share(mask: np.ndarray, sets: list[np.ndarray]) -> float:
        return float(np.mean([mask[s].mean() for s in sets]))
    for _ in range(40):
        best = None
        for key, op in GREEDY:
            x = pairs[key].astype(np.float64)
            if not np.isfinite(x[ok]).any():
                continue
            for q in np.linspace(0.002, 0.05, 25):
                t = float(np.round(np.nanquantile(x[ok], q if op == '<' else 1 - q), 2))
                new = removed | fails(pairs, key, op, t)
                if max(new[o].mean() for o in oks) > budget:
                    continue
                gain = share(new, bads) - share(removed, bads)
                if gain <= 0:
                    continue
                score = gain / max(share(new, oks) - share(removed, oks), 1e-4)
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
    parser.add_argument('--tune-all', action='store_true',
                        help='also run the greedy tuning on all sequences (how the preset was '
                        'chosen) and print its rule')
    parser.add_argument('--loso', action='store_true',
                        help='also run the greedy tuning leaving each sequence out (7 tunings, '
                        'about 6 min): the held-out figure of the preset procedure')
    args = parser.parse_args()
    if not (args.data / 'MOT17' / 'train').is_dir():
        print(f'bench data not found at {args.data}; set ASSOC_BENCH_DATA')
        return 1
    dirs = collect(args.data, args.work, args.seqs, args.fresh)
    tables, by_seq, scorers, reports = [], [], {}, []
    for seq, d in dirs.items():
        rep, pairs, sc = score_directory(d, pairs=True, context=True,  # + ctx_*, no GT
                                         retrack=True)
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
    held = {k: v for k, v in scorers.items() if k.split('/')[0] not in TUNE}
    print(f'\n## Switch events (+-{switch_events(scorers)["window_samples"]} samples): '
          'estimated events confirmed (precision), frames with wrong labels found (recall)')
    print('| estimate | sequences | estimated | precision | true | recall |')
    print('|---|---|---:|---:|---:|---:|')
    for name, offline in (('live est_id_switches', False),
                          ('offline: est_id_switches or cross-frame jump', True)):
        for which, scs in (('all', scorers), ('09/10/11/13', held)):
            ev = switch_events(scs, offline=offline)
            print(f'| {name} | {which} | {ev["estimated_events"]} | {pct(ev["precision"] or 0)} '
                  f'| {ev["true_events"]} | {pct(ev["recall"] or 0)} |')

    print('\n## Filters: wrong labels removed / right labels kept')
    print('| filter | per-frame: wrong removed | right kept | consistent: wrong removed '
          '| right kept |')
    print('|---|---:|---:|---:|---:|')
    print(row('none', np.zeros(seq_of.size, bool), pairs))
    print(row('sample: --max-frame-switches 0', pairs['frame_switches'] > 0, pairs))
    print(row('sample: --min-visibility 0.3', pairs['sample_visibility'] < 0.3, pairs))
    ok = pairs['verdict'] == CORRECT
    for key, op in SINGLE + CONTEXT:
        x = pairs[key].astype(np.float64)
        t = float(np.nanquantile(x[ok], 0.05 if op == '<' else 0.95))
        print(row(f'pair: {key} {op} {t:.3g} (GT-chosen, 95% kept)', fails(pairs, key, op, t),
                  pairs))
    matched = np.ones(seq_of.size, bool)
    for name in sorted(PRESETS):
        k = keep_mask(pairs, pairs['det_visibility'], pairs['det_scores'], matched,
                      PRESETS[name])
        print(row(f'**preset `--label-preset {name}`**', ~k, pairs))
    keep = keep_mask(pairs, pairs['det_visibility'], pairs['det_scores'], matched,
                     PRESETS['recommended'])
    tune = np.isin(seq_of, TUNE)
    if tune.any() and (~tune).any():
        sub = {k: v[tune] for k, v in pairs.items()}
        rest = {k: v[~tune] for k, v in pairs.items()}
        rule = greedy(sub)
        print(row('greedy rule tuned on 02/04/05, scored on the others', apply_rule(rest, rule),
                  rest))
        print(row('preset, scored on 09/10/11/13 only', ~keep[~tune], rest))
        print('\nheld-out rule: ' + ', '.join(f'{k} {op} {t}' for (k, op), t in rule.items()))
    if args.loso:
        held_out = np.zeros(seq_of.size, bool)
        for seq in args.seqs:
            test = seq_of == seq
            rule = greedy({k: v[~test] for k, v in pairs.items()})
            held_out[test] = apply_rule({k: v[test] for k, v in pairs.items()}, rule)
        print(row('greedy rule, leave one sequence out (tuned on six, scored on the seventh)',
                  held_out, pairs))
    if args.tune_all:
        rule = greedy(pairs)
        print(row('greedy rule tuned on all (what the preset was chosen from)',
                  apply_rule(pairs, rule), pairs))
        print('all-sequence rule: ' + ', '.join(f'{k} {op} {t}' for (k, op), t in rule.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
