"""Open and read one sample file safely: the one place every tool and the writer's repair use.

Safe means: the file is a regular file opened without following a symlink or blocking on a FIFO
(:mod:`.confine`); nothing is unpickled; and before any member is inflated its declared shape
and dtype (zip central directory + ``.npy`` header) are checked against the schema's shape rules
(T, D, K agree across keys, fixed axes exact) and the byte cap :data:`MAX_SAMPLE_BYTES`. A zip
bomb or a file that lies about its shapes is therefore rejected after reading a few kilobytes.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from assoc_logger_ros.recording.confine import entry, open_regular
from assoc_logger_ros.recording.npzfile import (
    Member,
    NpzRejectedError,
    check_declared,
    load_bounded,
    members,
)
from assoc_logger_ros.recording.shapes import shape_errors

# Arrays of one sample, inflated. A 4,000 x 4,000 association (cost + mask) with 4,000 x 2,048
# embeddings on each side is about 190 MiB; nothing this package writes comes near the cap.
MAX_SAMPLE_BYTES = 512 * 2**20

__all__ = ['MAX_SAMPLE_BYTES', 'NpzRejectedError', 'declared_errors', 'load_sample',
           'load_sample_in', 'open_checked', 'probe_sample']


def declared_errors(found: list[Member]) -> list[str]:
    """Schema shape-rule violations of the declared members (nothing inflated)."""
    errors, _ = shape_errors({m.key: m.shape for m in found})
    return errors


def load_sample(path: str | os.PathLike[str], *, max_bytes: int = MAX_SAMPLE_BYTES
                ) -> dict[str, np.ndarray]:
    """Every array of the sample file ``path``, read within the bounds above.

    Raises ``OSError`` (missing, :class:`~.confine.NotRegularFileError`), :class:`NpzRejectedError`
    (too big, inconsistent shapes, pickled objects) or a zip/zlib error (damaged file).
    """
    with os.fdopen(open_regular(path), 'rb') as fh:
        return load_bounded(fh, max_bytes=max_bytes, check=declared_errors)


def load_sample_in(directory: str | os.PathLike[str], name: str, *,
                   max_bytes: int = MAX_SAMPLE_BYTES) -> dict[str, np.ndarray]:
    """:func:`load_sample` of the entry ``name`` of ``directory`` (a plain name, ValueError)."""
    return load_sample(entry(directory, name), max_bytes=max_bytes)


def open_checked(path: str | os.PathLike[str], *, max_bytes: int = MAX_SAMPLE_BYTES) -> int:
    """A descriptor (at offset 0) of the regular sample file ``path`` whose headers passed.

    For copying and linking: the caller uses exactly the file that was checked, and nothing
    but headers has been inflated.
    """
    fd = open_regular(path)
    try:
        with open(fd, 'rb', closefd=False) as fh, zipfile.ZipFile(fh) as zf:
            check_declared(members(zf), max_bytes, declared_errors)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def probe_sample(path: str | os.PathLike[str], *, max_bytes: int = MAX_SAMPLE_BYTES) -> int:
    """Check a sample's structure from its headers alone (fast); its size in bytes."""
    fd = open_checked(path, max_bytes=max_bytes)
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)
