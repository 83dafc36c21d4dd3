"""How well ``est_id_switches`` finds the wrong labels: event-level precision and recall.

An *estimated event* is a sample with ``est_id_switches_frame > 0``; a *true event* a sample
with at least one wrong pair (per-frame definition of :mod:`~assoc_logger_ros.dataset.labels`).
An estimated event is confirmed when a true event lies within ``window`` samples of it in the
same session (the estimator may see a switch a few frames late), and a true event is found when
an estimated one does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

WINDOW = 5


def switch_events(scorers: Mapping[str, Any], window: int = WINDOW,
                  offline: bool = False) -> dict[str, Any]:
    """Counts, precision and recall over every session's timeline.

    ``offline``: score the offline estimate instead (a sample is an event when
    ``est_id_switches_frame`` or its ``offline`` count, :mod:`.offline_switches`, is > 0).
    """
    est = confirmed = true = found = 0
    for sc in scorers.values():
        tl = np.asarray(sc.timeline, np.int64).reshape(-1, 4)
        flag = tl[:, 3] > 0
        if offline:
            extra = np.asarray(getattr(sc, 'offline', ()), np.int64)
            if extra.size == flag.size:
                flag = flag | (extra > 0)
        e = np.flatnonzero(flag)
        t = np.flatnonzero(tl[:, 2] > 0)
        est += e.size
        true += t.size
        if e.size and t.size:
            confirmed += int((np.abs(e[:, None] - t[None, :]).min(axis=1) <= window).sum())
            found += int((np.abs(t[:, None] - e[None, :]).min(axis=1) <= window).sum())
    return {'window_samples': window, 'estimated_events': est, 'confirmed': confirmed,
            'precision': round(confirmed / est, 4) if est else None,
            'true_events': true, 'found': found,
            'recall': round(found / true, 4) if true else None}


def format_events(ev: Mapping[str, Any], name: str = 'est_id_switches') -> str:
    """One line for the text report."""
    def pct(x: float | None) -> str:
        return 'n/a' if x is None else f'{100 * x:.1f}%'
    return (f'{name} events (+-{ev["window_samples"]} samples): {ev["confirmed"]} of '
            f'{ev["estimated_events"]} estimated confirmed (precision {pct(ev["precision"])}), '
            f'{ev["found"]} of {ev["true_events"]} frames with wrong labels found (recall '
            f'{pct(ev["recall"])})')
