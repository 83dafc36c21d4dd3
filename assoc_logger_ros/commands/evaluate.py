"""Score MOT result files with TrackEval (HOTA, MOTA, IDF1, IDSW) over a list of sequences.

Results are ``RESULTS/<SEQ>.txt`` in MOT format with the sequences' own frame numbers (what the
``mot`` command writes). With ``--half-val`` (the MOT17 protocol of ``../shared/notes``) only
frames ``N//2+2 .. N`` are scored: ground truth and results are trimmed and renumbered so the
segment starts at frame 1, with ``seqLength = N - N//2 - 1``. Scoring is TrackEval's
``MotChallenge2DBox`` with its preprocessing (pedestrians with conf 1 are the ground truth,
predictions on distractor classes are removed) and COMBINED pools the sequences.

TrackEval is a benchmark-only dependency: ``pip install trackeval``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path
import shutil
import tempfile

import numpy as np

from assoc_logger_ros import motchallenge as mc

METRICS = ('HOTA', 'DetA', 'AssA', 'MOTA', 'IDF1', 'IDSW', 'FP', 'FN')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the command's flags."""
    parser.add_argument('--gt-root', required=True, type=Path,
                        help='folder holding one MOTChallenge sequence folder per sequence')
    parser.add_argument('--results', required=True, type=Path, action='append',
                        help='folder with <SEQ>.txt result files; repeat to compare trackers '
                             '(NAME=DIR sets the name shown)')
    parser.add_argument('--seqs', nargs='+', required=True, help='sequence folder names')
    parser.add_argument('--half-val', action='store_true',
                        help='score frames N//2+2..N only (MOT17 half-val protocol)')


class EvalError(RuntimeError):
    """Evaluation cannot run (TrackEval missing, result file missing)."""


def _import_trackeval():
    try:
        import trackeval
    except ImportError:
        raise EvalError('TrackEval is not installed (benchmark-only dependency): '
                        'pip install trackeval') from None
    return trackeval


def _write_seq(dst: Path, info: mc.SeqInfo, length: int) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    (dst / 'seqinfo.ini').write_text(
        f'[Sequence]\nname={info.name}\nimDir={info.im_dir}\nframeRate={info.frame_rate:g}\n'
        f'seqLength={length}\nimWidth={info.width}\nimHeight={info.height}\n'
        f'imExt={info.im_ext}\n', encoding='utf-8')


