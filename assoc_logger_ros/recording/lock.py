"""One writer per sample directory, enforced with an ``fcntl`` lock file.

Two writers sharing a directory would both continue the numbering from the same point and
interleave manifest lines; the lock turns that into a clear error at open time. The kernel drops
the lock when the process dies, so a crash never leaves the directory locked.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
import stat

LOCK_NAME = '.writer.lock'


class RecorderError(RuntimeError):
    """The sample directory cannot be used (locked by another writer, not writable...)."""


class DirectoryLock:
    """Exclusive, non-blocking lock on ``DIR/.writer.lock``; holds the owner's pid for errors."""

    def __init__(self, directory: str | os.PathLike[str], purpose: str = 'sample writer'
                 ) -> None:
        self.path = Path(directory) / LOCK_NAME
        try:
            # O_NOFOLLOW | O_NONBLOCK: a symlink planted here is refused (the pid is never
            # written through it), a FIFO never blocks; only a regular file is used
            self._fd: int | None = os.open(
                self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
            if not stat.S_ISREG(os.fstat(self._fd).st_mode):
                os.close(self._fd)
                raise OSError(errno.EINVAL, 'not a regular file')
        except OSError as exc:
            raise RecorderError(f'cannot create lock file {self.path}: {exc}') from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = self._owner()
            os.close(self._fd)
            self._fd = None
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RecorderError(
                    f'{directory} is in use by another writer ({owner}); two writers never '
                    'share a directory: stop it or choose another log_dir') from None
            raise RecorderError(f'cannot lock {self.path}: {exc}') from exc
        try:  # the pid only names the owner in errors: a full disk must not cost the lock
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f'pid {os.getpid()} ({purpose})\n'.encode())
        except OSError:
            pass

    def _owner(self) -> str:
        try:
            return self.path.read_text(encoding='utf-8').strip() or 'unknown pid'
        except OSError:
            return 'unknown pid'

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock (idempotent); the lock file itself stays, empty."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
