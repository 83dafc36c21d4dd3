"""``manifest.jsonl``: one JSON object per complete sample, ``npz`` first, enough for ``jq``.

A record is computed from the sample's arrays only (no clock, no host), so the manifest of a
replay is as reproducible as its samples. Reading tolerates the torn last line a crash leaves
behind and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

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


@dataclass
class ManifestRead:
    """Records of a manifest plus what was wrong with it.

    ``torn`` is the text of an incomplete last line (a crash while appending), ``bad_lines``
    the 1-based numbers of other lines that were not JSON objects with an ``npz`` key.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    torn: str | None = None
    bad_lines: list[int] = field(default_factory=list)
    exists: bool = False

    @property
    def problems(self) -> list[str]:
        """Human-readable problems, one per line."""
        out = []
        if self.torn is not None:
            out.append(f'torn last manifest line dropped ({len(self.torn)} bytes)')
        out += [f'manifest line {n} is not a sample record; ignored' for n in self.bad_lines]
        return out


def manifest_path(directory: str | os.PathLike[str]) -> Path:
    """Where the manifest of a sample directory lives."""
    return Path(directory) / MANIFEST_NAME


def parse(text: str) -> ManifestRead:
    """Parse manifest text; a last line without its newline counts as torn."""
    out = ManifestRead(exists=True)
    lines = text.split('\n')
    complete = text.endswith('\n') or text == ''
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if n == len(lines) and not complete:
            out.torn = line
            continue
        try:
            rec = json.loads(line)
            ok = isinstance(rec, dict) and isinstance(rec.get('npz'), str)
        except ValueError:
            ok = False
        if not ok:
            out.bad_lines.append(n)
        else:
            out.records.append(rec)
    return out


def read(directory: str | os.PathLike[str]) -> ManifestRead:
    """Read ``DIR/manifest.jsonl`` (an empty result when it does not exist)."""
    path = manifest_path(directory)
    try:
        text = path.read_bytes().decode('utf-8', errors='replace')
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
