"""Per-pair label filtering: ``label_weights`` from the confidence keys, frames kept whole.

A rule sets the weight of a matched detection to 0 (its ``assigned_track_ids`` entry is ignored
by the trainer) when its pair fails any given threshold; unmatched detections and pairs passing
every threshold keep weight 1. Weights already in a sample are kept where lower (filters
compose). Ground truth is never read here.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from assoc_logger_ros.dataset.retrack import RUNS as RETRACK_RUNS
from assoc_logger_ros.dataset.track_context import CONTEXT_KEYS, SEPARATION_WINDOW
from assoc_logger_ros.dataset.track_context import MATCH_WINDOW as CONTEXT_MATCH_WINDOW
from assoc_logger_ros.dataset.track_context import WINDOW as CONTEXT_WINDOW
from assoc_logger_ros.tracking.confidence import CONFIDENCE_KEYS, from_arrays

if TYPE_CHECKING:
    from assoc_logger_ros.dataset.label_scorer import LabelScorer


@dataclass(frozen=True)
class LabelRule:
    """Thresholds a matched pair must pass to keep its label; None: not checked."""

    min_row_margin: float | None = None
    min_col_margin: float | None = None
    min_pair_iou: float | None = None
    max_since_update: float | None = None
    min_height_ratio: float | None = None
    max_height_ratio: float | None = None
    max_rival_track_iou: float | None = None
    max_rival_det_iou: float | None = None
    max_det_overlap: float | None = None
    min_det_visibility: float | None = None
    min_det_score: float | None = None
    # cross-frame evidence of the whole session (dataset/track_context.py), offline only
    max_ctx_resid: float | None = None
    max_ctx_resid_prev: float | None = None
    max_ctx_return: float | None = None
    min_ctx_rival_fit: float | None = None
    max_ctx_window: float | None = None
    min_ctx_matches_left: float | None = None
    min_ctx_window_col_margin: float | None = None
    min_ctx_window_row_margin: float | None = None
    max_ctx_window_rival_det_iou: float | None = None
    max_ctx_window_rival_track_iou: float | None = None
    min_ctx_window_rival_fit: float | None = None
    max_ctx_overlap: float | None = None
    max_ctx_separation: float | None = None
    min_ctx_since_overlap: float | None = None
    max_ctx_swap: float | None = None
    # re-tracking agreement (dataset/retrack.py): the session is tracked again offline
    max_ctx_retrack_votes: float | None = None
    max_ctx_retrack_splits: float | None = None
    max_ctx_window_retrack_votes: float | None = None
    # a learned scorer (dataset/label_scorer.py, ``labels --fit-scorer``): its wrong go to 0 too
    scorer: LabelScorer | None = field(default=None, compare=False)

    def is_empty(self) -> bool:
        """True when no threshold and no scorer is set."""
        return all(getattr(self, f.name) is None for f in fields(self))

    def needs_context(self) -> bool:
        """True when a threshold or the scorer reads the session-level ``ctx_*`` evidence."""
        return (any(getattr(self, f.name) is not None for f in fields(self)
                    if '_ctx_' in f.name)
                or (self.scorer is not None and self.scorer.needs_context()))

    def needs_retrack(self) -> bool:
        """True when a threshold or the scorer reads the re-tracking votes (re-tracks)."""
        return (any(getattr(self, f.name) is not None for f in fields(self)
                    if '_retrack_' in f.name)
                or (self.scorer is not None and self.scorer.needs_retrack()))


# The recommended preset: thresholds chosen on MOT17 train replayed with the current tracker
# defaults (bench/label_quality.py --tune-all: greedy, keeping >= 95% of the right labels under
# both definitions); docs/labels.md has the figures it reaches, also held out (the same tuning
# leaving each sequence out). Its ctx_* thresholds make ``filter`` read the whole session
# first, its re-tracking ones track the session again (dataset/retrack.py).
PRESETS: dict[str, LabelRule] = {
    'recommended': LabelRule(max_ctx_retrack_splits=1.0, min_col_margin=0.25,
                             max_rival_det_iou=0.8, max_ctx_retrack_votes=3.0,
                             max_since_update=7.0, min_ctx_window_row_margin=-0.2,
                             min_ctx_window_col_margin=0.09, min_ctx_window_rival_fit=0.09,
                             min_ctx_rival_fit=0.12, max_rival_track_iou=0.79,
                             max_ctx_window_rival_det_iou=0.82,
                             max_ctx_window_rival_track_iou=0.81, min_pair_iou=0.49),
    # the previous recommended preset: session evidence without re-tracking (faster)
    'session': LabelRule(min_row_margin=0.18, min_col_margin=0.22, min_pair_iou=0.66,
                         max_since_update=7.0, min_height_ratio=0.86,
                         max_rival_det_iou=0.8, min_ctx_rival_fit=0.08,
                         min_ctx_window_col_margin=0.1, min_ctx_window_row_margin=-0.2,
                         min_ctx_window_rival_fit=0.09,
                         max_ctx_window_rival_det_iou=0.82,
                         max_ctx_window_rival_track_iou=0.81),
    # the previous preset (per-frame keys only), for samples read one at a time
    'per-frame': LabelRule(min_row_margin=0.15, min_col_margin=0.2, max_since_update=4.0,
                           min_height_ratio=0.9, max_height_ratio=1.15,
                           max_rival_track_iou=0.7, max_rival_det_iou=0.7,
                           min_det_score=0.3),
}


N_FRAME_CHECKS = 11   # keep_mask's checks before the ctx_* ones (whose NaN passes)


def confidence_of(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The sample's confidence keys, recomputed when it was written before they existed."""
    if all(k in arrays for k in CONFIDENCE_KEYS):
        return {k: np.asarray(arrays[k]) for k in CONFIDENCE_KEYS}
    return from_arrays(dict(arrays))


