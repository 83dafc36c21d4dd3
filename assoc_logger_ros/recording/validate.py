"""Check one sample against schema v1: keys, dtypes, shapes and the rules that tie them together.

Returns a list of readable error strings (empty when the sample is valid) rather than raising, so
``validate`` and ``inspect`` can report every problem of every file in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import os
from typing import Any

import numpy as np

from assoc_logger_ros.recording.sample_file import load_sample
from assoc_logger_ros.recording.schema import (
    FIELDS,
    FIELDS_BY_KEY,
    METADATA_REQUIRED,
    SCHEMA_VERSION,
)
from assoc_logger_ros.recording.shapes import shape_errors
from assoc_logger_ros.tracking.snapshot import MatchStage, TrackState

_FINITE_KEYS = ('track_boxes', 'track_features', 'track_embeddings', 'det_boxes', 'det_scores',
                'det_visibility', 'det_features', 'det_embeddings', 'cost_matrix')


_DTYPES = {f.key: None if f.dtype == 'U' else np.dtype(f.dtype) for f in FIELDS}


def _dtype_ok(arr: np.ndarray, key: str) -> bool:
    want = _DTYPES[key]
    return arr.dtype.kind == 'U' if want is None else arr.dtype == want


def _allowed_table(values: list[int]) -> np.ndarray:
    """Lookup table over every int8 value (offset 128): True where the value is allowed."""
    table = np.zeros(256, bool)
    table[np.asarray(values) + 128] = True
    return table


_STAGES = _allowed_table([m.value for m in MatchStage])
_STATES = _allowed_table([s.value for s in TrackState])


def _int8_in(arr: np.ndarray, table: np.ndarray) -> bool:
    """True when every value of the int8 ``arr`` is allowed by ``table``."""
    return bool(table[arr.astype(np.int16) + 128].all())


def _shape_errors(arrays: Mapping[str, np.ndarray]) -> tuple[list[str], dict[str, int]]:
    """Bind T, D, K from the first key that defines each, then check every shape."""
    return shape_errors({key: arr.shape for key, arr in arrays.items()})


def _text(arrays: Mapping[str, np.ndarray], key: str) -> str:
    return str(arrays[key][()])


def _rule_errors(a: Mapping[str, np.ndarray], embed_cap: int | None) -> list[str]:
    """Cross-key rules; only called once keys, dtypes and shapes are right."""
    errors: list[str] = []
    if int(a['schema_version']) != SCHEMA_VERSION:
        errors.append(f'schema_version is {int(a["schema_version"])}, expected {SCHEMA_VERSION}')
    d = a['det_boxes'].shape[0]
    if int(a['detection_count'][0]) != d:
        errors.append(f'detection_count is {int(a["detection_count"][0])} but there are {d} '
                      'detections')
    tids = a['track_ids']
    order = np.argsort(tids, kind='stable')
    sorted_ids = tids[order]
    if sorted_ids.size > 1 and (sorted_ids[1:] == sorted_ids[:-1]).any():
        errors.append('track_ids has duplicates')
    assigned = a['assigned_track_ids']
    # one searchsorted answers "is it a track id" and "which row" for every detection
    pos = np.minimum(np.searchsorted(sorted_ids, assigned), max(sorted_ids.size - 1, 0))
    known = sorted_ids[pos] == assigned if sorted_ids.size else np.zeros(assigned.shape, bool)
    matched_mask = assigned >= 0
    unknown = ~known & (assigned != -1)
    if unknown.any():
        errors.append(f'assigned_track_ids has ids not in track_ids: '
                      f'{sorted(set(assigned[unknown].tolist()))[:5]}')
    stage = a['match_stage']
    if not _int8_in(stage, _STAGES):
        errors.append('match_stage has values outside MatchStage')
    if not _int8_in(a['track_states'], _STATES):
        errors.append('track_states has values outside TrackState')
    if (matched_mask != (stage != MatchStage.NONE)).any():
        errors.append('assigned_track_ids and match_stage disagree on which detections matched')
    mask = a['mask_matrix']
    if np.count_nonzero(mask == 1.0) + np.count_nonzero(mask == 0.0) != mask.size:
        errors.append('mask_matrix has values other than 0 and 1')
    matched = np.flatnonzero(matched_mask & known)
    if matched.size:
        rows = order[pos[matched]]
        if (mask[rows, matched] != 1.0).any():
            errors.append('a matched pair has mask_matrix 0 (not eligible)')
        if np.bincount(rows).max() > 1:  # rows of equal ids coincide, so this counts ids
            errors.append('a track is assigned to more than one detection')
    new_ids = a['new_track_ids']
    if ((new_ids >= 0) & matched_mask).any():
        errors.append('a detection both matched a track and started a new one')
    not_finite = [key for key in _FINITE_KEYS if not np.isfinite(a[key]).all()]
    errors += [f'{key} has NaN or inf values' for key in not_finite]
    for key in ('det_visibility', 'det_scores'):
        v = a[key]
        if key in not_finite:  # min/max would be NaN: compare element-wise
            bad = bool(((v < 0.0) | (v > 1.0)).any())
        else:
            bad = bool(v.size) and (v.min() < 0.0 or v.max() > 1.0)
        if bad:
            errors.append(f'{key} has values outside [0, 1]')
    k = a['track_embeddings'].shape[1]
    if embed_cap is not None and k != embed_cap:
        errors.append(f'embeddings have {k} columns, expected the cap {embed_cap}')
    widths = {}
    for side in ('track', 'det'):
        w = int(a[f'{side}_embed_dim'])
        widths[side] = w
        if w < 0:
            errors.append(f'{side}_embed_dim is negative')
        elif w < k and np.any(a[f'{side}_embeddings'][:, w:]):
            errors.append(f'{side}_embeddings: columns past the original width {w} are not zero')
    if bool(a['embed_truncated']) != (max(widths.values()) > k):
        errors.append(f'embed_truncated is {bool(a["embed_truncated"])} but widths are '
                      f'{widths} for {k} columns')
    errors += _optional_rule_errors(a, matched_mask)
    if not _text(a, 'session_id'):
        errors.append('session_id is empty')
    try:
        meta = json.loads(_text(a, 'metadata'))
    except ValueError as exc:
        errors.append(f'metadata is not JSON: {exc}')
    else:
        if not isinstance(meta, dict):
            errors.append('metadata is not a JSON object')
        else:
            missing = [m for m in METADATA_REQUIRED if m not in meta]
            if missing:
                errors.append(f'metadata lacks {", ".join(missing)}')
    return errors


_PAIR_KEYS = ('pair_row_margin', 'pair_col_margin', 'pair_track_age',
              'pair_time_since_update', 'pair_iou', 'pair_height_ratio', 'pair_rival_track_iou',
              'pair_rival_det_iou')


def _optional_rule_errors(a: Mapping[str, np.ndarray], matched: np.ndarray) -> list[str]:
    """Rules of the optional confidence, label-weight and ground-truth keys."""
    errors = []
    for key in _PAIR_KEYS:
        if key in a and (np.isnan(a[key]) != ~matched).any():
            errors.append(f'{key} is not NaN exactly where a detection is unmatched')
    if 'pair_det_overlap' in a and not np.isfinite(a['pair_det_overlap']).all():
        errors.append('pair_det_overlap has NaN or inf values')
    if 'label_weights' in a:
        w = a['label_weights']
        if not (np.isfinite(w).all() and (w >= 0.0).all() and (w <= 1.0).all()):
            errors.append('label_weights has values outside [0, 1]')
    if ('gt_boxes' in a) != ('gt_ids' in a):
        errors.append('gt_boxes and gt_ids must come together')
    elif 'gt_boxes' in a and not np.isfinite(a['gt_boxes']).all():
        errors.append('gt_boxes has NaN or inf values')
    return errors


def validate(sample: Mapping[str, Any] | str | os.PathLike[str], *,
             embed_cap: int | None = None) -> list[str]:
    """Errors of one sample (a loaded mapping or an npz path); empty when it is valid.

    ``embed_cap`` additionally checks the embedding width K against the configured cap.
    """
    if isinstance(sample, (str, os.PathLike)):
        try:
            arrays = load_sample(sample)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one error line
            return [f'cannot load: {type(exc).__name__}: {exc}']
    else:
        arrays = {k: np.asarray(v) for k, v in sample.items()}
    errors = []
    for f in FIELDS:
        if f.key not in arrays:
            if not f.optional:
                errors.append(f'missing key {f.key}')
        elif not _dtype_ok(arrays[f.key], f.key):
            errors.append(f'{f.key}: dtype {arrays[f.key].dtype}, expected {f.dtype}')
    unknown = sorted(set(arrays) - set(FIELDS_BY_KEY))
    if unknown:
        errors.append(f'unknown key(s): {", ".join(unknown)}')
    shape_errors, _ = _shape_errors(arrays)
    errors += shape_errors
    if errors:
        return errors
    return _rule_errors(arrays, embed_cap)
