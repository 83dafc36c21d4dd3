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

from assoc_logger_ros.recording.schema import (
    FIELDS,
    FIELDS_BY_KEY,
    METADATA_REQUIRED,
    SCHEMA_VERSION,
)
from assoc_logger_ros.tracking.snapshot import MatchStage, TrackState

_FINITE_KEYS = ('track_boxes', 'track_features', 'track_embeddings', 'det_boxes', 'det_scores',
                'det_visibility', 'det_features', 'det_embeddings', 'cost_matrix')


def _dtype_ok(arr: np.ndarray, want: str) -> bool:
    if want == 'U':
        return arr.dtype.kind == 'U'
    return arr.dtype == np.dtype(want)


def _shape_errors(arrays: Mapping[str, np.ndarray]) -> tuple[list[str], dict[str, int]]:
    """Bind T, D, K from the first key that defines each, then check every shape."""
    errors: list[str] = []
    dims: dict[str, int] = {}
    for f in FIELDS:
        arr = arrays.get(f.key)
        if arr is None:
            continue
        if arr.ndim != len(f.shape):
            errors.append(f'{f.key}: shape {arr.shape}, expected {f.shape_text}')
            continue
        for axis, (want, got) in enumerate(zip(f.shape, arr.shape)):
            if isinstance(want, int):
                if got != want:
                    errors.append(f'{f.key}: axis {axis} is {got}, expected {want}')
            elif want not in dims:
                dims[want] = got
            elif dims[want] != got:
                errors.append(f'{f.key}: {want}={got} but {want}={dims[want]} elsewhere')
    return errors, dims


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
    if np.unique(tids).size != tids.size:
        errors.append('track_ids has duplicates')
    assigned = a['assigned_track_ids']
    unknown = ~np.isin(assigned, tids) & (assigned != -1)
    if unknown.any():
        errors.append(f'assigned_track_ids has ids not in track_ids: '
                      f'{sorted(set(assigned[unknown].tolist()))[:5]}')
    stage = a['match_stage']
    if not np.isin(stage, [m.value for m in MatchStage]).all():
        errors.append('match_stage has values outside MatchStage')
    if not np.isin(a['track_states'], [s.value for s in TrackState]).all():
        errors.append('track_states has values outside TrackState')
    if ((assigned >= 0) != (stage != MatchStage.NONE)).any():
        errors.append('assigned_track_ids and match_stage disagree on which detections matched')
    mask = a['mask_matrix']
    if not np.isin(mask, (0.0, 1.0)).all():
        errors.append('mask_matrix has values other than 0 and 1')
    matched = np.flatnonzero((assigned >= 0) & ~unknown)
    if matched.size:
        order = np.argsort(tids, kind='stable')
        rows = order[np.searchsorted(tids, assigned[matched], sorter=order)]
        if (mask[rows, matched] != 1.0).any():
            errors.append('a matched pair has mask_matrix 0 (not eligible)')
        if np.unique(assigned[matched]).size != matched.size:
            errors.append('a track is assigned to more than one detection')
    new_ids = a['new_track_ids']
    if ((new_ids >= 0) & (assigned >= 0)).any():
        errors.append('a detection both matched a track and started a new one')
    for key in _FINITE_KEYS:
        if not np.isfinite(a[key]).all():
            errors.append(f'{key} has NaN or inf values')
    for key in ('det_visibility', 'det_scores'):
        v = a[key]
        if ((v < 0.0) | (v > 1.0)).any():
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


def validate(sample: Mapping[str, Any] | str | os.PathLike[str], *,
             embed_cap: int | None = None) -> list[str]:
    """Errors of one sample (a loaded mapping or an npz path); empty when it is valid.

    ``embed_cap`` additionally checks the embedding width K against the configured cap.
    """
    if isinstance(sample, (str, os.PathLike)):
        try:
            with np.load(sample, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one error line
            return [f'cannot load: {type(exc).__name__}: {exc}']
    else:
        arrays = {k: np.asarray(v) for k, v in sample.items()}
    errors = []
    for f in FIELDS:
        if f.key not in arrays:
            if not f.optional:
                errors.append(f'missing key {f.key}')
        elif not _dtype_ok(arrays[f.key], f.dtype):
            errors.append(f'{f.key}: dtype {arrays[f.key].dtype}, expected {f.dtype}')
    unknown = sorted(set(arrays) - set(FIELDS_BY_KEY))
    if unknown:
        errors.append(f'unknown key(s): {", ".join(unknown)}')
    shape_errors, _ = _shape_errors(arrays)
    errors += shape_errors
    if errors:
        return errors
    return _rule_errors(arrays, embed_cap)
