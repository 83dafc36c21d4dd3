"""Deterministic, fast npz encoding and pickle-free loading.

``np.savez_compressed`` stamps every zip entry with the current time, so two runs over the same
data differ, and it pays ``ZipFile`` and ``np.lib.format.write_array`` overhead per entry (about
50 us each; a sample has ~30 entries). :func:`encode` writes the zip itself: one ``KEY.npy``
member per array (a standard ``.npy`` version 1.0 header, cached per dtype and shape, then the
C-order data), each deflated with one ``zlib.compress`` call (which releases the GIL on large
inputs) or stored when deflate would not make it smaller, a fixed date, and the central
directory. ``np.load(path, allow_pickle=False)`` and ``zipfile`` read it like any npz; identical
arrays always give identical bytes. :func:`encode_zipfile` is the plain ``zipfile`` +
``write_array`` reference it is tested against.
"""

from __future__ import annotations

from collections.abc import Mapping
import io
import os
import struct
import zipfile
import zlib

import numpy as np

_EPOCH = (1980, 1, 1, 0, 0, 0)  # earliest date a zip entry can hold
_DOS_TIME, _DOS_DATE = 0, (1 << 5) | 1  # 1980-01-01 00:00:00 in MS-DOS format
# zlib level 1: on float32 features and embeddings it compresses within ~2 % of level 6 at a
# fraction of the CPU time, which a small robot computer needs more (bench/writer_bench.py).
COMPRESS_LEVEL = 1
_LEVEL_ATTR = ('compress_level' if hasattr(zipfile.ZipInfo, 'compress_level')  # Python >= 3.13
               else '_compresslevel')

_LOCAL = struct.Struct('<IHHHHHIIIHH')  # local file header, name follows
_CENTRAL = struct.Struct('<IHHHHHHIIIHHHHHII')  # central directory header, name follows
_END = struct.Struct('<IHHHHIIH')  # end of central directory record
_VERSION_NEEDED = 20  # deflate
_VERSION_MADE = (3 << 8) | 20  # made on Unix, spec 2.0 (as zipfile writes it)
_EXTERNAL_ATTR = 0o644 << 16  # -rw-r--r--
_ZIP32_LIMIT = 0xFFFFFFFF - 1  # beyond this a zip needs zip64 records: use the reference path
_MAX_ENTRIES = 0xFFFF

_HEADER_CACHE: dict[tuple[str, tuple[int, ...]], bytes] = {}
_HEADER_CACHE_MAX = 4096  # (dtype, shape) patterns; T and D vary, so bound it


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` v1.0 header numpy writes for a C-order array (cached per dtype, shape)."""
    key = (dtype.str, shape)
    header = _HEADER_CACHE.get(key)
    if header is None:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {'descr': np.lib.format.dtype_to_descr(dtype), 'fortran_order': False,
                  'shape': shape})
        header = buf.getvalue()
        if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[key] = header
    return header


def _npy_bytes(value: object) -> bytes:
    arr = np.asarray(value)
    if arr.dtype.hasobject or arr.dtype.names is not None:
        raise ValueError(f'cannot store dtype {arr.dtype} without pickle')
    return npy_header(arr.dtype, arr.shape) + arr.tobytes('C')


def encode(arrays: Mapping[str, np.ndarray], compress: bool = True) -> bytes:
    """The npz file content for ``arrays``, entries in the mapping's order."""
    parts: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for key, value in arrays.items():
        entry = f'{key}.npy'
        if not entry.isascii():  # non-ASCII names need the UTF-8 flag: leave it to zipfile
            return encode_zipfile(arrays, compress)
        name = entry.encode('ascii')
        raw = _npy_bytes(value)
        crc = zlib.crc32(raw)
        data, method = raw, zipfile.ZIP_STORED
        if compress:
            packed = zlib.compress(raw, COMPRESS_LEVEL, -15)
            if len(packed) < len(raw):
                data, method = packed, zipfile.ZIP_DEFLATED
        size, usize = len(data), len(raw)
        if usize > _ZIP32_LIMIT or offset + size > _ZIP32_LIMIT:
            return encode_zipfile(arrays, compress)
        parts.append(_LOCAL.pack(0x04034B50, _VERSION_NEEDED, 0, method, _DOS_TIME, _DOS_DATE,
                                 crc, size, usize, len(name), 0))
        parts.append(name)
        parts.append(data)
        central.append(_CENTRAL.pack(0x02014B50, _VERSION_MADE, _VERSION_NEEDED, 0, method,
                                     _DOS_TIME, _DOS_DATE, crc, size, usize, len(name), 0, 0,
                                     0, 0, _EXTERNAL_ATTR, offset))
        central.append(name)
        offset += _LOCAL.size + len(name) + size
    count = len(central) // 2
    cd = b''.join(central)
    if count > _MAX_ENTRIES or offset + len(cd) > _ZIP32_LIMIT:
        return encode_zipfile(arrays, compress)
    parts.append(cd)
    parts.append(_END.pack(0x06054B50, 0, 0, count, count, len(cd), offset, 0))
    return b''.join(parts)


def encode_zipfile(arrays: Mapping[str, np.ndarray], compress: bool = True) -> bytes:
    """Reference encoder (``zipfile`` + ``write_array``, zip64 capable); same arrays back."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, mode='w', compression=method, allowZip64=True) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f'{key}.npy', date_time=_EPOCH)
            info.compress_type = method
            if compress:  # ZipFile's compresslevel does not reach a hand-made ZipInfo
                setattr(info, _LEVEL_ATTR, COMPRESS_LEVEL)
            info.external_attr = _EXTERNAL_ATTR
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
