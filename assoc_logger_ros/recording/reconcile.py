"""Bring a sample directory back to a consistent state after a crash (run under the lock).

Rules: partial ``*.tmp`` files are deleted; a torn last manifest line is dropped; manifest entries
whose file is missing are dropped, duplicates keep their first entry; complete sample files that
the manifest does not list (a crash between rename and manifest append) are validated and
re-added; files that cannot be valid samples are renamed ``*.corrupt`` (kept for a human, never
reused). Numbering continues after the highest number seen anywhere, so nothing is overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import Any

from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.atomic import TMP_SUFFIX
from assoc_logger_ros.recording.npzfile import load
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
    errors = validate(path)
    if errors:
        return None, errors
    return manifest.record_from_arrays(load(path), path.name, path.stat().st_size), []


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
            if fix:
                os.unlink(d / name)
            out.messages.append(f'deleted partial file {name}')
    read = manifest.read(d)
    out.messages += read.problems
    changed = read.torn is not None or bool(read.bad_lines)
    seen: set[str] = set()
    for rec in read.records:
        name = rec['npz']
        idx = sample_index(name)
        if idx is not None:
            highest = max(highest, idx)
        path = d / name
        if name in seen:
            out.messages.append(f'{name} listed twice in the manifest; later entry dropped')
            changed = True
            continue
        if not path.is_file():
            out.messages.append(f'{name} is in the manifest but missing; entry dropped')
            changed = True
            continue
        if rec.get('bytes') != path.stat().st_size:
            fixed, errors = _record_of(path)
            changed = True
            if fixed is None:
                new = _quarantine(path, fix)
                out.messages.append(f'{name} is damaged ({errors[0]}); moved to {new}, '
                                    'entry dropped')
                continue
            out.messages.append(f'{name}: manifest entry did not match the file; rebuilt')
            rec = fixed
        seen.add(name)
        out.records.append(rec)
    orphans = [n for n in names if n.endswith(SAMPLE_SUFFIX) and sample_index(n) is not None
               and n not in seen]
    added = []
    for name in sorted(orphans, key=lambda n: sample_index(n) or 0):
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
