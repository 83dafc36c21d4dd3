"""``report`` plots of label quality, for sample directories with ground truth.

Accuracy over time (per-frame definition, per session, 50-sample windows) and where the wrong
labels lie against the column margin and the detection's visibility, beside the right ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from assoc_logger_ros.dataset.labels import CORRECT, WRONG, score_directory

WINDOW = 50


def label_plots(directory: str | Path, plt: Any, save: Callable[[Any, str], None]) -> int:
    """Write the plots through ``save(fig, name)``; returns how many (0 without ground truth)."""
    report, pairs, scorers = score_directory(directory, pairs=True)
    if not scorers or pairs is None or 'verdict' not in pairs:
        return 0
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, sc in scorers.items():
        tl = np.asarray(sc.timeline, np.float64).reshape(-1, 4)
        if not len(tl):
            continue
        win = np.ones(min(WINDOW, len(tl)))    # 'same' keeps the length only for short kernels
        ok = np.convolve(tl[:, 1], win, 'same')
        bad = np.convolve(tl[:, 2], win, 'same')
        acc = np.divide(ok, ok + bad, out=np.full(len(tl), np.nan), where=ok + bad > 0)
        ax.plot((tl[:, 0] - tl[0, 0]) / 1e9, 100 * acc, lw=0.9, label=name[:40])
    ax.set_xlabel('session time (s)')
    ax.set_ylabel(f'correct labels, % ({WINDOW}-sample window)')
    tot = report['total']['per_frame']
    ax.set_title(f'Label accuracy (per-frame definition): {tot["correct"]} right, '
                 f'{tot["wrong"]} wrong')
    if len(scorers) <= 10:
        ax.legend(fontsize='small')
    save(fig, 'label_accuracy.png')

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    v = pairs['verdict']
    for ax, key, bins in ((axes[0], 'pair_col_margin', np.linspace(-0.5, 1.0, 61)),
                          (axes[1], 'det_visibility', np.linspace(0.0, 1.0, 41))):
        x = pairs[key].astype(np.float64)
        for mask, label in ((v == CORRECT, 'right'), (v == WRONG, 'wrong')):
            vals = x[mask & np.isfinite(x)]
            if not vals.size:
                continue
            ax.hist(np.clip(vals, bins[0], bins[-1]), bins=bins, density=True, alpha=0.6,
                    label=f'{label} labels, n={vals.size}')
        ax.set_xlabel(key)
        ax.set_ylabel('density')
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize='small')
        else:   # no verifiable pair carries this key: say so instead of an empty legend
            ax.text(0.5, 0.5, f'no labelled pair with {key}', ha='center',
                    transform=ax.transAxes)
    axes[0].set_title('Wrong labels have small margins')
    axes[1].set_title('... and low visibility')
    save(fig, 'wrong_labels.png')
    return 2
