"""Pair and decision accuracy of match probabilities against labels (numpy only).

Shared by the trainer (validation each epoch, torch forward) and ``assoc-eval`` (the exported
model on onnxruntime), so both report the same numbers for the same model.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from assoc_logger_ros.training.data import Example


def classical_decision(ex: Example) -> np.ndarray:
    """Per detection: the eligible track with the lowest logged cost, else -1."""
    cost = np.where(ex.mask > 0, ex.cost, np.inf)
    if cost.shape[0] == 0:
        return np.full(cost.shape[1], -1, np.int64)
    best = cost.argmin(axis=0)
    return np.where(np.isfinite(cost.min(axis=0)), best, -1)


def model_decision(prob: np.ndarray, kind: str) -> np.ndarray:
    """Per detection: the model's track row or -1 ("no match").

    softmax: the best of the tracks and the no-match share ``1 - sum``; bce: the best track
    when its probability reaches 0.5.
    """
    if prob.shape[0] == 0:
        return np.full(prob.shape[1], -1, np.int64)
    best = prob.argmax(axis=0)
    top = prob.max(axis=0)
    floor = 1.0 - prob.sum(axis=0) if kind == 'softmax' else np.full(top.shape, 0.5)
    keep = top > floor if kind == 'softmax' else top >= floor
    return np.where(keep, best, -1)


def score(pairs: Iterable[tuple[Example, np.ndarray]], kind: str) -> dict[str, float]:
    """Metrics over (example, (T, D) probability) pairs; only labelled detections count.

    ``det_acc``: the model's decision equals the label; ``classical_det_acc``: the lowest
    eligible logged cost does; ``pair_acc``: pairs right at probability 0.5;
    ``pos_recall``: positive pairs found at 0.5; ``all_negative_pair_acc``: answering "no" to
    every pair.
    """
    s = dict.fromkeys(('det_ok', 'cls_ok', 'det_n', 'pair_ok', 'pair_n', 'pos_ok', 'pos_n',
                       'neg_n'), 0)
    for ex, prob in pairs:
        t, d = ex.shape
        keep = ex.weight > 0
        cols = np.flatnonzero(keep)
        tgt = ex.target
        s['det_ok'] += int((model_decision(prob, kind) == tgt)[keep].sum())
        s['cls_ok'] += int((classical_decision(ex) == tgt)[keep].sum())
        s['det_n'] += int(keep.sum())
        onehot = np.zeros((t, d), bool)
        pos = np.flatnonzero(tgt >= 0)
        onehot[tgt[pos], pos] = True
        hit = (prob >= 0.5)[:, cols]
        truth = onehot[:, cols]
        s['pair_ok'] += int((hit == truth).sum())
        s['pair_n'] += int(truth.size)
        s['neg_n'] += int((~truth).sum())
        s['pos_ok'] += int((hit & truth).sum())
        s['pos_n'] += int(truth.sum())

    def r(a: str, b: str) -> float:
        return round(s[a] / s[b], 6) if s[b] else float('nan')
    return {'det_acc': r('det_ok', 'det_n'), 'classical_det_acc': r('cls_ok', 'det_n'),
            'pair_acc': r('pair_ok', 'pair_n'), 'pos_recall': r('pos_ok', 'pos_n'),
            'all_negative_pair_acc': r('neg_n', 'pair_n'), 'labelled_detections': s['det_n']}
