"""``torch.utils.data.IterableDataset`` over shards; torch is imported only when it is used.

torch is a training-only dependency: importing this module does not need it. The dataset asks
DataLoader for its worker number and ``torch.distributed`` (when initialised at construction:
create the dataset after ``init_process_group``) for rank and world size, then streams through
:func:`~assoc_logger_ros.shards.stream.iter_samples`.
Samples have per-frame shapes, so use ``batch_size=None`` or ``collate_fn=collate_list``.
"""

from __future__ import annotations

import os
from typing import Any

_CLASS: Any = None


def collate_list(batch: list[Any]) -> list[Any]:
    """Keep a batch as a list of sample dicts (shapes differ per frame)."""
    return batch


def _dataset_class() -> Any:
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    try:  # training-only dependency
        import torch
        from torch.utils.data import IterableDataset, get_worker_info
    except ImportError:
        raise ImportError('shard_dataset needs torch (training only: '
                          'pip install torch==2.13.0)') from None

    from assoc_logger_ros.shards.stream import iter_samples

    class ShardIterableDataset(IterableDataset):
        """Samples of a shard directory, split over ranks and DataLoader workers."""

        def __init__(self, shards: Any, *, rank: int | None = None,
                     world_size: int | None = None, **options: Any) -> None:
            super().__init__()
            self.shards = shards
            dist = torch.distributed
            if (rank is None or world_size is None) and dist.is_available() \
                    and dist.is_initialized():
                # read here: DataLoader worker processes have no process group of their own
                rank, world_size = dist.get_rank(), dist.get_world_size()
            self.rank = rank
            self.world_size = world_size
            self.options = options
            self.epoch = int(options.pop('epoch', 0))

        def set_epoch(self, epoch: int) -> None:
            """Shuffle differently next epoch (same order on every rank)."""
            self.epoch = int(epoch)

        def __iter__(self) -> Any:
            rank, world = self.rank, self.world_size
            dist = torch.distributed
            if rank is None or world is None:
                if dist.is_available() and dist.is_initialized():
                    rank, world = dist.get_rank(), dist.get_world_size()
                else:
                    rank, world = 0, 1
            info = get_worker_info()
            worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
            return iter_samples(self.shards, rank=rank, world_size=world, worker=worker,
                                num_workers=workers, epoch=self.epoch, **self.options)

    ShardIterableDataset.__module__ = __name__
    ShardIterableDataset.__qualname__ = 'ShardIterableDataset'
    _CLASS = ShardIterableDataset
    return _CLASS


def __getattr__(name: str) -> Any:
    """``ShardIterableDataset`` is made on first use (so that pickling to workers finds it)."""
    if name == 'ShardIterableDataset':
        return _dataset_class()
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def shard_dataset(shards: str | os.PathLike[str] | list[Any], *, rank: int | None = None,
                  world_size: int | None = None, **options: Any) -> Any:
    """An IterableDataset of ``shards``.

    ``options`` go to ``iter_samples``: shuffle_buffer, seed, epoch, with_key, decoder,
    on_error.
    """
    return _dataset_class()(shards, rank=rank, world_size=world_size, **options)
