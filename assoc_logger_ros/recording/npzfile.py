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

Reading is bounded (:func:`load_bounded`): every member's ``.npy`` header is read and checked
against its declared zip size, a byte cap and an optional rule (the schema's shapes, see
:mod:`.sample_file`) before anything is inflated; object dtypes (pickle) are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import io
import math
import os
import struct
from typing import BinaryIO
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


class NpzRejectedError(ValueError):
    """An npz refused before (or instead of) inflating it: too big, inconsistent, or pickled."""


@dataclass(frozen=True)
class Member:
    """One ``KEY.npy`` member as its headers declare it (nothing inflated beyond the header)."""

    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    header_bytes: int
    info: zipfile.ZipInfo

    @property
    def nbytes(self) -> int:
        """Bytes the array will take once inflated (Python ints: no overflow)."""
        return math.prod(self.shape) * self.dtype.itemsize


MAX_MEMBERS = 256  # a sample has ~30; a zip of thousands of members is refused outright
_MAX_NPY_HEADER = 10000  # numpy's own limit for a trusted header
_NPY_MAGIC = b'\x93NUMPY'
_LEN_FIELD = {(1, 0): struct.Struct('<H'), (2, 0): struct.Struct('<I')}
_READ_CHUNK = 1 << 20
# header text -> (shape, fortran, dtype): samples repeat a few dozen headers, and parsing one
# (ast.literal_eval) costs more than reading the member's first bytes
_PARSED_CACHE: dict[bytes, tuple[tuple[int, ...], bool, np.dtype]] = {}


def _header_of(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    key = info.filename[:-len('.npy')]
    with zf.open(info) as fh:
        magic = fh.read(8)
        if len(magic) != 8 or magic[:6] != _NPY_MAGIC:
            raise NpzRejectedError(f'{key}: not a .npy array')
        field = _LEN_FIELD.get((magic[6], magic[7]))
        if field is None:
            raise NpzRejectedError(f'{key}: unsupported .npy version {magic[6]}.{magic[7]}')
        raw_len = fh.read(field.size)
        (hlen,) = field.unpack(raw_len) if len(raw_len) == field.size else (-1,)
        if not 0 <= hlen <= _MAX_NPY_HEADER:
            raise NpzRejectedError(f'{key}: .npy header length {hlen} is out of bounds')
        text = fh.read(hlen)
    if len(text) != hlen:
        raise NpzRejectedError(f'{key}: truncated .npy header')
    parsed = _PARSED_CACHE.get(raw_len + text)
    if parsed is None:
        parse = (np.lib.format.read_array_header_1_0 if field.size == 2
                 else np.lib.format.read_array_header_2_0)
        try:
            parsed = parse(io.BytesIO(raw_len + text))
        except (ValueError, SyntaxError, TypeError) as exc:
            raise NpzRejectedError(f'{key}: bad .npy header ({exc})') from None
        if len(_PARSED_CACHE) >= _HEADER_CACHE_MAX:
            _PARSED_CACHE.clear()
        if hlen <= 256:  # ours are 118; don't let odd files fill the cache with big keys
            _PARSED_CACHE[raw_len + text] = parsed
    shape, fortran, dtype = parsed
    if dtype.hasobject:
        raise NpzRejectedError(f'{key}: dtype {dtype} holds Python objects (would need pickle)')
    member = Member(key, tuple(int(n) for n in shape), dtype, bool(fortran),
                    8 + field.size + hlen, info)
    if member.header_bytes + member.nbytes != info.file_size:
        raise NpzRejectedError(f'{key}: header declares shape {member.shape} {dtype} '
                               f'({member.nbytes} bytes) but the zip member holds '
                               f'{info.file_size - member.header_bytes}')
    return member


def members(zf: zipfile.ZipFile) -> list[Member]:
    """Every member's declared key, shape and dtype; :class:`NpzRejectedError` unless a plain npz.

    Reads only the central directory and the first bytes (the ``.npy`` header) of each member.
    """
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise NpzRejectedError(f'{len(infos)} zip members (at most {MAX_MEMBERS})')
    out: list[Member] = []
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if not name.endswith('.npy') or '/' in name:
            raise NpzRejectedError(f'zip member {name!r} is not a KEY.npy array')
        if name in seen:
            raise NpzRejectedError(f'zip member {name!r} appears twice')
        seen.add(name)
        if info.flag_bits & 0x1:
            raise NpzRejectedError(f'zip member {name!r} is encrypted')
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise NpzRejectedError(f'zip member {name!r} uses compression method '
                                   f'{info.compress_type} (only stored and deflate)')
        out.append(_header_of(zf, info))
    return out


def _inflate(zf: zipfile.ZipFile, m: Member) -> np.ndarray:
    count = math.prod(m.shape)
    flat = np.empty(count, m.dtype)
    raw = flat.view(np.uint8).reshape(-1) if m.nbytes else flat
    with zf.open(m.info) as fh:
        fh.read(m.header_bytes)
        pos = 0
        while pos < m.nbytes:
            chunk = fh.read(min(_READ_CHUNK, m.nbytes - pos))
            if not chunk:
                raise NpzRejectedError(f'{m.key}: member ends after {pos} of {m.nbytes} bytes')
            raw[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
            pos += len(chunk)
        fh.read(1)  # reaching the end makes zipfile check the CRC
    if m.fortran_order:
        return flat.reshape(m.shape[::-1]).transpose()
    return flat.reshape(m.shape)


Check = Callable[[list[Member]], list[str]]


def check_declared(found: list[Member], max_bytes: int, check: Check | None = None) -> None:
    """:class:`NpzRejectedError` when the declared arrays exceed ``max_bytes`` or fail check."""
    total = sum(max(m.nbytes, math.prod(m.shape)) for m in found)  # itemsize 0 counts too
    if total > max_bytes:
        big = max(found, key=lambda m: m.nbytes)
        raise NpzRejectedError(f'declares {total} bytes of arrays ({big.key}: shape {big.shape}, '
                               f'{big.nbytes} bytes), over the cap of {max_bytes}')
    errors = check(found) if check is not None else []
    if errors:
        raise NpzRejectedError('; '.join(errors[:3]))


def load_bounded(file: BinaryIO, *, max_bytes: int, check: Check | None = None
                 ) -> dict[str, np.ndarray]:
    """Every array of the npz ``file`` (a seekable binary file), or :class:`NpzRejectedError`.

    Nothing is inflated until every member's declared size is known: the sum must stay within
    ``max_bytes`` and ``check`` (e.g. the schema's shape rules) must return no error. No
    member can inflate past its declared size (``zipfile`` stops there and checks the CRC), so
    the memory used is bounded by ``max_bytes`` whatever the file says.
    """
    with zipfile.ZipFile(file) as zf:
        found = members(zf)
        check_declared(found, max_bytes, check)
        return {m.key: _inflate(zf, m) for m in found}


def load(path: str | os.PathLike[str], *, max_bytes: int = 1 << 30) -> dict[str, np.ndarray]:
    """Every array of the regular file ``path`` (no pickle, no symlink, sizes checked first).

    Sample files are better read through :mod:`assoc_logger_ros.recording.sample_file`, which
    also applies the schema's shape rules and the sample cap.
    """
    from assoc_logger_ros.recording.confine import open_regular
    with os.fdopen(open_regular(path), 'rb') as fh:
        return load_bounded(fh, max_bytes=max_bytes)


def decode(content: bytes) -> dict[str, np.ndarray]:
    """Like :func:`load`, from the bytes :func:`encode` produced."""
    with np.load(io.BytesIO(content), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