def keep_mask(conf: Mapping[str, np.ndarray], visibility: np.ndarray, scores: np.ndarray,
              matched: np.ndarray, rule: LabelRule) -> np.ndarray:
    """(D,) bool: True where the label is kept (every unmatched detection is kept).

    A ``ctx_*`` threshold is skipped when ``conf`` lacks that key (no session evidence); a NaN
    ``ctx_*`` value (no evidence for that pair: too short a track, no rival) passes. The rule's
    scorer, if any, removes what it scores wrong (a key it lacks is NaN to it).
    """
    ok = np.ones(matched.shape, bool)
    with np.errstate(invalid='ignore'):
        checks = (
            (rule.min_row_margin, conf['pair_row_margin'], np.greater_equal),
            (rule.min_col_margin, conf['pair_col_margin'], np.greater_equal),
            (rule.min_pair_iou, conf['pair_iou'], np.greater_equal),
            (rule.max_since_update, conf['pair_time_since_update'], np.less_equal),
            (rule.min_height_ratio, conf['pair_height_ratio'], np.greater_equal),
            (rule.max_height_ratio, conf['pair_height_ratio'], np.less_equal),
            (rule.max_rival_track_iou, conf['pair_rival_track_iou'], np.less_equal),
            (rule.max_rival_det_iou, conf['pair_rival_det_iou'], np.less_equal),
            (rule.max_det_overlap, conf['pair_det_overlap'], np.less_equal),
            (rule.min_det_visibility, visibility, np.greater_equal),
            (rule.min_det_score, scores, np.greater_equal),
            (rule.max_ctx_resid, conf.get('ctx_resid'), np.less_equal),
            (rule.max_ctx_resid_prev, conf.get('ctx_resid_prev'), np.less_equal),
            (rule.max_ctx_return, conf.get('ctx_return'), np.less_equal),
            (rule.min_ctx_rival_fit, conf.get('ctx_rival_fit'), np.greater_equal),
            (rule.max_ctx_window, conf.get('ctx_window'), np.less_equal),
            (rule.min_ctx_matches_left, conf.get('ctx_matches_left'), np.greater_equal),
            (rule.min_ctx_window_col_margin, conf.get('ctx_window_col_margin'),
             np.greater_equal),
            (rule.min_ctx_window_row_margin, conf.get('ctx_window_row_margin'),
             np.greater_equal),
            (rule.max_ctx_window_rival_det_iou, conf.get('ctx_window_rival_det_iou'),
             np.less_equal),
            (rule.max_ctx_window_rival_track_iou, conf.get('ctx_window_rival_track_iou'),
             np.less_equal),
            (rule.min_ctx_window_rival_fit, conf.get('ctx_window_rival_fit'), np.greater_equal),
            (rule.max_ctx_overlap, conf.get('ctx_overlap'), np.less_equal),
            (rule.max_ctx_separation, conf.get('ctx_separation'), np.less_equal),
            (rule.min_ctx_since_overlap, conf.get('ctx_since_overlap'), np.greater_equal),
            (rule.max_ctx_swap, conf.get('ctx_swap'), np.less_equal),
            (rule.max_ctx_retrack_votes, conf.get('ctx_retrack_votes'), np.less_equal),
            (rule.max_ctx_retrack_splits, conf.get('ctx_retrack_splits'), np.less_equal),
            (rule.max_ctx_window_retrack_votes, conf.get('ctx_window_retrack_votes'),
             np.less_equal),
        )
        for n, (limit, values, cmp) in enumerate(checks):
            if limit is not None and values is not None:
                x = np.asarray(values, np.float64)
                ok &= cmp(x, limit) | (np.isnan(x) if n >= N_FRAME_CHECKS else False)
    if rule.scorer is not None and matched.any():
        ok &= ~rule.scorer.wrong({**conf, 'det_visibility': visibility, 'det_scores': scores})
    return ok | ~matched


