"""Streaming training input over shard directories: DataLoader workers, a shuffle buffer.

The default recipe (:mod:`.data`) labels every sample once and keeps the examples in memory.
With ``--stream`` the trainer instead reads finished shards with several DataLoader workers,
each worker whole shards (``shards[slot::consumers]``, the order permuted per epoch), labels
them in write order, shuffles the examples within a buffer and batches them; memory is bounded
by the buffer, one window of batches and one sample being read, whatever the dataset size.

Labels need the frames of a session in time order (:class:`.data.Labeler` carries track
identities from frame to frame). A worker labels each shard with a fresh labeler, so the
examples do not depend on the number of workers or the shard order. Where a session continues
from an earlier shard and ground truth is used, some tracked/lost tracks have no identity yet
(their history is in the earlier shard). A detection matched to a track that has one gets
exactly the in-memory recipe's label (that track's identity is newer than any from the earlier
shard); a "no match" label could be wrong (an unknown track may hold the identity), so such
detections get weight 0 and are counted as ``masked`` until the unknown tracks are gone.

Train and validation are split by session exactly as in :func:`.data.split_by_session`
(a single session: the last ``val_fraction`` of its frames, counted over samples).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assoc_logger_ros.shards.stream import shuffled
from assoc_logger_ros.training import data
from assoc_logger_ros.training.model import torch

TRACK_W, DET_W = 10, 8


@dataclass(frozen=True)
class Split:
    """Which examples validate: whole sessions, or frames of one session."""

    val_sessions: frozenset[str] = frozenset()
    val_frames: dict[str, frozenset[int]] = field(default_factory=dict)

    def is_val(self, session: str, frame_idx: int) -> bool:
        """True when the example of (session, frame) is a validation example."""
        return session in self.val_sessions or frame_idx in self.val_frames.get(session, ())


@dataclass(frozen=True)
class ShardInfo:
    """One finished shard and what the index says it holds."""

    path: Path
    samples: int
    sessions: frozenset[str]
    continued: frozenset[str]   # sessions that also appear in an earlier shard


@dataclass
class Plan:
    """The shards of a streaming run and its train/validation split."""

    shards: list[ShardInfo]
    split: Split
    train_sessions: list[str]
    val_labels: list[str]

    @property
    def samples(self) -> int:
        """Samples in all shards."""
        return sum(s.samples for s in self.shards)

    def for_role(self, role: str) -> list[int]:
        """Indices of the shards holding examples of ``role`` ('train', 'val', 'all')."""
        sp = self.split
        out = []
        for i, s in enumerate(self.shards):
            has_val = bool(s.sessions & sp.val_sessions) or bool(s.sessions & set(sp.val_frames))
            has_train = bool(s.sessions - sp.val_sessions)
            if role == 'all' or (role == 'val' and has_val) or (role == 'train' and has_train):
                out.append(i)
        return out


def make_plan(paths: Sequence[str | Path], val_fraction: float = 0.2,
              val_sessions: Sequence[str] | None = None) -> Plan:
    """The plan over shard directories, from their indexes alone (no sample is read)."""
    from assoc_logger_ros.shards import layout
    shards: list[ShardInfo] = []
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for root in map(Path, paths):
        if not layout.is_shard_dir(root):
            raise data.DataError(f'{root}: --stream reads shard directories (make one with '
                                 f'"pack {root} --out SHARDS")')
        source = data._open(root)
        per: dict[str, list[dict[str, Any]]] = {}
        for rec in source.records:
            per.setdefault(source.location(rec)[0], []).append(rec)
        for name in source.shards:
            recs = per.get(name, [])
            sess = frozenset(str(r.get('session', '')) for r in recs)
            shards.append(ShardInfo(root / name, len(recs), sess, frozenset(sess & seen)))
            seen |= sess
            for r in recs:
                order.setdefault(str(r.get('session', '')), []).append(
                    int(r.get('frame_idx', -1)))
    if not shards or not seen:
        raise data.DataError(f'no samples in {", ".join(map(str, paths))}')
    sessions = sorted(seen)
    if val_sessions is not None:
        split = Split(frozenset(val_sessions))
    elif val_fraction <= 0:
        split = Split()
    elif len(sessions) == 1:
        frames = order[sessions[0]]
        cut = int(round(len(frames) * (1.0 - val_fraction)))
        split = Split(val_frames={sessions[0]: frozenset(frames[cut:])})
        return Plan(shards, split, [sessions[0]],
                    [f'{sessions[0]} (last {val_fraction:.0%} of frames)'])
    else:
        n_val = max(1, int(round(len(sessions) * val_fraction)))
        step = len(sessions) / n_val
        split = Split(frozenset(sessions[int(i * step)] for i in range(n_val)))
    return Plan(shards, split, [s for s in sessions if s not in split.val_sessions],
                sorted(split.val_sessions))


def assign(shard_ids: list[int], consumers: int, shuffle: bool, seed: int,
           epoch: int) -> list[list[int]]:
    """Shards of each consumer (rank-major, then worker); the order permuted per epoch."""
    ids = list(shard_ids)
    if shuffle:
        ids = [ids[i] for i in np.random.default_rng([seed, epoch]).permutation(len(ids))]
    return [ids[c::consumers] for c in range(consumers)]


def _identity(x: Any) -> Any:
    return x


class ExampleStream(torch.utils.data.IterableDataset):
    """Labelled, shuffled, collated batches of one role, read by DataLoader workers.

    Each item is a dict: ``batch`` (collated numpy arrays, or None on a worker's last
    item), ``ids`` ((session, frame_idx) per example), ``read`` (samples read since the
    previous item) and ``masked`` ("no match" labels ignored for missing identity history).
    ``role='stats'`` yields one item per shard with feature sums and label counts instead.
    """

    def __init__(self, plan: Plan, role: str, *, batch_size: int, shuffle_buffer: int,
                 seed: int, track_thresh: float, embed_dim: int | None, rank: int = 0,
                 world_size: int = 1, bucket: int = 8) -> None:
        super().__init__()
        self.plan, self.role = plan, role
        self.batch_size, self.shuffle_buffer = max(batch_size, 1), max(shuffle_buffer, 0)
        self.seed, self.track_thresh, self.embed_dim = seed, track_thresh, embed_dim
        self.rank, self.world_size, self.bucket = rank, world_size, bucket
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch (shard order and shuffling) of the next iteration."""
        self.epoch = int(epoch)

    def shards_of(self, worker: int, workers: int) -> list[int]:
        """Shard indices this (rank, worker) reads this epoch."""
        role = 'all' if self.role == 'stats' else self.role
        shuffle = self.shuffle_buffer > 0 and self.role == 'train'
        slots = assign(self.plan.for_role(role), self.world_size * workers, shuffle,
                       self.seed, self.epoch)
        return slots[self.rank * workers + worker]

    def _examples(self, ids: list[int], counter: dict[str, int]
                  ) -> Iterator[tuple[bool, data.Example]]:
        from assoc_logger_ros.shards.stream import iter_samples
        for i in ids:
            info = self.plan.shards[i]
            labeler = data.Labeler(track_thresh=self.track_thresh, embed_dim=self.embed_dim)
            for s in iter_samples([info.path], decoder='fast', on_error='warn'):
                counter['read'] += 1
                session = str(s['session_id'][()]) if 'session_id' in s else ''
                unsure = session in info.continued and 'det_gt_ids' in s and \
                    _has_unknown_tracks(labeler, session, s)
                ex = labeler(s)
                if ex is None:
                    continue
                if unsure:
                    drop = (ex.target < 0) & (ex.weight > 0)
                    counter['masked'] += int(drop.sum())
                    ex.weight[drop] = 0.0
                yield self.plan.split.is_val(ex.session, ex.frame_idx), ex

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = self.shards_of(worker, workers)
        counter = {'read': 0, 'masked': 0}
        if self.role == 'stats':
            yield from self._stats(mine, counter)
            return
        want_val = self.role == 'val'
        exs = (ex for is_val, ex in self._examples(mine, counter) if is_val == want_val)
        if self.shuffle_buffer > 0:
            slot = self.rank * workers + worker
            rng = np.random.default_rng([self.seed, self.epoch, slot])
            batches = _windowed(shuffled(exs, self.shuffle_buffer, rng), self.batch_size,
                                self.bucket, rng)
        else:
            batches = _sequential(exs, self.batch_size)
        for chunk in batches:
            item = {'batch': data.collate(chunk), 'ids': [(e.session, e.frame_idx)
                                                          for e in chunk],
                    'read': counter['read'], 'masked': counter['masked']}
            counter['read'] = counter['masked'] = 0
            yield item
        yield {'batch': None, 'ids': [], 'read': counter['read'],
               'masked': counter['masked']}

    def _stats(self, mine: list[int], counter: dict[str, int]) -> Iterator[dict[str, Any]]:
        for i in mine:
            sums = {'shard': i, 'train_examples': 0, 'val_examples': 0, 'embed_dim': 0,
                    'track': np.zeros(1 + 2 * TRACK_W), 'det': np.zeros(1 + 2 * DET_W),
                    'labels': dict.fromkeys(('examples', 'labelled_detections',
                                             'positive_pairs', 'no_match_detections',
                                             'pairs'), 0)}
            for is_val, ex in self._examples([i], counter):
                if is_val:
                    sums['val_examples'] += 1
                    continue
                sums['train_examples'] += 1
                sums['embed_dim'] = max(sums['embed_dim'], int(ex.track_emb.shape[1]))
                for key, attr in (('track', 'track_feat'), ('det', 'det_feat')):
                    rows = getattr(ex, attr).astype(np.float64)
                    sums[key] += np.concatenate([[rows.shape[0]], rows.sum(0),
                                                 (rows ** 2).sum(0)])
                for k, v in data.label_counts([ex]).items():
                    sums['labels'][k] += v
            sums['read'], sums['masked'] = counter['read'], counter['masked']
            counter['read'] = counter['masked'] = 0
            yield sums


