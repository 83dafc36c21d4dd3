"""filter, prune and merge: new or smaller sample directories that stay valid at every step.

``filter`` and ``merge`` build their output in a temporary directory beside it and rename it into
place when complete (on any error the output does not exist); one unusable sample is skipped and
reported, never fatal. Sample files are hard links of the checked source file where possible,
else real copies, never symlinks. Sources are never modified, except by ``prune``, which holds
the writer's lock while it works and deletes only entries of its own directory.
"""

from __future__ import annotations

import os
from pathlib import Path
import stat
from typing import Any
import zipfile

import numpy as np

from assoc_logger_ros.dataset.label_filter import LabelRule, relabel
from assoc_logger_ros.dataset.select import Criteria, split
from assoc_logger_ros.dataset.store import (
    Dataset,
    DatasetError,
    place_sample,
    staged_output,
    unusable_reason,
)
from assoc_logger_ros.dataset.track_context import context_by_record
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.atomic import TMP_SUFFIX, write_atomic
from assoc_logger_ros.recording.confine import open_regular
from assoc_logger_ros.recording.lock import DirectoryLock, RecorderError
from assoc_logger_ros.recording.npzfile import encode
from assoc_logger_ros.recording.reconcile import CORRUPT_SUFFIX
from assoc_logger_ros.recording.schema import SAMPLE_SUFFIX, sample_index, sample_name
from assoc_logger_ros.recording.validate import validate


def _reasons(drop: list[tuple[dict[str, Any], str]]) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for _, why in drop:
        reasons[why] = reasons.get(why, 0) + 1
    return reasons


def filter_dataset(src: str | os.PathLike[str], out: str | os.PathLike[str],
                   criteria: Criteria, rule: LabelRule | None = None, *,
                   jobs: int = 1) -> dict[str, Any]:
    """Copy the samples of ``src`` passing ``criteria`` into the new directory ``out``.

    Samples keep their names and records; files are hard-linked (copied across filesystems).
    A selected sample whose file is missing, not a regular file or structurally unsound is
    skipped and listed in ``skipped``; ``out`` appears only complete (:func:`staged_output`).
    With a per-pair ``rule`` every kept sample is rewritten with ``label_weights`` (and the
    confidence keys, when it predates them) instead. ``jobs``: processes for the re-tracking
    (``track_context.records_context``).
    """
    ds = Dataset.open(src)
    keep, drop = split(ds.records, criteria)
    how = {'link': 0, 'copy': 0, 'rewritten': 0}
    pairs = {'matched': 0, 'ignored': 0}
    placed: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    context_problems: list[str] = []
    context = context_by_record(ds.records, ds.load, rule, context_problems, jobs)
    with staged_output(out) as dst:
        for rec in keep:
            try:
                if rule is None or rule.is_empty():
                    how[place_sample(ds.path(rec), dst / rec['npz'])] += 1
                    placed.append(rec)
                    continue
                arrays = ds.load(rec)
                matched, ignored = relabel(arrays, rule, context.get(id(rec)))
                content = encode(arrays, _compressed(ds.path(rec)))
                record = manifest.record_from_arrays(arrays, rec['npz'], len(content))
                write_atomic(dst / rec['npz'], content, fsync=False)
            except Exception as exc:  # noqa: BLE001 - one bad sample is reported, not fatal
                skipped.append((rec['npz'], unusable_reason(exc)))
                continue
            pairs['matched'] += matched
            pairs['ignored'] += ignored
            placed.append(record)
            how['rewritten'] += 1
        manifest.write(dst, placed)
    return {'source': str(ds.directory), 'out': str(out), 'total': len(ds.records),
            'selected': len(placed), 'linked': how['link'], 'copied': how['copy'],
            'rewritten': how['rewritten'], 'pairs_matched': pairs['matched'],
            'pairs_ignored': pairs['ignored'], 'rejected': _reasons(drop), 'skipped': skipped,
            'manifest_problems': ds.problems, 'context_problems': context_problems}



def _is_sample_file(name: str) -> bool:
    return sample_index(name) is not None and (
        name.endswith(SAMPLE_SUFFIX) or name.endswith(TMP_SUFFIX)
        or name.endswith(CORRUPT_SUFFIX))


