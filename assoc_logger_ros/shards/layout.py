"""Names and limits of a shard directory; nothing here touches a member name as a path.

Layout of ``SHARDS_DIR``::

    shards.json                 marker: format name and version (written first)
    shard-000000.tar            finished shard: ustar members KEY.npz + KEY.json per sample
    shard-000000.index.jsonl    its index (one line per sample: offsets, sizes, record)
    shard-000001.tar.part       the open shard of a recorder (or what a crash left)
    index/session_key=.../*.parquet   the manifest as a table, partitioned by session

A shard gets its final ``.tar`` name only after its index is written, so every ``.tar`` is
complete and indexed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import re

FORMAT = 'assoc_logger_ros.shards'
VERSION = 1
MARKER_NAME = 'shards.json'
INDEX_DIR = 'index'
SHARD_PREFIX = 'shard-'
SHARD_DIGITS = 6
SHARD_SUFFIX = '.tar'
PART_SUFFIX = '.tar.part'
INDEX_SUFFIX = '.index.jsonl'
NPZ_EXT = 'npz'
JSON_EXT = 'json'

# Bounds on what a reader accepts before reading it (a shard is data, not trusted).
MAX_NPZ_BYTES = 256 * 2**20
MAX_JSON_BYTES = 1 * 2**20
MAX_INDEX_BYTES = 1 * 2**30
SLUG_CHARS = 40

_SHARD_RE = re.compile(r'^shard-(\d{6,12})\.tar$')
_PART_RE = re.compile(r'^shard-(\d{6,12})\.tar\.part$')
_KEY_RE = re.compile(r'^[A-Za-z0-9_-]{1,90}$')
_SLUG_BAD = re.compile(r'[^A-Za-z0-9-]+')


def shard_name(index: int) -> str:
    """``shard-000012.tar``."""
    return f'{SHARD_PREFIX}{index:0{SHARD_DIGITS}d}{SHARD_SUFFIX}'


def shard_number(name: str) -> int | None:
    """The number of a finished shard's file name, None for any other name."""
    m = _SHARD_RE.match(name)
    return int(m.group(1)) if m else None


def part_number(name: str) -> int | None:
    """The number of an open (``.tar.part``) shard's file name, None otherwise."""
    m = _PART_RE.match(name)
    return int(m.group(1)) if m else None


def index_name(shard: str) -> str:
    """Index file of a shard: ``shard-000012.index.jsonl``."""
    return shard[:-len(SHARD_SUFFIX)] + INDEX_SUFFIX


def session_slug(session: str) -> str:
    """File-system and key safe form of a session id (lossy; the record keeps the real one)."""
    slug = _SLUG_BAD.sub('-', session).strip('-')[:SLUG_CHARS]
    return slug or 'session'


def sample_key(session: str, frame_idx: int, ordinal: int) -> str:
    """WebDataset key of a sample: session, frame and a unique ordinal; no dots, no slashes."""
    return f'{session_slug(session)}__{int(frame_idx):010d}__{int(ordinal):09d}'


def is_key(key: str) -> bool:
    """True when ``key`` has the form :func:`sample_key` writes (checked before any use)."""
    return bool(_KEY_RE.match(key))


def split_member(name: str) -> tuple[str, str] | None:
    """(key, extension) of a member name of ours, None for anything else."""
    key, dot, ext = name.rpartition('.')
    if not dot or ext not in (NPZ_EXT, JSON_EXT) or not is_key(key):
        return None
    return key, ext


def marker_text() -> bytes:
    """Content of ``shards.json``."""
    return (json.dumps({'format': FORMAT, 'version': VERSION}) + '\n').encode('ascii')


def is_shard_dir(path: str | os.PathLike[str]) -> bool:
    """True for a directory with the shard marker (pack output or a shard recorder's)."""
    p = Path(path)
    return (p / MARKER_NAME).is_file() and not (p / MARKER_NAME).is_symlink()


def list_shards(directory: Path) -> tuple[list[str], list[str]]:
    """(finished shard names, open part names) in number order; only regular files count."""
    done, parts = [], []
    try:
        names = os.listdir(directory)
    except OSError:
        return [], []
    for n in names:
        p = directory / n
        if shard_number(n) is not None and p.is_file() and not p.is_symlink():
            done.append(n)
        elif part_number(n) is not None and p.is_file() and not p.is_symlink():
            parts.append(n)
    done.sort(key=lambda n: shard_number(n) or 0)
    parts.sort(key=lambda n: part_number(n) or 0)
    return done, parts
