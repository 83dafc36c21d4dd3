"""A sample directory as the tools see it: the manifest's records and their files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
import os
from pathlib import Path
import secrets
import shutil
import stat
from typing import Any

import numpy as np

from assoc_logger_ros.recording import confine, manifest
from assoc_logger_ros.recording.atomic import fsync_dir
from assoc_logger_ros.recording.sample_file import NpzRejectedError, load_sample, open_checked
from assoc_logger_ros.recording.schema import MANIFEST_NAME


class DatasetError(RuntimeError):
    """A tool cannot run on the given directories (missing, not a dataset, would overwrite)."""


@dataclass
class Dataset:
    """Records of ``DIR/manifest.jsonl`` plus the manifest's own problems (torn line...).

    ``records`` hold only usable entries (:func:`manifest.parse`): each names a file directly
    inside ``directory`` (no ``..``, no absolute path), has typed fields and is listed once;
    the other lines are in ``problems`` with their line numbers. Sample files are opened only
    through :mod:`assoc_logger_ros.recording.sample_file` (regular files, bounded reading).
    """

    directory: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> Dataset:
        """Read a sample directory; :class:`DatasetError` when it is not one."""
        d = Path(directory)
        if not d.is_dir():
            raise DatasetError(f'{d} is not a directory')
        try:
            read = manifest.read(d)
        except OSError as exc:
            raise DatasetError(f'cannot read {d / MANIFEST_NAME}: {exc}') from None
        if not read.exists:
            raise DatasetError(f'{d} has no {MANIFEST_NAME}; not a sample directory')
        return cls(d, read.records, read.problems)

    def path(self, record: dict[str, Any]) -> Path:
        """The npz file of a record (always a direct entry of the directory)."""
        return confine.entry(self.directory, record['npz'])

    def size(self, record: dict[str, Any]) -> int | None:
        """Bytes of a record's file when it is a regular file, else None (missing, FIFO...)."""
        return confine.regular_size(self.path(record))

    def load(self, record: dict[str, Any]) -> dict[str, np.ndarray]:
        """All arrays of a record's sample (regular file, sizes checked first, no pickle)."""
        return load_sample(self.path(record))

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


def unusable_reason(exc: BaseException) -> str:
    """One line saying why a sample file was skipped."""
    if isinstance(exc, FileNotFoundError):
        return 'file missing'
    if isinstance(exc, (confine.NotRegularFileError, NpzRejectedError)):
        return str(exc)
    return f'{type(exc).__name__}: {exc}'


@contextmanager
def staged_output(out: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary directory beside ``out`` that becomes ``out`` when the block succeeds.

    ``out`` must not exist or be an empty directory. On any error the temporary directory is
    removed, ``out`` is left as it was, and an ``OSError`` becomes a :class:`DatasetError`
    that says why. A crash leaves only a hidden ``.NAME.*.tmp`` directory beside ``out``.
    """
    out = Path(out)
    if out.is_symlink():
        raise DatasetError(f'{out} is a symlink; refusing to write through it')
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f'{out} exists and is not empty; refusing to overwrite')
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f'.{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp'
        tmp.mkdir()
    except OSError as exc:
        raise DatasetError(f'cannot create {out}: {exc}') from None
    try:
        yield tmp
        fsync_dir(tmp)
        os.rename(tmp, out)  # onto nothing or an empty directory, atomically
        fsync_dir(out.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise DatasetError(f'cannot write {out} ({exc}); nothing was written') from None
        raise


def _copy_fd(fd: int, dst: Path) -> None:
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
    finally:
        os.close(out)


def place_sample(src: Path, dst: Path) -> str:
    """Put the sample file ``src`` at ``dst`` as a real file: 'link' or 'copy'.

    ``src`` must pass :func:`~assoc_logger_ros.recording.sample_file.open_checked` (a regular
    file with sound headers; anything else raises). It is hard-linked when the link is
    provably that same file, otherwise copied from the descriptor that was checked, so a
    symlink is never followed and never copied as a link.
    """
    fd = open_checked(src)
    try:
        st = os.fstat(fd)
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:
            pass
        else:
            got = os.lstat(dst)
            if stat.S_ISREG(got.st_mode) and (got.st_ino, got.st_dev) == (st.st_ino, st.st_dev):
                return 'link'
            os.unlink(dst)  # src changed after the check: copy what was checked instead
        _copy_fd(fd, dst)
        return 'copy'
    finally:
        os.close(fd)


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
