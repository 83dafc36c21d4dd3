"""The schema's shape rules (T, D, K bound once, fixed axes exact) over shapes alone.

Shared by the validator (loaded arrays) and the bounded reader (shapes declared in ``.npy``
headers, before anything is inflated), so both apply exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping

from assoc_logger_ros.recording.schema import FIELDS


def shape_errors(shapes: Mapping[str, tuple[int, ...]]) -> tuple[list[str], dict[str, int]]:
    """Bind T, D, K from the first key that defines each, then check every shape."""
    errors: list[str] = []
    dims: dict[str, int] = {}
    for f in FIELDS:
        shape = shapes.get(f.key)
        if shape is None:
            continue
        if len(shape) != len(f.shape):
            errors.append(f'{f.key}: shape {shape}, expected {f.shape_text}')
            continue
        for axis, (want, got) in enumerate(zip(f.shape, shape)):
            if want.__class__ is int:
                if got != want:
                    errors.append(f'{f.key}: axis {axis} is {got}, expected {want}')
            else:
                bound = dims.setdefault(want, got)
                if bound != got:
                    errors.append(f'{f.key}: {want}={got} but {want}={bound} elsewhere')
    return errors, dims
