"""Hand-made npz files for hostile-input tests and benchmarks (zip bombs, lying headers).

:func:`write_zip` writes members exactly as given (no checks), so a test can declare any size;
:func:`zero_bomb` builds the deflate stream of gigabytes of zeros in milliseconds.
"""

from __future__ import annotations

from pathlib import Path
import struct
import zlib

_LOCAL = struct.Struct('<IHHHHHIIIHH')
_CENTRAL = struct.Struct('<IHHHHHHIIIHHHHHII')
_END = struct.Struct('<IHHHHIIH')


def write_zip(path: Path, members: list[tuple[str, bytes, int, int]]) -> None:
    """A plain zip: (name, deflated data, crc, uncompressed size) per member."""
    parts, central, offset = [], [], 0
    for name, data, crc, usize in members:
        raw = name.encode()
        parts += [_LOCAL.pack(0x04034B50, 20, 0, 8, 0, 33, crc, len(data), usize, len(raw), 0),
                  raw, data]
        central += [_CENTRAL.pack(0x02014B50, 20, 20, 0, 8, 0, 33, crc, len(data), usize,
                                  len(raw), 0, 0, 0, 0, 0, offset), raw]
        offset += _LOCAL.size + len(raw) + len(data)
    cd = b''.join(central)
    path.write_bytes(b''.join(parts) + cd + _END.pack(0x06054B50, 0, 0, len(members),
                                                     len(members), len(cd), offset, 0))


def deflated(content: bytes) -> tuple[bytes, int, int]:
    """(raw deflate stream, CRC-32, size) of ``content``: an honest member for write_zip."""
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    return c.compress(content) + c.flush(), zlib.crc32(content), len(content)


def zero_bomb(header: bytes, nbytes: int) -> tuple[bytes, int, int]:
    """Raw deflate of ``header`` + ``nbytes`` zeros, built from one repeated 1 MiB block.

    After a full flush deflate starts afresh, so every zero block compresses to the same bytes;
    the stream costs milliseconds to build instead of deflating gigabytes. (The CRC is not the
    real one: nothing may read that far.)
    """
    block = 1 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(block)
    one = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    if c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH) != one:  # the trick needs equal blocks
        raise RuntimeError('zlib does not restart after a full flush here')
    n, rest = divmod(nbytes, block)
    tail = c.compress(bytes(rest)) + c.flush()
    return head + one * n + tail, 0, len(header) + nbytes
