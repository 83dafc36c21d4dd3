"""filter, prune and merge: new or smaller sample directories that stay valid at every step.

Outputs are written so that a crash leaves a directory the writer's reconcile can repair:
sample files first (hard links where possible), the manifest last and atomically. Sources are
never modified, except by ``prune``, which holds the writer's lock while it works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
import zipfile

import numpy as np

from assoc_logger_ros.dataset.label_filter import LabelRule, confidence_of, label_weights
from assoc_logger_ros.dataset.select import Criteria, split
from assoc_logger_ros.dataset.store import Dataset, DatasetError, fresh_output, link_or_copy
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.atomic import TMP_SUFFIX, write_atomic
from assoc_logger_ros.recording.lock import DirectoryLock, RecorderError
from assoc_logger_ros.recording.npzfile import encode, load
from assoc_logger_ros.recording.reconcile import CORRUPT_SUFFIX
from assoc_logger_ros.recording.schema import SAMPLE_SUFFIX, sample_index, sample_name
from assoc_logger_ros.recording.validate import validate


def filter_dataset(src: str | os.PathLike[str], out: str | os.PathLike[str],
                   criteria: Criteria, rule: LabelRule | None = None) -> dict[str, Any]:
    """Copy the samples of ``src`` passing ``criteria`` into the new directory ``out``.

    Samples keep their names and records; files are hard-linked (copied across filesystems).
    With a per-pair ``rule`` every kept sample is rewritten (atomically) with ``label_weights``
    (and the confidence keys, when it predates them) instead.
    """
    ds = Dataset.open(src)
    keep, drop = split(ds.records, criteria)
    keep = [r for r in keep if ds.path(r).is_file()]
    dst = fresh_output(out)
    how = {'link': 0, 'copy': 0, 'rewritten': 0}
    pairs = {'matched': 0, 'ignored': 0}
    records = []
    for rec in keep:
        if rule is None or rule.is_empty():
            how[link_or_copy(ds.path(rec), dst / rec['npz'])] += 1
            records.append(rec)
            continue
        arrays = load(ds.path(rec))
        for key, value in confidence_of(arrays).items():
            arrays.setdefault(key, value)
        weights = label_weights(arrays, rule)
        arrays['label_weights'] = weights
        matched = np.asarray(arrays['assigned_track_ids']) >= 0
        pairs['matched'] += int(matched.sum())
        pairs['ignored'] += int((matched & (weights < 1.0)).sum())
        content = encode(arrays, _compressed(ds.path(rec)))
        write_atomic(dst / rec['npz'], content)
        records.append(manifest.record_from_arrays(arrays, rec['npz'], len(content)))
        how['rewritten'] += 1
    manifest.write(dst, records)
    reasons: dict[str, int] = {}
    for _, why in drop:
        reasons[why] = reasons.get(why, 0) + 1
    return {'source': str(ds.directory), 'out': str(dst), 'total': len(ds.records),
            'selected': len(keep), 'linked': how['link'], 'copied': how['copy'],
            'rewritten': how['rewritten'], 'pairs_matched': pairs['matched'],
            'pairs_ignored': pairs['ignored'], 'rejected': reasons}


def _is_sample_file(name: str) -> bool:
    return sample_index(name) is not None and (
        name.endswith(SAMPLE_SUFFIX) or name.endswith(TMP_SUFFIX)
        or name.endswith(CORRUPT_SUFFIX))


def prune_dataset(directory: str | os.PathLike[str], criteria: Criteria, *,
                  invalid: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Delete sample files the manifest does not list, and samples failing ``criteria``.

    With ``invalid`` samples failing validation go too. The manifest is rewritten before files
    are deleted, so a crash in between only leaves unlisted files (pruned next time).
    """
    ds = Dataset.open(directory)
    try:
        lock = DirectoryLock(ds.directory, 'prune')
    except RecorderError as exc:
        raise DatasetError(str(exc)) from None
    with lock:
        listed = {r['npz'] for r in ds.records}
        unlisted = sorted(n for n in os.listdir(ds.directory)
                          if _is_sample_file(n) and n not in listed)
        missing = [r['npz'] for r in ds.records if not ds.path(r).is_file()]
        present = [r for r in ds.records if ds.path(r).is_file()]
        keep, drop = split(present, criteria)
        removed = [(r['npz'], why) for r, why in drop]
        if invalid:
            still = []
            for rec in keep:
                errors = validate(ds.path(rec))
                if errors:
                    removed.append((rec['npz'], f'invalid: {errors[0]}'))
                else:
                    still.append(rec)
            keep = still
        changed = bool(removed or missing or ds.problems)
        if not dry_run:
            if changed:
                manifest.write(ds.directory, keep)
            for name in unlisted + [n for n, _ in removed]:
                try:
                    os.unlink(ds.directory / name)
                except FileNotFoundError:
                    pass
    return {'directory': str(ds.directory), 'dry_run': dry_run, 'kept': len(keep),
            'unlisted_removed': unlisted, 'samples_removed': removed,
            'missing_entries_dropped': missing, 'manifest_problems': ds.problems}


def _compressed(path: Path) -> bool:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        return bool(infos) and infos[0].compress_type != zipfile.ZIP_STORED


def _source_labels(dirs: list[Path]) -> list[str]:
    """Readable, unique labels for source directories (their names, numbered if repeated)."""
    labels = []
    for i, d in enumerate(dirs):
        name = d.resolve().name or f'src{i}'
        labels.append(name if [x.resolve().name for x in dirs].count(d.resolve().name) == 1
                      else f'{name}-{i + 1}')
    return labels


def merge_datasets(sources: list[str | os.PathLike[str]], out: str | os.PathLike[str]
                   ) -> dict[str, Any]:
    """Merge several directories into ``out``: renumbered, one manifest, sessions kept.

    A session id found in more than one source is renamed ``<source label>/<id>`` in every
    source it appears in (those samples are rewritten with the new id; the others are linked).
    """
    dirs = [Path(s) for s in sources]
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise DatasetError('a source directory is given twice')
    datasets = [Dataset.open(d) for d in dirs]
    labels = _source_labels(dirs)
    owners: dict[str, set[int]] = {}
    for i, ds in enumerate(datasets):
        for s in ds.sessions():
            owners.setdefault(s, set()).add(i)
    clashing = {s for s, who in owners.items() if len(who) > 1}
    dst = fresh_output(out)
    records: list[dict[str, Any]] = []
    renamed: dict[str, str] = {}
    how = {'link': 0, 'copy': 0, 'rewritten': 0}
    for i, ds in enumerate(datasets):
        for rec in ds.records:
            src = ds.path(rec)
            if not src.is_file():
                continue
            name = sample_name(len(records))
            session = str(rec.get('session', ''))
            if session in clashing:
                new_session = f'{labels[i]}/{session}'
                renamed[f'{labels[i]}:{session}'] = new_session
                arrays = load(src)
                arrays['session_id'] = np.asarray(np.str_(new_session))
                content = encode(arrays, _compressed(src))
                write_atomic(dst / name, content)
                new = manifest.record_from_arrays(arrays, name, len(content))
                how['rewritten'] += 1
            else:
                how[link_or_copy(src, dst / name)] += 1
                new = {**rec, 'npz': name}
            records.append(new)
    manifest.write(dst, records)
    embed_dims = sorted({int(r['embed_dim']) for r in records if 'embed_dim' in r})
    return {'out': str(dst), 'sources': [str(d) for d in dirs], 'samples': len(records),
            'embed_dims': embed_dims,
            'linked': how['link'], 'copied': how['copy'], 'rewritten': how['rewritten'],
            'renamed_sessions': renamed}
