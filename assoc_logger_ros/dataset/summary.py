"""Statistics and validation of a whole sample directory (``inspect``, ``validate``, training).

Counts come from the manifest; feature/embedding widths and validation need the files, so they
are read only when asked (``load=True``, the default).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from assoc_logger_ros.dataset.store import Dataset, session_switches
from assoc_logger_ros.recording.reconcile import reconcile
from assoc_logger_ros.recording.validate import validate

SEED_TARGET = (5000, 10000)  # matched pairs the seed recommends before a first training run
MAX_LISTED_ERRORS = 20


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {'min': 0, 'median': 0, 'max': 0}
    return {'min': int(min(values)), 'median': float(np.median(values)),
            'max': int(max(values))}


def summarize(directory: str | os.PathLike[str], *, load: bool = True,
              embed_cap: int | None = None, source: Any = None) -> dict[str, Any]:
    """Everything ``inspect`` prints, as a JSON-ready dict; ``errors`` lists every problem.

    ``source``: an already opened reader of another layout (``shards.source``); its own
    problems replace the npz directory's reconcile check.
    """
    ds = Dataset.open(directory) if source is None else source
    recs = ds.records
    matched = sum(int(r.get('matched_pairs', 0)) for r in recs)
    lo, hi = SEED_TARGET
    out: dict[str, Any] = {
        'directory': str(ds.directory),
        'samples': len(recs),
        'bytes': sum(int(r.get('bytes', 0)) for r in recs),
        'tracks_per_sample': _spread([int(r.get('tracks', 0)) for r in recs]),
        'detections_per_sample': _spread([int(r.get('detections', 0)) for r in recs]),
        'matched_pairs': matched,
        'seed_target': {'min': lo, 'max': hi,
                        'status': 'below' if matched < lo else 'reached'},
        'samples_with_gt': sum(bool(r.get('has_gt')) for r in recs),
        'embed_truncated_samples': sum(bool(r.get('embed_truncated')) for r in recs),
        'sessions': {},
    }
    switches = session_switches(recs)
    for s in ds.sessions():
        mine = [r for r in recs if str(r.get('session', '')) == s]
        stamps = [int(r.get('stamp_ns', 0)) for r in mine]
        out['sessions'][s] = {'samples': len(mine), 'est_id_switches': switches.get(s, 0),
                              'matched_pairs': sum(int(r.get('matched_pairs', 0)) for r in mine),
                              'first_stamp_ns': min(stamps), 'last_stamp_ns': max(stamps)}
    errors = (list(reconcile(ds.directory, fix=False).messages) if source is None
              else list(source.problems))
    widths: dict[str, set[int]] = {k: set() for k in (
        'track_features', 'det_features', 'embed_dim', 'track_embed_dim', 'det_embed_dim')}
    invalid = 0
    if load:
        for rec, arrays, load_error in ds.iter_loaded():
            problems = [f'cannot load: {load_error}'] if arrays is None else validate(
                arrays, embed_cap=embed_cap)
            if problems:
                invalid += 1
                errors += [f'{rec["npz"]}: {p}' for p in problems]
                continue
            widths['track_features'].add(int(arrays['track_features'].shape[1]))
            widths['det_features'].add(int(arrays['det_features'].shape[1]))
            widths['embed_dim'].add(int(arrays['track_embeddings'].shape[1]))
            widths['track_embed_dim'].add(int(arrays['track_embed_dim']))
            widths['det_embed_dim'].add(int(arrays['det_embed_dim']))
    else:
        for key in ('embed_dim', 'track_embed_dim', 'det_embed_dim'):
            widths[key] = {int(r[key]) for r in recs if key in r}
    out['widths'] = {k: sorted(v) for k, v in widths.items()}
    out['validated'] = len(recs) if load else 0
    out['invalid_samples'] = invalid
    out['error_count'] = len(errors)
    out['errors'] = errors[:MAX_LISTED_ERRORS]
    out['manifest_problems'] = ds.problems
    return out


def format_text(s: dict[str, Any]) -> str:
    """Human-readable form of :func:`summarize`'s result."""
    def spread(d: dict[str, float]) -> str:
        return f'min {d["min"]}, median {d["median"]:g}, max {d["max"]}'

    w = s['widths']
    lines = [
        f'directory:        {s["directory"]}',
        f'samples:          {s["samples"]} ({s["bytes"] / 2**20:.1f} MiB)',
        f'feature widths:   track {w["track_features"]}, det {w["det_features"]}',
        f'embedding widths: stored {w["embed_dim"]}, original track {w["track_embed_dim"]}, '
        f'det {w["det_embed_dim"]}; truncated in {s["embed_truncated_samples"]} samples',
        f'tracks/sample:    {spread(s["tracks_per_sample"])}',
        f'dets/sample:      {spread(s["detections_per_sample"])}',
        f'matched pairs:    {s["matched_pairs"]} (seed target {s["seed_target"]["min"]}-'
        f'{s["seed_target"]["max"]}: {s["seed_target"]["status"]})',
        f'ground truth:     {s["samples_with_gt"]} samples'
        + (' (label accuracy: `labels DIR`)' if s['samples_with_gt'] else ''),
        f'sessions:         {len(s["sessions"])}',
    ]
    for name, info in s['sessions'].items():
        lines.append(f'  {name}: {info["samples"]} samples, {info["matched_pairs"]} matched '
                     f'pairs, est_id_switches {info["est_id_switches"]}')
    checked = s['validated']
    lines.append(f'validation:       {checked} samples checked, {s["invalid_samples"]} invalid, '
                 f'{s["error_count"]} problem(s)')
    lines += [f'  {e}' for e in s['errors']]
    if s['error_count'] > len(s['errors']):
        lines.append(f'  ... and {s["error_count"] - len(s["errors"])} more')
    return '\n'.join(lines)
