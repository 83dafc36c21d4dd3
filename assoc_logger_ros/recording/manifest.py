"""``manifest.jsonl``: one JSON object per complete sample, ``npz`` first, enough for ``jq``.

A record is computed from the sample's arrays only (no clock, no host), so the manifest of a
replay is as reproducible as its samples. Reading tolerates the torn last line a crash leaves
behind and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from assoc_logger_ros.recording.confine import name_problem, read_regular
from assoc_logger_ros.recording.schema import MANIFEST_NAME

# Keys every record has, in order (npz first, as the seed's tools expect).
RECORD_KEYS = ('npz', 'session', 'frame_idx', 'stamp_ns', 'tracks', 'detections',
               'matched_pairs', 'mean_visibility', 'est_id_switches', 'est_id_switches_frame',
               'bytes', 'has_gt', 'track_embed_dim', 'det_embed_dim', 'embed_dim',
               'embed_truncated', 'schema_version')


def record_from_arrays(arrays: Mapping[str, np.ndarray], npz: str, nbytes: int
                       ) -> dict[str, Any]:
    """The manifest record of a sample (the writer's arrays or a loaded npz)."""
    vis = np.asarray(arrays['det_visibility'], dtype=np.float64)
    assigned = np.asarray(arrays['assigned_track_ids'])
    return {
        'npz': npz,
        'session': str(arrays['session_id'][()]),
        'frame_idx': int(np.asarray(arrays['frame_idx']).reshape(-1)[0]),
        'stamp_ns': int(arrays['stamp_ns']),
        'tracks': int(arrays['track_ids'].shape[0]),
        'detections': int(arrays['det_boxes'].shape[0]),
        'matched_pairs': int((assigned >= 0).sum()),
        'mean_visibility': round(float(vis.mean()), 6) if vis.size else None,
        'est_id_switches': int(arrays['est_id_switches']),
        'est_id_switches_frame': int(arrays['est_id_switches_frame']),
        'bytes': int(nbytes),
        'has_gt': 'det_gt_ids' in arrays,
        'track_embed_dim': int(arrays['track_embed_dim']),
        'det_embed_dim': int(arrays['det_embed_dim']),
        'embed_dim': int(arrays['track_embeddings'].shape[1]),
        'embed_truncated': bool(arrays['embed_truncated']),
        'schema_version': int(arrays['schema_version']),
    }


def dumps(record: Mapping[str, Any]) -> str:
    """One manifest line (with the newline), key order kept, compact and ASCII."""
    return json.dumps(dict(record), separators=(',', ':')) + '\n'


# Type of every known field: a record with a known field of another type is an invalid entry
# (reported with its line number), so no tool ever meets ``"matched_pairs": null``. Missing
# fields are allowed (hand-made manifests); tools use defaults for them. Unknown fields pass.
_COUNT, _INT, _BOOL, _TEXT, _FRACTION = 'count', 'int', 'bool', 'text', 'fraction'
FIELD_KINDS: dict[str, str] = {
    'npz': _TEXT, 'session': _TEXT, 'frame_idx': _INT, 'stamp_ns': _INT, 'tracks': _COUNT,
    'detections': _COUNT, 'matched_pairs': _COUNT, 'mean_visibility': _FRACTION,
    'est_id_switches': _COUNT, 'est_id_switches_frame': _COUNT, 'bytes': _COUNT,
    'has_gt': _BOOL, 'track_embed_dim': _COUNT, 'det_embed_dim': _COUNT, 'embed_dim': _COUNT,
    'embed_truncated': _BOOL, 'schema_version': _INT,
}
_KIND_TEXT = {_COUNT: 'a non-negative integer', _INT: 'an integer', _BOOL: 'true or false',
              _TEXT: 'a string', _FRACTION: 'a finite number or null'}


def _kind_ok(value: Any, kind: str) -> bool:
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == _BOOL:
        return isinstance(value, bool)
    if isinstance(value, bool):  # bool is an int subclass; true is not a count
        return False
    if kind == _FRACTION:
        return value is None or (isinstance(value, (int, float)) and math.isfinite(value))
    return isinstance(value, int) and (kind == _INT or value >= 0)


def record_problem(rec: Any) -> str | None:
    """Why ``rec`` (a parsed manifest line) is not a usable sample record, or None."""
    if not isinstance(rec, dict):
        return 'not a JSON object'
    if 'npz' not in rec:
        return 'no npz field'
    problem = name_problem(rec['npz'])
    if problem is not None:
        return problem
    for key, kind in FIELD_KINDS.items():
        if key in rec and not _kind_ok(rec[key], kind):
            return f'{key} is {json.dumps(rec[key])[:40]}, expected {_KIND_TEXT[kind]}'
    return None


@dataclass
class ManifestRead:
    """Records of a manifest plus what was wrong with it.

    ``records`` are usable entries only, each file listed once. ``torn`` is the text of an
    incomplete last line (a crash while appending), ``bad_lines`` the 1-based numbers of other
    lines that are not JSON objects with an ``npz`` key, ``invalid`` (line, reason) for records
    with a wrong-typed field or an ``npz`` that does not name a file directly inside the
    directory, ``duplicates`` (line, name) for later entries of a file listed before.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    torn: str | None = None
    bad_lines: list[int] = field(default_factory=list)
    exists: bool = False
    invalid: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when rewriting the manifest from ``records`` would change it."""
        return (self.torn is not None or bool(self.bad_lines) or bool(self.invalid)
                or bool(self.duplicates))

    @property
    def problems(self) -> list[str]:
        """Human-readable problems, one per line."""
        out = []
        if self.torn is not None:
            out.append(f'torn last manifest line dropped ({len(self.torn)} bytes)')
        out += [f'manifest line {n} is not a sample record; ignored' for n in self.bad_lines]
        out += [f'manifest line {n}: {why}; entry ignored' for n, why in self.invalid]
        out += [f'manifest line {n}: {name} listed twice in the manifest; later entry dropped'
                for n, name in self.duplicates]
        return out


def manifest_path(directory: str | os.PathLike[str]) -> Path:
    """Where the manifest of a sample directory lives."""
    return Path(directory) / MANIFEST_NAME


def parse(text: str) -> ManifestRead:
    """Parse manifest text; a last line without its newline counts as torn."""
    out = ManifestRead(exists=True)
    lines = text.split('\n')
    complete = text.endswith('\n') or text == ''
    seen: set[str] = set()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if n == len(lines) and not complete:
            out.torn = line
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            out.bad_lines.append(n)
            continue
        if not isinstance(rec, dict) or 'npz' not in rec:
            out.bad_lines.append(n)
            continue
        problem = record_problem(rec)
        if problem is not None:
            out.invalid.append((n, problem))
        elif rec['npz'] in seen:
            out.duplicates.append((n, rec['npz']))
        else:
            seen.add(rec['npz'])
            out.records.append(rec)
    return out


def read(directory: str | os.PathLike[str]) -> ManifestRead:
    """Read ``DIR/manifest.jsonl`` (an empty result when it does not exist).

    The manifest must be a regular file (a symlink or FIFO raises
    :class:`~assoc_logger_ros.recording.confine.NotRegularFileError`, an ``OSError``).
    """
    try:
        text = read_regular(manifest_path(directory)).decode('utf-8', errors='replace')
    except FileNotFoundError:
        return ManifestRead()
    return parse(text)


def read_records(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Just the complete records of a manifest."""
    return read(directory).records


def write(directory: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> None:
    """Replace the manifest atomically with ``records`` (used by reconcile and the tools)."""
    from assoc_logger_ros.recording.atomic import write_atomic
    write_atomic(manifest_path(directory), ''.join(dumps(r) for r in records).encode('utf-8'))
