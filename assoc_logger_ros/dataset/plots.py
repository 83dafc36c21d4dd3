"""``report``: PNG plots of a sample directory (matplotlib, Agg backend, no display needed).

Counts come from the manifest; cost and visibility distributions from at most ``max_samples``
evenly spaced sample files, so a report of a long recording stays quick.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from assoc_logger_ros.dataset.store import Dataset, DatasetError
from assoc_logger_ros.dataset.summary import SEED_TARGET
from assoc_logger_ros.recording.validate import validate


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def report(directory: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
           max_samples: int = 2000, source: Any = None) -> list[Path]:
    """Write the plots into ``out`` (default ``DIR/report``); returns the files written.

    ``source``: an already opened reader of another layout (``shards.source``).
    """
    plt = _pyplot()
    ds = Dataset.open(directory) if source is None else source
    dst = Path(out) if out is not None else ds.directory / 'report'
    if out is None and dst.is_symlink():  # a dataset's own entry may point anywhere
        raise DatasetError(f'{dst} is a symlink; pass --out to choose where plots go')
    dst.mkdir(parents=True, exist_ok=True)
    recs = ds.records
    idx = np.arange(len(recs))
    written = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(dst / name, dpi=100)
        plt.close(fig)
        written.append(dst / name)

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(idx, [r.get('tracks', 0) for r in recs], lw=0.8, label='tracks (T)')
    ax.plot(idx, [r.get('detections', 0) for r in recs], lw=0.8, label='detections (D)')
    ax.plot(idx, [r.get('matched_pairs', 0) for r in recs], lw=0.8, label='matched pairs')
    ax.set_xlabel('sample (manifest order)')
    ax.set_ylabel('count')
    ax.set_title('Tracks and detections per sample')
    ax.legend()
    save(fig, 'tracks_detections.png')

    every = max(1, -(-len(recs) // max(1, max_samples)))  # ceil: at most max_samples
    eligible, matched, vis = [], [], []
    for _, arrays, _ in ds.iter_loaded(every):
        if arrays is None or validate(arrays):  # unreadable or invalid: not plotted
            continue
        cost, mask = arrays['cost_matrix'], arrays['mask_matrix']
        eligible.append(cost[mask == 1.0])
        assigned, tids = arrays['assigned_track_ids'], arrays['track_ids']
        cols = np.flatnonzero(np.isin(assigned, tids))
        if cols.size:
            rows = np.searchsorted(np.sort(tids), assigned[cols])
            rows = np.argsort(tids, kind='stable')[rows]
            matched.append(cost[rows, cols])
        vis.append(arrays['det_visibility'])
    bins = np.linspace(0.0, 1.0, 41)
    fig, ax = plt.subplots(figsize=(7, 4))
    for values, label in ((eligible, 'eligible pairs (mask 1)'), (matched, 'matched pairs')):
        flat = np.concatenate(values) if values else np.zeros(0)
        ax.hist(np.clip(flat, 0, 1), bins=bins, alpha=0.6, label=f'{label}, n={flat.size}')
    ax.set_xlabel('cost')
    ax.set_ylabel('pairs')
    ax.set_title(f'Cost distribution ({len(eligible)} samples read)')
    ax.legend()
    save(fig, 'cost_distribution.png')

    fig, ax = plt.subplots(figsize=(7, 4))
    flat = np.concatenate(vis) if vis else np.zeros(0)
    ax.hist(flat, bins=bins, alpha=0.8, label=f'detections, n={flat.size}')
    mean_vis = [r['mean_visibility'] for r in recs if r.get('mean_visibility') is not None]
    ax.hist(mean_vis, bins=bins, alpha=0.5, label=f'per-sample mean, n={len(mean_vis)}')
    ax.set_xlabel('visibility')
    ax.set_ylabel('count')
    ax.set_title('Visibility distribution')
    ax.legend()
    save(fig, 'visibility.png')

    fig, ax = plt.subplots(figsize=(9, 4))
    elapsed, last = 0.0, {}
    t, total, running = [], [], 0
    for r in recs:  # recording time: sessions laid end to end in manifest order
        session, stamp = str(r.get('session', '')), int(r.get('stamp_ns', 0))
        if session in last:
            elapsed += max(0, stamp - last[session]) / 1e9
        last[session] = stamp
        running += int(r.get('matched_pairs', 0))
        t.append(elapsed)
        total.append(running)
    ax.plot(t, total, lw=1.2, label=f'all {len(ds.sessions())} session(s)')
    for target in SEED_TARGET:
        ax.axhline(target, ls='--', lw=0.8, color='grey')
    ax.set_xlabel('recording time (s, sessions end to end)')
    ax.set_ylabel('cumulative matched pairs')
    ax.set_title('Matched pairs over time (dashed: seed target 5k-10k)')
    ax.legend(fontsize='small')
    save(fig, 'matched_pairs.png')
    if any(r.get('has_gt') for r in recs):
        from assoc_logger_ros.dataset.label_plots import label_plots
        label_plots(ds.directory, plt, save)
    return written
