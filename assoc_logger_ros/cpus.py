"""How many CPUs this process may use: what writer, trainer and worker counts size against."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where there is none); >= 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):      # no affinity on this platform
        return max(os.cpu_count() or 1, 1)
