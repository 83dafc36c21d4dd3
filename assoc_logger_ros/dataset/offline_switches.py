"""An offline identity-switch estimate: ``est_id_switches`` plus the session's cross-frame view.

The tracker's live ``est_id_switches_frame`` only sees one frame. Offline, a label whose box
leaves the track's own smooth path (``ctx_resid`` or ``ctx_resid_prev`` above
``RESID``, see :mod:`~assoc_logger_ros.dataset.track_context`) while its detection had a close
rival track in the matching (``pair_col_margin`` below ``COL_MARGIN``) is counted as a
probable switch too. A sample is an estimated switch event when either count is > 0. The live
estimate in the samples is unchanged; this one is what ``labels`` reports beside it.
Thresholds chosen on MOT17 train (``bench/label_quality.py`` prints the check on held-out
sequences).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

RESID = 0.15
COL_MARGIN = 0.3


def offline_switch_count(arrays: Mapping[str, np.ndarray],
                         context: Mapping[str, np.ndarray] | None) -> int:
    """Matched pairs of one sample with cross-frame evidence of a switch (0 without context)."""
    if not context:
        return 0
    from assoc_logger_ros.dataset.label_filter import confidence_of
    matched = np.asarray(arrays['assigned_track_ids']) >= 0
    margin = np.asarray(confidence_of(arrays)['pair_col_margin'], np.float64)
    with np.errstate(invalid='ignore'):
        jump = ((np.asarray(context['ctx_resid'], np.float64) > RESID)
                | (np.asarray(context['ctx_resid_prev'], np.float64) > RESID))
        return int((matched & jump & (margin < COL_MARGIN)).sum())
