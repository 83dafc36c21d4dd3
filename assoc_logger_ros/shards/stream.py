"""Streaming training input: samples read shard by shard, never a directory in memory.

:func:`iter_samples` yields each sample as the dict ``dict(np.load(npz))`` gives (same keys,
dtypes, shapes and values), reading finished shards sequentially with one buffered file open
at a time. Work is split over ``world_size`` ranks times ``num_workers`` DataLoader workers:
whole shards when there are at least as many shards as consumers, otherwise every consumer
reads all shards and keeps every n-th sample; either way the consumers see disjoint samples
whose union is the dataset. ``shuffle_buffer`` > 0 shuffles the shard order (the same order on
every rank, from ``seed`` and ``epoch``) and the samples within a buffer of that many. Memory is
bounded by the buffer plus one sample being read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
import os
from pathlib import Path
from typing import Any
import warnings

import numpy as np

from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.npzdecode import decode, numpy_decode
from assoc_logger_ros.shards.sink import LIMITS
from assoc_logger_ros.shards.tarformat import ShardFormatError, iter_members

Sample = dict[str, np.ndarray]
READ_BUFFER = 1 << 20


def shard_paths(shards: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
                ) -> list[Path]:
    """Finished shard files of a shard directory (in number order), or the given files."""
    if isinstance(shards, (str, os.PathLike)):
        d = Path(shards)
        if d.is_dir():
            done, _ = layout.list_shards(d)
            return [d / n for n in done]
        return [d]
    return [Path(p) for p in shards]


def _read_shard(path: Path, decoder: Callable[..., Sample], keep: Callable[[int], bool],
                counter: list[int], on_error: str) -> Iterator[tuple[str, Sample]]:
    """(key, sample) of each kept sample of one shard; ``counter[0]`` counts every sample."""
    try:
        fh = open(path, 'rb', buffering=READ_BUFFER)
    except OSError as exc:
        _problem(on_error, f'{path.name}: {exc.strerror}')
        return
    with fh:
        try:
            for h, data in iter_members(fh, LIMITS):
                parts = layout.split_member(h.name)
                if parts is None:
                    raise ShardFormatError(f'member {h.name[:60]!r} is not a sample member')
                if parts[1] != layout.NPZ_EXT:
                    continue
                n = counter[0]
                counter[0] += 1
                if keep(n):
                    yield parts[0], decoder(data, max_bytes=8 * layout.MAX_NPZ_BYTES)
        except (ShardFormatError, ValueError) as exc:
            _problem(on_error, f'{path.name}: {exc}; rest of the shard skipped')


def _problem(on_error: str, message: str) -> None:
    if on_error == 'raise':
        raise ShardFormatError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def iter_samples(shards: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                 rank: int = 0, world_size: int = 1, worker: int = 0, num_workers: int = 1,
                 shuffle_buffer: int = 0, seed: int = 0, epoch: int = 0,
                 with_key: bool = False, decoder: str = 'fast',
                 on_error: str = 'warn') -> Iterator[Any]:
    """Yield the samples of ``shards`` for consumer (``rank``, ``worker``).

    ``shards``: a shard directory or a list of shard files. Yields sample dicts, or
    ``(key, sample)`` with ``with_key``. ``decoder``: 'fast' (:mod:`.npzdecode`) or 'numpy'
    (``np.load``). ``on_error``: 'warn' skips the rest of a damaged shard with a
    ``RuntimeWarning``; 'raise' raises :class:`ShardFormatError`.
    """
    if not (0 <= rank < world_size and 0 <= worker < num_workers):
        raise ValueError(f'rank {rank}/{world_size}, worker {worker}/{num_workers} out of range')
    if on_error not in ('warn', 'raise'):
        raise ValueError(f'on_error must be warn or raise, not {on_error!r}')
    if decoder not in ('fast', 'numpy'):
        raise ValueError(f'decoder must be fast or numpy, not {decoder!r}')
    dec = decode if decoder == 'fast' else numpy_decode
    paths = shard_paths(shards)
    if shuffle_buffer > 0:
        order = np.random.default_rng([seed, epoch]).permutation(len(paths))
        paths = [paths[i] for i in order]
    consumers = world_size * num_workers
    slot = rank * num_workers + worker
    if len(paths) >= consumers:
        mine, keep = paths[slot::consumers], (lambda n: True)
    else:
        mine, keep = paths, (lambda n: n % consumers == slot)

    def source() -> Iterator[tuple[str, Sample]]:
        counter = [0]
        for p in mine:
            yield from _read_shard(p, dec, keep, counter, on_error)

    items: Iterator[tuple[str, Sample]] = source()
    if shuffle_buffer > 0:
        items = shuffled(items, shuffle_buffer, np.random.default_rng([seed, epoch, slot]))
    for key, sample in items:
        yield (key, sample) if with_key else sample


def shuffled(items: Iterator[Any], size: int, rng: np.random.Generator) -> Iterator[Any]:
    """Items in a shuffle-buffer order: a random slot of a ``size`` buffer out per item in."""
    buf: list[Any] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = int(rng.integers(size))
        yield buf[j]
        buf[j] = item
    rng.shuffle(buf)
    yield from buf