def label_weights(arrays: Mapping[str, np.ndarray], rule: LabelRule,
                  context: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """(D,) float32 weights for one sample under ``rule``, combined with existing ones.

    ``context``: the sample's ``ctx_*`` arrays (:mod:`~assoc_logger_ros.dataset.track_context`).
    """
    matched = np.asarray(arrays['assigned_track_ids']) >= 0
    conf = confidence_of(arrays)
    if context:
        conf.update({k: np.asarray(context[k]) for k in CONTEXT_KEYS if k in context})
    keep = keep_mask(conf, np.asarray(arrays['det_visibility']),
                     np.asarray(arrays['det_scores']), matched, rule)
    w = keep.astype(np.float32)
    if 'label_weights' in arrays:
        w = np.minimum(w, np.asarray(arrays['label_weights'], np.float32))
    return w


def relabel(arrays: dict[str, np.ndarray], rule: LabelRule,
            context: Mapping[str, np.ndarray] | None = None) -> tuple[int, int]:
    """Set ``label_weights`` (and the confidence keys a sample predates) in place.

    Returns (matched pairs, matched pairs now ignored), what ``filter`` reports.
    """
    for key, value in confidence_of(arrays).items():
        arrays.setdefault(key, value)
    weights = label_weights(arrays, rule, context)
    arrays['label_weights'] = weights
    matched = np.asarray(arrays['assigned_track_ids']) >= 0
    return int(matched.sum()), int((matched & (weights < 1.0)).sum())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Per-pair flags of ``filter`` (they set label_weights instead of dropping samples)."""
    g = parser.add_argument_group(
        'per-pair label filtering (sets label_weights 0 on failing pairs; frames are kept)')
    g.add_argument('--label-preset', choices=sorted(PRESETS),
                   help='thresholds from docs/labels.md: recommended (all evidence; tracks each '
                   'session again), session (no re-tracking, faster), per-frame (no session '
                   'pass); flags below override')
    g.add_argument('--label-scorer', metavar='MODEL',
                   help='a scorer file from `labels --fit-scorer`: label_weights 0 where it '
                   'scores the label wrong (with a preset or flags too: 0 where either fails)')
    g.add_argument('--min-row-margin', type=float, help='smallest pair_row_margin')
    g.add_argument('--min-col-margin', type=float, help='smallest pair_col_margin')
    g.add_argument('--min-pair-iou', type=float, help='smallest pair_iou')
    g.add_argument('--max-since-update', type=float, help='largest pair_time_since_update')
    g.add_argument('--min-height-ratio', type=float, help='smallest pair_height_ratio')
    g.add_argument('--max-height-ratio', type=float, help='largest pair_height_ratio')
    g.add_argument('--max-rival-track-iou', type=float, help='largest pair_rival_track_iou')
    g.add_argument('--max-rival-det-iou', type=float, help='largest pair_rival_det_iou')
    g.add_argument('--max-det-overlap', type=float, help='largest pair_det_overlap')
    g.add_argument('--min-det-visibility', type=float,
                   help='smallest det_visibility of a matched detection')
    g.add_argument('--min-det-score', type=float,
                   help='smallest det_scores of a matched detection')
    g.add_argument('--max-ctx-resid', type=float,
                   help="largest ctx_resid (distance from the track's path, session-level)")
    g.add_argument('--max-ctx-resid-prev', type=float,
                   help="largest ctx_resid of the track's previous box")
    g.add_argument('--max-ctx-return', type=float, help='largest ctx_return (flip-back)')
    g.add_argument('--min-ctx-rival-fit', type=float,
                   help="smallest ctx_rival_fit (distance to another track's path)")
    g.add_argument('--max-ctx-window', type=float,
                   help=f'largest ctx_resid of the track within {CONTEXT_WINDOW} frames')
    g.add_argument('--min-ctx-matches-left', type=float,
                   help='fewest matches the track still has after the label')
    near = f"over the track's {CONTEXT_MATCH_WINDOW} matches either side"
    g.add_argument('--min-ctx-window-col-margin', type=float,
                   help=f'smallest pair_col_margin {near}')
    g.add_argument('--min-ctx-window-row-margin', type=float,
                   help=f'smallest pair_row_margin {near}')
    g.add_argument('--max-ctx-window-rival-det-iou', type=float,
                   help=f'largest pair_rival_det_iou {near}')
    g.add_argument('--max-ctx-window-rival-track-iou', type=float,
                   help=f'largest pair_rival_track_iou {near}')
    g.add_argument('--min-ctx-window-rival-fit', type=float,
                   help=f'smallest ctx_rival_fit {near}')
    g.add_argument('--max-ctx-overlap', type=float,
                   help="largest ctx_overlap (IoU with another track's path)")
    g.add_argument('--max-ctx-separation', type=float,
                   help=f'largest ctx_separation (the overlap over the {SEPARATION_WINDOW} '
                   'matches either side minus the overlap now)')
    g.add_argument('--min-ctx-since-overlap', type=float,
                   help='fewest frames since the track last overlapped another')
    g.add_argument('--max-ctx-swap', type=float,
                   help="largest ctx_swap (> 0: the box continues the overlapped partner's "
                   "motion rather than its own track's)")
    g.add_argument('--max-ctx-retrack-votes', type=float,
                   help=f'largest ctx_retrack_votes: re-tracking runs (of {RETRACK_RUNS}) that '
                   'split the label from its track (tracks the session again)')
    g.add_argument('--max-ctx-retrack-splits', type=float,
                   help='largest ctx_retrack_splits: re-tracking runs that continue the track '
                   'elsewhere (stricter than votes)')
    g.add_argument('--max-ctx-window-retrack-votes', type=float,
                   help=f'largest ctx_retrack_votes {near}')


def from_args(args: argparse.Namespace) -> LabelRule:
    """The rule of the parsed flags: the preset (if any) with explicit flags on top.

    Raises ``label_scorer.ScorerError`` when ``--label-scorer`` names an unusable file.
    """
    rule = PRESETS[args.label_preset] if getattr(args, 'label_preset', None) else LabelRule()
    given: dict[str, object] = {f.name: getattr(args, f.name) for f in fields(LabelRule)
                                if f.name != 'scorer' and getattr(args, f.name, None) is not None}
    if getattr(args, 'label_scorer', None):
        from assoc_logger_ros.dataset.label_scorer import LabelScorer
        given['scorer'] = LabelScorer.load(args.label_scorer)
    return replace(rule, **given)