def _has_unknown_tracks(labeler: data.Labeler, session: str, s: dict[str, np.ndarray]) -> bool:
    """A tracked/lost track of ``s`` whose identity the labeler has not seen (other shard)."""
    known = labeler._gt_of.get(session, {})
    ids = np.asarray(s['track_ids'], np.int64)
    states = np.asarray(s.get('track_states', np.ones(ids.size, np.int8)))
    return any(int(t) not in known for t in ids[states != data.NEW_STATE])


def _sequential(items: Iterator[data.Example], size: int) -> Iterator[list[data.Example]]:
    chunk: list[data.Example] = []
    for ex in items:
        chunk.append(ex)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _windowed(items: Iterator[data.Example], size: int, bucket: int,
              rng: np.random.Generator) -> Iterator[list[data.Example]]:
    """Batches of similar problem size: windows of ``bucket`` batches sorted, then shuffled.

    The streaming form of :func:`.data.batches` (which sorts windows of the whole set).
    """
    for window in _sequential(items, size * max(bucket, 1)):
        window.sort(key=lambda e: e.cost.size)
        groups = [window[k:k + size] for k in range(0, len(window), size)]
        for g in rng.permutation(len(groups)):
            yield groups[g]


def loader(stream: ExampleStream, workers: int, seed: int) -> Any:
    """A DataLoader over ``stream`` (its own generator: the global torch RNG is untouched)."""
    return torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=max(workers, 0), collate_fn=_identity,
        generator=torch.Generator().manual_seed(seed))


def batches_per_rank(stream: ExampleStream, counts: dict[int, int], workers: int) -> int:
    """Batches this rank's workers will yield this epoch (from per-shard example counts)."""
    n = 0
    for w in range(max(workers, 1)):
        total = sum(counts.get(i, 0) for i in stream.shards_of(w, max(workers, 1)))
        n += -(-total // stream.batch_size)
    return n
