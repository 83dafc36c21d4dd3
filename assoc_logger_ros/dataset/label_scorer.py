"""A learned per-pair label scorer: fitted on sessions with ground truth, applied by ``filter``.

Boosted trees (:mod:`~assoc_logger_ros.dataset.boost`) predict from a matched pair's confidence
keys and its session's ``ctx_*`` evidence (never from ground truth) whether the label is wrong;
``filter --label-scorer`` sets ``label_weights`` 0 where the score passes the threshold. The
threshold is calibrated out of fold: each calibration session is scored by a model fitted
without it and the threshold keeps ``kept`` of those sessions' right labels, so the share holds
on sessions the model has not seen (a threshold set on the model's own training scores keeps
less there). ``extra`` rows (public data, say) only train. The model file is JSON: data, never
code; :meth:`LabelScorer.load` checks every value and bounds its size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
import json
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from assoc_logger_ros.dataset import boost
from assoc_logger_ros.dataset.labels import CORRECT, WRONG
from assoc_logger_ros.dataset.track_context import CONTEXT_KEYS, OVERLAP_KEYS, RETRACK_KEYS
from assoc_logger_ros.tracking.confidence import CONFIDENCE_KEYS

FORMAT = 'assoc_logger_ros/label_scorer'
VERSION = 1
MAX_FILE_BYTES = 32 * 2**20
PAIR_KEYS = CONFIDENCE_KEYS + ('det_scores', 'det_visibility')
KNOWN_FEATURES = PAIR_KEYS + CONTEXT_KEYS
# what bench/label_scorer_boost.py measured best held out (docs/labels.md)
DEFAULT_FEATURES = tuple(k for k in KNOWN_FEATURES if k not in OVERLAP_KEYS)
DEFINITIONS = {'per_frame': 'verdict', 'consistent': 'verdict_consistent'}
LOSO_SESSIONS = 8     # up to this many calibration sessions: one fold each, else FOLDS groups
FOLDS = 5


class ScorerError(ValueError):
    """A scorer cannot be fitted from the data given, or a model file is unusable."""


@dataclass(frozen=True)
class LabelScorer:
    """Features, the fitted trees, the threshold and what the fit measured (``info``)."""

    features: tuple[str, ...]
    model: boost.Boosted
    threshold: float
    kept: float
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def needs_context(self) -> bool:
        """True when a feature is session-level ``ctx_*`` evidence."""
        return any(k.startswith('ctx_') for k in self.features)

    def needs_retrack(self) -> bool:
        """True when a feature is a re-tracking vote (the session is tracked again)."""
        return any(k in RETRACK_KEYS for k in self.features)

    def scores(self, columns: Mapping[str, Any]) -> NDArray[np.float64]:
        """Log-odds that each row's label is wrong; a key missing from ``columns`` is NaN."""
        return self.model.score(matrix(columns, self.features))

    def wrong(self, columns: Mapping[str, Any]) -> NDArray[np.bool_]:
        """True where the label scores above the threshold (set its weight to 0)."""
        return self.scores(columns) > self.threshold

    def to_json(self) -> str:
        """The model file's text."""
        return json.dumps({'format': FORMAT, 'version': VERSION, 'features': list(self.features),
                           'threshold': self.threshold, 'kept': self.kept,
                           'model': boost.to_plain(self.model), 'info': self.info}) + '\n'

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model file atomically."""
        from assoc_logger_ros.recording.atomic import write_atomic
        write_atomic(path, self.to_json().encode('utf-8'))

    @classmethod
    def from_json(cls, text: str | bytes) -> LabelScorer:
        """The scorer of a model file's text; :class:`ScorerError` saying what is wrong."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ScorerError(f'not a label scorer file (invalid JSON: {exc})') from None
        if not isinstance(data, dict) or data.get('format') != FORMAT:
            raise ScorerError(f'not a label scorer file (no "format": "{FORMAT}")')
        if data.get('version') != VERSION:
            raise ScorerError(f'label scorer version {data.get("version")!r} is not {VERSION}')
        feats = data.get('features')
        if (not isinstance(feats, list) or not 0 < len(feats) <= boost.MAX_FEATURES
                or not all(isinstance(k, str) and k in KNOWN_FEATURES for k in feats)
                or len(set(feats)) != len(feats)):
            raise ScorerError('the label scorer\'s "features" are not distinct known keys '
                              f'({", ".join(KNOWN_FEATURES)})')
        kept, info = data.get('kept'), data.get('info', {})
        try:
            model = boost.from_plain(data.get('model'), len(feats))
            thr = boost.finite(data.get('threshold'), 'the threshold')
            kept = boost.finite(kept, 'kept')
        except ValueError as exc:
            raise ScorerError(f'label scorer: {exc}') from None
        if not 0.0 < kept <= 1.0 or not isinstance(info, dict):
            raise ScorerError('label scorer: "kept" is not in (0, 1] or "info" not a mapping')
        return cls(tuple(feats), model, thr, kept, info)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelScorer:
        """Read a model file: a regular file of at most ``MAX_FILE_BYTES``."""
        from assoc_logger_ros.recording.confine import open_regular
        try:
            with os.fdopen(open_regular(path), 'rb') as fh:
                content = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ScorerError(f'cannot read the label scorer {os.fspath(path)}: '
                              f'{exc.strerror or exc}') from None
        if len(content) > MAX_FILE_BYTES:
            raise ScorerError(f'the label scorer {os.fspath(path)} is over '
                              f'{MAX_FILE_BYTES >> 20} MiB')
        return cls.from_json(content)


