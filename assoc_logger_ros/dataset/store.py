"""A sample directory as the tools see it: the manifest's records and their files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
from typing import Any

import numpy as np

from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.npzfile import load
from assoc_logger_ros.recording.schema import MANIFEST_NAME


class DatasetError(RuntimeError):
    """A tool cannot run on the given directories (missing, not a dataset, would overwrite)."""


@dataclass
class Dataset:
    """Records of ``DIR/manifest.jsonl`` plus the manifest's own problems (torn line...)."""

    directory: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> Dataset:
        """Read a sample directory; :class:`DatasetError` when it is not one."""
        d = Path(directory)
        if not d.is_dir():
            raise DatasetError(f'{d} is not a directory')
        read = manifest.read(d)
        if not read.exists:
            raise DatasetError(f'{d} has no {MANIFEST_NAME}; not a sample directory')
        return cls(d, read.records, read.problems)

    def path(self, record: dict[str, Any]) -> Path:
        """The npz file of a record."""
        return self.directory / record['npz']

    def load(self, record: dict[str, Any]) -> dict[str, np.ndarray]:
        """All arrays of a record's sample (no pickle)."""
        return load(self.path(record))

    def sessions(self) -> list[str]:
        """Session ids in order of first appearance."""
        return list(dict.fromkeys(str(r.get('session', '')) for r in self.records))

    def iter_loaded(self, every: int = 1) -> Iterator[tuple[dict[str, Any], dict | None, str]]:
        """(record, arrays or None, load error) for every ``every``-th record."""
        for rec in self.records[::max(1, every)]:
            try:
                yield rec, self.load(rec), ''
            except Exception as exc:  # noqa: BLE001 - reported per file
                yield rec, None, f'{type(exc).__name__}: {exc}'


def fresh_output(out: str | os.PathLike[str]) -> Path:
    """Create ``out`` for a tool's result; refuse to write into a non-empty directory."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f'{out} exists and is not empty; refusing to overwrite')
    out.mkdir(parents=True, exist_ok=True)
    return out


def link_or_copy(src: Path, dst: Path) -> str:
    """Hard-link ``src`` to ``dst``; copy when linking is impossible. Returns 'link'/'copy'."""
    try:
        os.link(src, dst)
        return 'link'
    except OSError:
        shutil.copy2(src, dst)
        return 'copy'


def session_switches(records: list[dict[str, Any]]) -> dict[str, int]:
    """Estimated ID switches per session over its logged samples.

    ``est_id_switches`` is cumulative within a session, so the session's count is its largest
    value minus the count before its first logged sample.
    """
    lo: dict[str, int] = {}
    hi: dict[str, int] = {}
    for r in records:
        s = str(r.get('session', ''))
        total = int(r.get('est_id_switches', 0))
        before = total - int(r.get('est_id_switches_frame', 0))
        lo[s] = min(lo.get(s, before), before)
        hi[s] = max(hi.get(s, total), total)
    return {s: hi[s] - lo[s] for s in hi}
