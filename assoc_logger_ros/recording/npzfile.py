"""Deterministic npz encoding and pickle-free loading.

``np.savez_compressed`` stamps every zip entry with the current time, so two runs over the same
data differ. :func:`encode` writes the same zip layout (one ``KEY.npy`` entry per array, readable
by ``np.load``) with a fixed date, so identical arrays always give identical bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
import io
import os
import zipfile

import numpy as np

_EPOCH = (1980, 1, 1, 0, 0, 0)  # earliest date a zip entry can hold
# zlib level 1: on float32 features and embeddings it compresses within ~2 % of level 6 at a
# fraction of the CPU time, which a small robot computer needs more (bench/writer_bench.py).
COMPRESS_LEVEL = 1
_LEVEL_ATTR = ('compress_level' if hasattr(zipfile.ZipInfo, 'compress_level')  # Python >= 3.13
               else '_compresslevel')


def encode(arrays: Mapping[str, np.ndarray], compress: bool = True) -> bytes:
    """The npz file content for ``arrays``, entries in the mapping's order."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, mode='w', compression=method, allowZip64=True) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f'{key}.npy', date_time=_EPOCH)
            info.compress_type = method
            if compress:  # ZipFile's compresslevel does not reach a hand-made ZipInfo
                setattr(info, _LEVEL_ATTR, COMPRESS_LEVEL)
            info.external_attr = 0o644 << 16
            with zf.open(info, mode='w', force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
    return buf.getvalue()


def load(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of an npz, read eagerly with ``allow_pickle=False``."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def decode(content: bytes) -> dict[str, np.ndarray]:
    """Like :func:`load`, from the bytes :func:`encode` produced."""
    with np.load(io.BytesIO(content), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