def matrix(columns: Mapping[str, Any], features: Sequence[str]) -> NDArray[np.float64]:
    """(N, F) float features; a missing key is a NaN column."""
    n = next((len(np.asarray(v)) for v in columns.values()), 0)
    return np.stack([np.asarray(columns[k], np.float64) if k in columns else np.full(n, np.nan)
                     for k in features], axis=1)


def keep_threshold(scores: NDArray[np.float64], verdicts: Sequence[NDArray[Any]], kept: float
                   ) -> float:
    """Smallest threshold keeping ``kept`` of the right labels under every definition given."""
    qs = [float(np.quantile(scores[v == CORRECT], kept)) for v in verdicts if (v == CORRECT).any()]
    if not qs:
        raise ScorerError('no right label to set the threshold on')
    return max(qs)


def _folds(sizes: Mapping[Any, int]) -> list[list[Any]]:
    """Calibration sessions in folds: one each up to LOSO_SESSIONS, else FOLDS balanced ones."""
    names = sorted(sizes, key=lambda s: (-sizes[s], str(s)))
    if len(names) <= LOSO_SESSIONS:
        return [[s] for s in names]
    folds: list[list[Any]] = [[] for _ in range(FOLDS)]
    for i, s in enumerate(names):      # snake order keeps the folds' sizes close
        folds[i % FOLDS if (i // FOLDS) % 2 == 0 else FOLDS - 1 - i % FOLDS].append(s)
    return folds


def out_of_fold(x: NDArray[np.float64], y: NDArray[np.float64], groups: NDArray[Any],
                calibrate: NDArray[np.bool_], settings: boost.BoostSettings
                ) -> tuple[boost.Boosted, NDArray[np.float64], str]:
    """(model fitted on every row, out-of-fold scores of the ``calibrate`` rows, how).

    Each fold of calibration sessions (``groups``) is scored by a model fitted on every other
    row; with a single calibration session the scores are in-sample, and ``how`` says so.
    """
    model = boost.fit(x, y, settings)
    sizes = {g: int((groups[calibrate] == g).sum()) for g in np.unique(groups[calibrate])}
    oof = np.full(len(y), np.nan)
    if len(sizes) < 2:
        oof[calibrate] = model.score(x[calibrate])
        return model, oof, 'in-sample (one calibration session: held out keeps fewer right labels)'
    folds = _folds(sizes)
    for fold in folds:
        test = calibrate & np.isin(groups, fold)
        train = ~np.isin(groups, fold)
        fitted = boost.fit(x[train], y[train], settings) if (y[train] > 0).any() else model
        oof[test] = fitted.score(x[test])
    return model, oof, f'out of fold ({len(folds)} folds of {len(sizes)} sessions)'


def fit_scorer(pairs: Mapping[str, NDArray[Any]], *, calibrate: NDArray[np.bool_] | None = None,
               features: Sequence[str] = DEFAULT_FEATURES, kept: float = 0.955,
               target: str = 'consistent', settings: boost.BoostSettings | None = None
               ) -> LabelScorer:
    """Fit on the per-pair table ``pairs`` and calibrate the threshold out of fold.

    ``pairs``: ``labels.score_directory(pairs=True)`` columns, whose ``group`` names each row's
    session; ``calibrate`` marks the rows whose sessions set the threshold (default all; the
    others only train). ``target``: which definition's wrong labels the trees learn
    (``consistent`` needs ``gt_boxes``; without any consistent verdict the per-frame one is used).
    """
    settings = settings or boost.BoostSettings()
    unknown = [k for k in features if k not in KNOWN_FEATURES]
    if unknown or not features:
        raise ScorerError(f'unknown features: {", ".join(unknown) or "none given"}')
    if not 0.5 <= kept < 1.0:
        raise ScorerError(f'kept {kept} is not in [0.5, 1)')
    verdicts = {name: np.asarray(pairs[col]) for name, col in DEFINITIONS.items() if col in pairs}
    known = np.zeros(len(pairs['group']), bool)
    for v in verdicts.values():
        known |= np.isin(v, (CORRECT, WRONG))
    if target == 'consistent' and not (verdicts.get('consistent', np.zeros(0)) == WRONG).any():
        target = 'per_frame'
    if target not in verdicts:
        raise ScorerError(f'no {target} verdicts in the data')
    cal = np.ones(known.size, bool) if calibrate is None else np.asarray(calibrate, bool)
    x, groups = matrix(pairs, features)[known], np.asarray(pairs['group'])[known]
    y = (verdicts[target][known] == WRONG).astype(np.float64)
    verdicts = {name: v[known] for name, v in verdicts.items()}
    cal = cal[known]
    if not (y > 0).any() or not cal.any():
        raise ScorerError('no wrong label (or no calibration label) with ground truth to fit on')
    model, oof, how = out_of_fold(x, y, groups, cal, settings)
    thr = keep_threshold(oof[cal], [v[cal] for v in verdicts.values()], kept)
    removed = oof > thr
    est = {}
    for name, v in verdicts.items():
        right, bad = cal & (v == CORRECT), cal & (v == WRONG)
        est[name] = {'right': int(right.sum()), 'wrong': int(bad.sum()),
                     'right_kept': round(float(1 - removed[right].mean()), 4) if right.any()
                     else None,
                     'wrong_removed': round(float(removed[bad].mean()), 4) if bad.any()
                     else None}
    info = {'target': target, 'calibration': how, 'settings': asdict(settings),
            'sessions': int(np.unique(groups).size),
            'calibration_sessions': int(np.unique(groups[cal]).size),
            'pairs': int(y.size), 'wrong': int(y.sum()), 'estimate': est}
    return LabelScorer(tuple(features), model, thr, kept, info)


def format_fit(scorer: LabelScorer) -> str:
    """The fit's summary, a few lines."""
    i = scorer.info
    lines = [f'label scorer: {len(scorer.features)} features, '
             f'{len(scorer.model.trees)} trees, target {i.get("target")} wrong labels; '
             f'{i.get("pairs")} pairs ({i.get("wrong")} wrong) of {i.get("sessions")} sessions',
             f'threshold {scorer.threshold:.4f}: keeps {100 * scorer.kept:g}% of the right labels '
             f'of {i.get("calibration_sessions")} calibration sessions, {i.get("calibration")}']
    for name, e in i.get('estimate', {}).items():
        if e['wrong_removed'] is not None and e['right_kept'] is not None:
            lines.append(f'  {name}: {100 * e["wrong_removed"]:.1f}% of {e["wrong"]} wrong '
                         f'removed, {100 * e["right_kept"]:.1f}% of {e["right"]} right kept')
    return '\n'.join(lines)
