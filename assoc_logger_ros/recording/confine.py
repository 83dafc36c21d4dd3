"""Stay inside a sample directory: plain entry names, regular files only, opened without blocking.

A manifest travels with its directory and may have been edited by anyone, so its ``npz`` names
are untrusted. :func:`name_problem` accepts only a plain file name (no separator, no ``..``, not
absolute), so ``DIR / name`` is a direct entry of DIR. :func:`open_regular` then opens that entry
with ``O_NOFOLLOW`` (a symlink, which could point anywhere, is refused rather than followed) and
``O_NONBLOCK`` (opening a FIFO never waits for a writer), and ``fstat``s the descriptor it got,
so what is read is the regular file that was checked, not whatever the name points at a moment
later.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
import stat

_KINDS = ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO'), (stat.S_ISCHR,
          'a character device'), (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'),
          (stat.S_ISLNK, 'a symlink'))


class NotRegularFileError(OSError):
    """The entry exists but is not a regular file (symlink, FIFO, device, directory...)."""


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a sample file directly inside its directory, or None."""
    if not isinstance(name, str):
        return f'npz is {type(name).__name__}, not a file name'
    if not name or name in ('.', '..'):
        return f'npz {name!r} is not a file name'
    if '/' in name or '\x00' in name or os.path.isabs(name):
        return f'npz {name!r} is not a plain file name inside the directory'
    return None


def kind_of(mode: int) -> str:
    """'a FIFO', 'a symlink'... for an ``st_mode`` that is not a regular file."""
    for test, label in _KINDS:
        if test(mode):
            return label
    return 'not a regular file'


def entry(directory: str | os.PathLike[str], name: str) -> Path:
    """``directory / name`` after checking that ``name`` is a plain name (ValueError if not)."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return Path(directory) / name


def regular_size(path: str | os.PathLike[str]) -> int | None:
    """Size of ``path`` when it is a regular file (symlinks not followed), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor of the regular file ``path``; never follows a symlink or blocks.

    Raises :class:`NotRegularFileError` for anything else and the usual ``OSError`` when missing.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW: the last component is a symlink
            raise NotRegularFileError(f'{Path(path).name} is a symlink; only regular files are '
                                      'read') from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(f'{Path(path).name} is {kind_of(st.st_mode)}; only regular '
                                      'files are read')
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The whole content of the regular file ``path`` (see :func:`open_regular`)."""
    fd = open_regular(path)
    with os.fdopen(fd, 'rb') as fh:
        return fh.read()