def _unlink_entry(directory: Path, name: str) -> str | None:
    """Remove the entry ``name`` of ``directory`` (a link goes, never its target); error text."""
    path = directory / name
    try:
        if stat.S_ISDIR(path.lstat().st_mode):
            return 'a directory; left in place'
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        return str(exc)
    return None


def prune_dataset(directory: str | os.PathLike[str], criteria: Criteria, *,
                  invalid: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Delete sample files the manifest does not list, and samples failing ``criteria``.

    With ``invalid`` samples failing validation go too. The manifest is rewritten before files
    are deleted, so a crash in between only leaves unlisted files (pruned next time). Only
    entries of ``directory`` itself are deleted: manifest lines naming anything else are
    invalid entries, dropped from the manifest and reported, their targets never touched.
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
        present, missing, not_regular = [], [], []
        for rec in ds.records:
            if ds.size(rec) is not None:
                present.append(rec)
            elif os.path.lexists(ds.path(rec)):
                not_regular.append(rec['npz'])
            else:
                missing.append(rec['npz'])
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
        changed = bool(removed or missing or not_regular or ds.problems)
        failed: list[tuple[str, str]] = []
        if not dry_run:
            if changed:
                try:
                    manifest.write(ds.directory, keep)
                except OSError as exc:
                    raise DatasetError(f'cannot rewrite the manifest of {ds.directory}: '
                                       f'{exc}; nothing was removed') from None
            for name in unlisted + [n for n, _ in removed]:
                error = _unlink_entry(ds.directory, name)
                if error is not None:
                    failed.append((name, error))
    return {'directory': str(ds.directory), 'dry_run': dry_run, 'kept': len(keep),
            'unlisted_removed': unlisted, 'samples_removed': removed,
            'missing_entries_dropped': missing, 'not_regular_entries_dropped': not_regular,
            'not_removed': failed, 'manifest_problems': ds.problems}


def _compressed(path: Path) -> bool:
    with os.fdopen(open_regular(path), 'rb') as fh, zipfile.ZipFile(fh) as zf:
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
    records: list[dict[str, Any]] = []
    renamed: dict[str, str] = {}
    skipped: list[tuple[str, str, str]] = []
    how = {'link': 0, 'copy': 0, 'rewritten': 0}
    with staged_output(out) as dst:
        for i, ds in enumerate(datasets):
            for rec in ds.records:
                name = sample_name(len(records))
                session = str(rec.get('session', ''))
                try:
                    if session in clashing:
                        new = _rewrite(ds, rec, dst / name, f'{labels[i]}/{session}')
                        renamed[f'{labels[i]}:{session}'] = f'{labels[i]}/{session}'
                        how['rewritten'] += 1
                    else:
                        how[place_sample(ds.path(rec), dst / name)] += 1
                        new = {**rec, 'npz': name}
                except Exception as exc:  # noqa: BLE001 - one bad sample is reported, skipped
                    skipped.append((str(ds.directory), rec['npz'], unusable_reason(exc)))
                    continue
                records.append(new)
        manifest.write(dst, records)
    embed_dims = sorted({int(r['embed_dim']) for r in records if 'embed_dim' in r})
    return {'out': str(out), 'sources': [str(d) for d in dirs], 'samples': len(records),
            'embed_dims': embed_dims,
            'linked': how['link'], 'copied': how['copy'], 'rewritten': how['rewritten'],
            'renamed_sessions': renamed, 'skipped': skipped,
            'manifest_problems': [f'{ds.directory}: {p}' for ds in datasets
                                  for p in ds.problems]}


def _rewrite(ds: Dataset, rec: dict[str, Any], dst: Path, session: str) -> dict[str, Any]:
    """Write ``rec``'s sample to ``dst`` with a new session id; its new manifest record."""
    src = ds.path(rec)
    arrays = ds.load(rec)
    errors = validate(arrays)
    if errors:
        raise ValueError(f'invalid sample: {errors[0]}')
    arrays['session_id'] = np.asarray(np.str_(session))
    content = encode(arrays, _compressed(src))
    write_atomic(dst, content)
    return manifest.record_from_arrays(arrays, dst.name, len(content))
