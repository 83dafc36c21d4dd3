"""Bring a sample directory back to a consistent state after a crash (run under the lock).

Rules: partial ``*.tmp`` files are deleted; a torn last manifest line is dropped; manifest entries
whose file is missing are dropped, duplicates keep their first entry; complete sample files that
the manifest does not list (a crash between rename and manifest append) are validated and
re-added; files that cannot be valid samples are renamed ``*.corrupt`` (kept for a human, never
reused). Numbering continues after the highest number seen anywhere, so nothing is overwritten.

Only entries of the directory itself are ever touched: manifest lines whose ``npz`` is not a
plain file name (``../x``, ``/etc/x``) or has wrong-typed fields are dropped without looking at
what they name; symlinks, FIFOs and other non-regular entries are reported and left in place,
never opened, followed or renamed; sample files are read by :mod:`.sample_file` (bounded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
import stat
from typing import Any

from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.atomic import TMP_SUFFIX
from assoc_logger_ros.recording.confine import kind_of, regular_size
from assoc_logger_ros.recording.sample_file import load_sample
from assoc_logger_ros.recording.schema import MANIFEST_NAME, SAMPLE_SUFFIX, sample_index
from assoc_logger_ros.recording.validate import validate

CORRUPT_SUFFIX = '.corrupt'
_MANIFEST_TMP = MANIFEST_NAME + TMP_SUFFIX


@dataclass
class Reconciled:
    """The directory's state after reconciling, and every change made (one line each)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    next_index: int = 0
    total_bytes: int = 0
    messages: list[str] = field(default_factory=list)


def _quarantine(path: Path, fix: bool) -> str:
    if fix:
        os.replace(path, path.with_name(path.name + CORRUPT_SUFFIX))
    return f'{path.name}{CORRUPT_SUFFIX}'


def _record_of(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        arrays = load_sample(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one error line
        return None, [f'cannot load: {type(exc).__name__}: {exc}']
    errors = validate(arrays)
    if errors:
        return None, errors
    return manifest.record_from_arrays(arrays, path.name, path.lstat().st_size), []


def _not_regular(path: Path) -> str | None:
    """'a FIFO', 'a symlink'... when ``path`` exists but is not a regular file, else None."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else kind_of(mode)


def reconcile(directory: str | os.PathLike[str], *, fix: bool = True) -> Reconciled:
    """Check (and with ``fix`` repair) ``directory``; see the module docstring for the rules."""
    d = Path(directory)
    out = Reconciled()
    names = sorted(os.listdir(d))
    highest = -1
    for name in names:
        idx = sample_index(name)
        if idx is not None:
            highest = max(highest, idx)
        if name.endswith(TMP_SUFFIX) and (idx is not None or name == _MANIFEST_TMP):
            if stat.S_ISDIR((d / name).lstat().st_mode):
                out.messages.append(f'{name} is a directory; left in place')
                continue
            if fix:
                os.unlink(d / name)  # a symlink goes, never what it points at
            out.messages.append(f'deleted partial file {name}')
    read = manifest.read(d)
    out.messages += read.problems
    changed = read.changed
    seen: set[str] = set()
    reported: set[str] = set()  # dropped entries already explained (not orphans too)
    for rec in read.records:  # plain names, each listed once (manifest.parse)
        name = rec['npz']
        idx = sample_index(name)
        if idx is not None:
            highest = max(highest, idx)
        path = d / name
        size = regular_size(path)
        if size is None:
            kind = _not_regular(path)
            out.messages.append(f'{name} is in the manifest but missing; entry dropped'
                                if kind is None else
                                f'{name} is {kind}, not a regular file; entry dropped, '
                                'left in place')
            reported.add(name)
            changed = True
            continue
        if rec.get('bytes') != size:
            fixed, errors = _record_of(path)
            changed = True
            if fixed is None:
                new = _quarantine(path, fix)
                reported.add(name)
                out.messages.append(f'{name} is damaged ({errors[0]}); moved to {new}, '
                                    'entry dropped')
                continue
            out.messages.append(f'{name}: manifest entry did not match the file; rebuilt')
            rec = fixed
        seen.add(name)
        out.records.append(rec)
    orphans = [n for n in names if n.endswith(SAMPLE_SUFFIX) and sample_index(n) is not None
               and n not in seen and n not in reported]
    added = []
    for name in sorted(orphans, key=lambda n: sample_index(n) or 0):
        kind = _not_regular(d / name)
        if kind is not None:
            out.messages.append(f'{name} is {kind}, not a sample file; left in place')
            continue
        rec, errors = _record_of(d / name)
        if rec is None:
            new = _quarantine(d / name, fix)
            out.messages.append(f'{name} is not in the manifest and not a valid sample '
                                f'({errors[0]}); moved to {new}')
            continue
        out.messages.append(f'{name} was complete but missing from the manifest; re-added')
        out.records.append(rec)
        added.append(rec)
    if fix and changed:
        manifest.write(d, out.records)
    elif fix and added:
        with open(manifest.manifest_path(d), 'a', encoding='utf-8') as fh:
            fh.write(''.join(manifest.dumps(r) for r in added))
            fh.flush()
            os.fsync(fh.fileno())
    out.next_index = highest + 1
    out.total_bytes = sum(int(r.get('bytes', 0)) for r in out.records)
    return out
