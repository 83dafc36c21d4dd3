"""The few ustar pieces a shard needs, written and read strictly (no ``tarfile`` trust).

Members are regular files with short ASCII names, mode 0644, owner 0, mtime 0, so identical
samples give identical shards and any tar reader (``tar``, ``tarfile``, WebDataset) reads them.
Reading parses each 512-byte header itself, checks its checksum and bounds the size before a
byte of data is read; names are only matched against the key pattern, never opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

BLOCK = 512
END_OF_ARCHIVE = b'\0' * (2 * BLOCK)


class ShardFormatError(ValueError):
    """A shard's bytes are not the tar members this package writes."""


def _octal(value: int, width: int) -> bytes:
    return (b'%0*o' % (width - 1, value)) + b'\0'


def header(name: str, size: int) -> bytes:
    """The ustar header block of a regular member ``name`` of ``size`` bytes."""
    raw = name.encode('ascii')
    if len(raw) > 100:
        raise ValueError(f'member name too long for ustar: {name!r}')
    h = bytearray(BLOCK)
    h[0:len(raw)] = raw
    h[100:108] = _octal(0o644, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(0, 12)
    h[148:156] = b' ' * 8
    h[156:157] = b'0'
    h[257:263] = b'ustar\0'
    h[263:265] = b'00'
    h[148:156] = b'%06o\0 ' % sum(h)
    return bytes(h)


def padding(size: int) -> bytes:
    """Zero bytes that round a member's data up to whole blocks."""
    return b'\0' * (-size % BLOCK)


def member(name: str, data: bytes) -> bytes:
    """Header, data and padding of one member."""
    return header(name, len(data)) + data + padding(len(data))


@dataclass(frozen=True)
class MemberHeader:
    """A parsed header: name, data size and where the data starts in the file."""

    name: str
    size: int
    data_offset: int

    @property
    def end(self) -> int:
        """Offset just past the member's padded data."""
        return self.data_offset + self.size + (-self.size % BLOCK)


def parse_header(block: bytes, offset: int) -> MemberHeader | None:
    """The header at ``offset``; None at the end-of-archive block; ShardFormatError if bad."""
    if len(block) < BLOCK:
        raise ShardFormatError(f'truncated header at byte {offset}')
    if block == b'\0' * BLOCK:
        return None
    stored = block[148:156].split(b'\0', 1)[0].strip()
    try:
        checksum = int(stored or b'x', 8)
        size = int(block[124:136].split(b'\0', 1)[0].strip() or b'0', 8)
    except ValueError:
        raise ShardFormatError(f'unreadable header at byte {offset}') from None
    if checksum != sum(block[:148]) + 8 * 32 + sum(block[156:]):
        raise ShardFormatError(f'header checksum mismatch at byte {offset}')
    if block[156:157] not in (b'0', b'\0') or block[345:346] != b'\0':
        raise ShardFormatError(f'member at byte {offset} is not a plain regular file')
    try:
        name = block[:100].split(b'\0', 1)[0].decode('ascii')
    except UnicodeDecodeError:
        raise ShardFormatError(f'non-ASCII member name at byte {offset}') from None
    return MemberHeader(name, size, offset + BLOCK)


def iter_members(fh: BinaryIO, limits: dict[str, int], *, file_size: int | None = None,
                 start: int = 0) -> Iterator[tuple[MemberHeader, bytes]]:
    """(header, data) of each member read sequentially from ``fh`` (positioned at ``start``).

    ``limits`` maps a name's extension to the largest data size accepted; a member with any
    other extension, or larger, raises :class:`ShardFormatError` before its data is read. Stops
    at the end-of-archive block or the end of the file.
    """
    offset = start
    while True:
        block = fh.read(BLOCK)
        if not block:
            return
        h = parse_header(block, offset)
        if h is None:
            return
        ext = h.name.rpartition('.')[2]
        limit = limits.get(ext)
        if limit is None:
            raise ShardFormatError(f'unexpected member {h.name[:60]!r} at byte {offset}')
        if h.size > limit:
            raise ShardFormatError(f'member {h.name[:60]!r} is {h.size} bytes, over the '
                                   f'{limit}-byte limit')
        if file_size is not None and h.end > file_size:
            raise ShardFormatError(f'member {h.name[:60]!r} runs past the end of the file')
        data = fh.read(h.size)
        if len(data) != h.size:
            raise ShardFormatError(f'member {h.name[:60]!r} is truncated')
        pad = -h.size % BLOCK
        if pad and len(fh.read(pad)) != pad:
            raise ShardFormatError(f'member {h.name[:60]!r} is truncated')
        offset = h.end
        yield h, data