def _write_rows(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', encoding='utf-8') as fh:
        for r in rows:
            fh.write(','.join(str(int(v)) if i < 2 else repr(float(v))
                              for i, v in enumerate(r)) + '\n')


def evaluate(gt_root: Path, results: dict[str, Path], seqs: list[str], *,
             half_val: bool = False, benchmark: str = 'MOT17'
             ) -> dict[str, dict[str, dict[str, float]]]:
    """Score trackers; returns ``{tracker: {seq or 'COMBINED': {metric: value}}}``.

    HOTA, DetA, AssA, MOTA and IDF1 are percentages; IDSW, FP, FN are counts. ``benchmark``
    selects TrackEval's preprocessing: 'MOT17' (class and distractor rules) or 'MOT15' (every
    GT row with conf 1 is a pedestrian; MOT15 files carry no classes).
    """
    trackeval = _import_trackeval()
    with tempfile.TemporaryDirectory(prefix='assoc_eval_') as tmp_name:
        tmp = Path(tmp_name)
        seq_info = {}
        for seq in seqs:
            info = mc.read_seqinfo(gt_root / seq)
            gt = mc.read_gt(gt_root / seq / 'gt' / 'gt.txt')
            first, length = 1, info.seq_length
            if half_val:
                first = info.half_val_first
                length = info.seq_length - first + 1
                gt = mc.trim_gt(gt, first, info.seq_length)
            _write_seq(tmp / 'gt' / seq, info, length)
            _write_rows(tmp / 'gt' / seq / 'gt' / 'gt.txt', gt)
            seq_info[seq] = length
            for name, res_dir in results.items():
                res_path = Path(res_dir) / f'{seq}.txt'
                if not res_path.is_file():
                    raise EvalError(f'{res_path} not found')
                text = res_path.read_text(encoding='utf-8').strip()
                rows = (np.loadtxt(text.splitlines(), delimiter=',', ndmin=2) if text
                        else np.zeros((0, 10)))
                if half_val and rows.size:
                    rows = mc.trim_gt(rows, first, info.seq_length)
                _write_rows(tmp / 'trackers' / name / 'data' / f'{seq}.txt', rows)
        eval_cfg = {'USE_PARALLEL': False, 'PRINT_RESULTS': False, 'PRINT_CONFIG': False,
                    'TIME_PROGRESS': False, 'OUTPUT_SUMMARY': False, 'OUTPUT_DETAILED': False,
                    'PLOT_CURVES': False, 'DISPLAY_LESS_PROGRESS': True}
        ds_cfg = {'GT_FOLDER': str(tmp / 'gt'), 'TRACKERS_FOLDER': str(tmp / 'trackers'),
                  'TRACKERS_TO_EVAL': list(results), 'BENCHMARK': benchmark,
                  'SPLIT_TO_EVAL': 'train', 'SEQ_INFO': seq_info, 'SKIP_SPLIT_FOL': True,
                  'TRACKER_SUB_FOLDER': 'data', 'PRINT_CONFIG': False,
                  'OUTPUT_FOLDER': str(tmp / 'out')}
        evaluator = trackeval.Evaluator(eval_cfg)
        dataset = trackeval.datasets.MotChallenge2DBox(ds_cfg)
        metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({'PRINT_CONFIG': False}),
                   trackeval.metrics.Identity({'PRINT_CONFIG': False})]
        with contextlib.redirect_stdout(io.StringIO()):
            raw, _ = evaluator.evaluate([dataset], metrics)
        shutil.rmtree(tmp / 'out', ignore_errors=True)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, per_seq in raw['MotChallenge2DBox'].items():
        out[name] = {}
        for seq, res in per_seq.items():
            r = res['pedestrian']
            out[name]['COMBINED' if seq == 'COMBINED_SEQ' else seq] = {
                'HOTA': 100 * float(np.mean(r['HOTA']['HOTA'])),
                'DetA': 100 * float(np.mean(r['HOTA']['DetA'])),
                'AssA': 100 * float(np.mean(r['HOTA']['AssA'])),
                'MOTA': 100 * float(r['CLEAR']['MOTA']),
                'IDF1': 100 * float(r['Identity']['IDF1']),
                'IDSW': float(r['CLEAR']['IDSW']),
                'FP': float(r['CLEAR']['CLR_FP']),
                'FN': float(r['CLEAR']['CLR_FN'])}
    return out


def format_table(scores: dict[str, dict[str, dict[str, float]]], seq: str = 'COMBINED',
                 extra: dict[str, dict[str, str]] | None = None) -> str:
    """A Markdown table, one row per tracker, for one sequence (default: combined)."""
    cols = list(METRICS) + (sorted({k for v in (extra or {}).values() for k in v}))
    lines = ['| tracker | ' + ' | '.join(cols) + ' |', '|---|' + '---:|' * len(cols)]
    for name, per_seq in scores.items():
        m = per_seq[seq]
        cells = [f'{m[c]:.2f}' if c in ('HOTA', 'DetA', 'AssA', 'MOTA', 'IDF1')
                 else f'{int(m[c])}' for c in METRICS]
        cells += [(extra or {}).get(name, {}).get(c, '') for c in cols[len(METRICS):]]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _parse_results(values: list[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for v in values:
        text = str(v)
        name, sep, path = text.partition('=')
        if not sep:
            name, path = Path(text).name or 'tracker', text
        out[name] = Path(path)
    return out


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    results = _parse_results(args.results)
    for name, d in results.items():
        if not d.is_dir():
            print(f'ERROR: results folder {d} ({name}) not found')
            return 1
    try:
        scores = evaluate(args.gt_root, results, list(args.seqs), half_val=args.half_val)
    except (ValueError, EvalError) as exc:
        print(f'ERROR: {exc}')
        return 1
    for seq in list(args.seqs) + ['COMBINED']:
        print(f'\n{seq}')
        print(format_table(scores, seq))
    return 0
