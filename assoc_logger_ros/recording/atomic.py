"""Files that are either complete or absent: temp beside the target, fsync, ``os.replace``.

A crash leaves at most a ``*.tmp`` file, which the writer deletes when it next opens the
directory; the final name only ever points at complete content.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TMP_SUFFIX = '.tmp'


def tmp_path(target: str | os.PathLike[str]) -> Path:
    """The temporary name used while ``target`` is being written (same directory)."""
    target = Path(target)
    return target.with_name(target.name + TMP_SUFFIX)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make renames and new names in ``directory`` durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(target: str | os.PathLike[str], content: bytes, *, fsync: bool = True,
                 sync_dir: bool = False) -> None:
    """Write ``content`` to ``target``: readers see the old file or the new one, never a mix.

    On any error the temporary file is removed and the error re-raised.
    """
    target = Path(target)
    tmp = tmp_path(target)
    try:
        # O_NOFOLLOW: a symlink left under the temp name is refused, not written through;
        # O_NONBLOCK: a FIFO there fails at once instead of waiting for a reader.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK,
                     0o644)
        try:
            view = memoryview(content)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(target.parent)
