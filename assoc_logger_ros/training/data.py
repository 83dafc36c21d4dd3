"""Samples -> stage-1 association examples with labels -> padded batches (numpy only).

Every sample enters through :func:`iter_samples` (one place, so another reader, e.g. of
streaming shards, can replace it). The model learns the stage-1 problem of ByteTrack: tracked +
lost tracks (``track_states != NEW``) against high-score detections (``det_scores >
track_thresh``), the one block where the tracker calls it at run time; there ``cost_matrix`` is
exactly the stage-1 cost the tracker assigned on.

Labels, per detection (the row of its track, or "no match"):

* with ground truth (``det_gt_ids``): a track's identity is the ground truth of the detection it
  was last assigned to (or started from) in earlier frames of the same session; a detection's
  target is the track holding its identity, "no match" when none does; detections without an
  identity (-1, false positives) are ignored;
* without: the tracker's own stage-1 decision;
* ``label_weights`` (optional (D,) float32, 1 keep / 0 ignore) multiplies the weight.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
import zlib

import numpy as np

NEW_STATE = 0
STAGE_HIGH = 1
DEFAULT_TRACK_THRESH = 0.6


class DataError(ValueError):
    """The training data is unusable; the message says which file and why."""


def session_rank(session: str, world_size: int) -> int:
    """The process rank that reads ``session`` (stable across runs and machines)."""
    return zlib.crc32(session.encode('utf-8')) % max(world_size, 1)


def _open(root: Path):
    """The hardened reader of either layout (sample directory or shards), as the tools use it.

    Manifest entries are typed and confined to the directory, only regular files are opened
    and every npz member's size is checked before it is inflated (``dataset.store``,
    ``shards.source``).
    """
    from assoc_logger_ros.dataset.store import DatasetError
    from assoc_logger_ros.shards.source import open_source
    try:
        return open_source(root)
    except DatasetError as exc:
        raise DataError(str(exc)) from None


def iter_samples(paths: Sequence[str | Path], *, rank: int = 0, world_size: int = 1,
                 sessions: Iterable[str] | None = None,
                 on_error=None) -> Iterator[dict[str, np.ndarray]]:
    """Every sample of the directories, as ``np.load`` gives it (key -> array), in order.

    Order: directories as given, samples in manifest order (the write order, so frames of one
    session come in time order); a shard directory (``pack``, ``log_format: shards``) is read
    sequentially in its write order. With ``world_size > 1`` only the sessions of this
    ``rank`` (:func:`session_rank`) are read; ``sessions`` restricts to those session ids.
    Unreadable samples are skipped (``on_error(name, exc)`` is told).
    """
    wanted = None if sessions is None else set(sessions)
    for root in map(Path, paths):
        source = _open(root)
        for rec in source.records:
            sess = str(rec.get('session', ''))
            if wanted is not None and sess not in wanted:
                continue
            if world_size > 1 and session_rank(sess, world_size) != rank:
                continue
            try:
                yield source.load(rec)
            except Exception as exc:  # noqa: BLE001 - a bad file is skipped, not fatal
                if on_error is not None:
                    on_error(root / str(rec.get('npz')), exc)


def list_sessions(paths: Sequence[str | Path]) -> dict[str, int]:
    """Session id -> number of samples, from the manifests alone (cheap)."""
    out: dict[str, int] = {}
    for root in map(Path, paths):
        for rec in _open(root).records:
            sess = str(rec.get('session', ''))
            out[sess] = out.get(sess, 0) + 1
    return out


@dataclass(frozen=True, eq=False)
class Example:
    """One stage-1 association problem: T tracks x D detections, with its labels.

    ``target[d]`` is the track row of detection d, or -1 for "no match"; ``weight[d]`` its
    label weight (0 ignores it).
    """

    session: str
    frame_idx: int
    track_feat: np.ndarray     # (T, 10) float32
    track_emb: np.ndarray      # (T, K) float32
    det_feat: np.ndarray       # (D, 8) float32
    det_emb: np.ndarray        # (D, K) float32
    cost: np.ndarray           # (T, D) float32
    mask: np.ndarray           # (T, D) float32
    target: np.ndarray         # (D,) int64
    weight: np.ndarray         # (D,) float32
    from_gt: bool

    @property
    def shape(self) -> tuple[int, int]:
        """(T, D)."""
        return self.cost.shape


def _fit(emb: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((emb.shape[0], width), np.float32)
    k = min(width, emb.shape[1])
    out[:, :k] = emb[:, :k]
    return out


class Labeler:
    """Builds examples from the samples of any number of sessions, fed in time order."""

    def __init__(self, *, track_thresh: float = DEFAULT_TRACK_THRESH,
                 embed_dim: int | None = None, use_gt: bool = True) -> None:
        self.track_thresh = track_thresh
        self.embed_dim = embed_dim
        self.use_gt = use_gt
        self._gt_of: dict[str, dict[int, tuple[int, int]]] = {}   # session -> track -> (gt, n)
        self._step = 0

    def __call__(self, s: dict[str, np.ndarray]) -> Example | None:
        """The stage-1 example of one sample (None when it has no stage-1 pair)."""
        session = str(s['session_id'][()]) if 'session_id' in s else ''
        ids = np.asarray(s['track_ids'], np.int64)
        states = np.asarray(s.get('track_states', np.ones(ids.size, np.int8)))
        scores = np.asarray(s['det_scores'], np.float64) if 'det_scores' in s else None
        d_all = int(np.asarray(s['det_features']).shape[0])
        rows = np.flatnonzero(states != NEW_STATE)
        cols = (np.flatnonzero(scores > self.track_thresh) if scores is not None
                else np.arange(d_all))
        assigned = np.asarray(s['assigned_track_ids'], np.int64)
        gt = np.asarray(s['det_gt_ids'], np.int64) if 'det_gt_ids' in s and self.use_gt else None
        weights = (np.asarray(s['label_weights'], np.float32).reshape(-1) if 'label_weights' in s
                   else np.ones(d_all, np.float32))
        if weights.size != d_all:
            weights = np.ones(d_all, np.float32)
        gt_of = self._gt_of.setdefault(session, {})
        example = None
        if rows.size and cols.size:
            target = np.full(cols.size, -1, np.int64)
            weight = weights[cols].astype(np.float32)
            pool_ids = ids[rows]
            if gt is not None:
                holder: dict[int, tuple[int, int]] = {}   # gt -> (row, recency)
                for r, tid in enumerate(pool_ids.tolist()):
                    g = gt_of.get(tid)
                    if g is not None and g[0] >= 0 and (g[0] not in holder
                                                        or g[1] > holder[g[0]][1]):
                        holder[g[0]] = (r, g[1])
                for j, c in enumerate(cols.tolist()):
                    g = int(gt[c])
                    if g < 0:
                        weight[j] = 0.0
                    elif g in holder:
                        target[j] = holder[g][0]
            else:
                stage = np.asarray(s.get('match_stage', np.ones(d_all, np.int8)))
                row_of = {int(t): r for r, t in enumerate(pool_ids)}
                for j, c in enumerate(cols.tolist()):
                    if assigned[c] >= 0 and stage[c] == STAGE_HIGH:
                        target[j] = row_of.get(int(assigned[c]), -1)
            cost_key = 'classical_cost_matrix' if 'classical_cost_matrix' in s else 'cost_matrix'
            emb_w = (self.embed_dim if self.embed_dim is not None
                     else int(np.asarray(s['track_embeddings']).shape[1]))
            sub = np.ix_(rows, cols)
            example = Example(
                session=session, frame_idx=int(np.asarray(s['frame_idx']).reshape(-1)[0]),
                track_feat=np.asarray(s['track_features'], np.float32)[rows],
                track_emb=_fit(np.asarray(s['track_embeddings'])[rows], emb_w),
                det_feat=np.asarray(s['det_features'], np.float32)[cols],
                det_emb=_fit(np.asarray(s['det_embeddings'])[cols], emb_w),
                cost=np.asarray(s[cost_key], np.float32)[sub],
                mask=np.asarray(s['mask_matrix'], np.float32)[sub],
                target=target, weight=weight, from_gt=gt is not None)
        if gt is not None:          # identities of the tracks after this frame
            self._step += 1
            new = np.asarray(s.get('new_track_ids', np.full(d_all, -1)), np.int64)
            for d in range(d_all):
                for tid in (int(assigned[d]), int(new[d])):
                    if tid >= 0:
                        gt_of[tid] = (int(gt[d]), self._step)
        return example


def load_examples(paths: Sequence[str | Path], *, track_thresh: float = DEFAULT_TRACK_THRESH,
                  embed_dim: int | None = None, rank: int = 0, world_size: int = 1,
                  progress=None) -> list[Example]:
    """Every stage-1 example of the directories (see :class:`Labeler`)."""
    labeler = Labeler(track_thresh=track_thresh, embed_dim=embed_dim)
    out = []
    for n, s in enumerate(iter_samples(paths, rank=rank, world_size=world_size), 1):
        ex = labeler(s)
        if ex is not None:
            out.append(ex)
        if progress is not None:
            progress(n)
    return out


def split_by_session(examples: Sequence[Example], val_fraction: float = 0.2,
                     val_sessions: Iterable[str] | None = None
                     ) -> tuple[list[Example], list[Example], list[str], list[str]]:
    """Train/validation split by whole sessions (never by random frames).

    Validation sessions: ``val_sessions`` if given, else every k-th session in sorted order,
    about ``val_fraction`` of them. With a single session the last ``val_fraction`` of its
    frames (one contiguous block) validate. Returns (train, val, train sessions, val sessions).
    """
    sessions = sorted({e.session for e in examples})
    if val_sessions is not None:
        val_set = set(val_sessions)
    elif val_fraction <= 0 or not sessions:
        val_set = set()
    elif len(sessions) == 1:
        cut = int(round(len(examples) * (1.0 - val_fraction)))
        tag = f'{sessions[0]} (last {val_fraction:.0%} of frames)'
        return (list(examples[:cut]), list(examples[cut:]), [sessions[0]], [tag])
    else:
        n_val = max(1, int(round(len(sessions) * val_fraction)))
        step = len(sessions) / n_val
        val_set = {sessions[int(i * step)] for i in range(n_val)}
    train = [e for e in examples if e.session not in val_set]
    val = [e for e in examples if e.session in val_set]
    return train, val, [s for s in sessions if s not in val_set], sorted(val_set)


def collate(batch: Sequence[Example]) -> dict[str, np.ndarray]:
    """Pad a list of examples to (B, Tmax, ...) / (B, Dmax, ...) arrays with padding masks.

    ``track_pad`` / ``det_pad`` are True on padding; ``target`` is the track row, ``Tmax`` for
    "no match" (the extra column), -1 on padded detections (weight 0 there).
    """
    b = len(batch)
    tm = max(e.shape[0] for e in batch)
    dm = max(e.shape[1] for e in batch)
    k = batch[0].track_emb.shape[1]
    out = {
        'track_feat': np.zeros((b, tm, batch[0].track_feat.shape[1]), np.float32),
        'track_emb': np.zeros((b, tm, k), np.float32),
        'det_feat': np.zeros((b, dm, batch[0].det_feat.shape[1]), np.float32),
        'det_emb': np.zeros((b, dm, k), np.float32),
        'cost': np.ones((b, tm, dm), np.float32),
        'mask': np.zeros((b, tm, dm), np.float32),
        'track_pad': np.ones((b, tm), bool),
        'det_pad': np.ones((b, dm), bool),
        'target': np.full((b, dm), -1, np.int64),
        'weight': np.zeros((b, dm), np.float32),
    }
    for i, e in enumerate(batch):
        t, d = e.shape
        out['track_feat'][i, :t] = e.track_feat
        out['track_emb'][i, :t] = e.track_emb
        out['det_feat'][i, :d] = e.det_feat
        out['det_emb'][i, :d] = e.det_emb
        out['cost'][i, :t, :d] = e.cost
        out['mask'][i, :t, :d] = e.mask
        out['track_pad'][i, :t] = False
        out['det_pad'][i, :d] = False
        out['target'][i, :d] = np.where(e.target >= 0, e.target, tm)
        out['weight'][i, :d] = e.weight
    return out


def batches(examples: Sequence[Example], batch_size: int, rng: np.random.Generator | None,
            bucket: int = 8) -> Iterator[list[Example]]:
    """Examples in batches; shuffled with ``rng`` (None keeps the order).

    Shuffled batches are drawn from windows of ``bucket`` batches sorted by problem size, so a
    batch holds problems of similar T x D and pads little (pairs range from ~100 to ~2,200 per
    frame); the batches are then shuffled again.
    """
    n = len(examples)
    if rng is None:
        for i in range(0, n, batch_size):
            yield list(examples[i:i + batch_size])
        return
    order = rng.permutation(n)
    size = np.array([examples[j].cost.size for j in order])
    groups = []
    win = max(bucket, 1) * batch_size
    for i in range(0, n, win):
        part = order[i:i + win][np.argsort(size[i:i + win], kind='stable')]
        groups += [part[k:k + batch_size] for k in range(0, part.size, batch_size)]
    for g in rng.permutation(len(groups)):
        yield [examples[j] for j in groups[g]]


def feature_stats(examples: Sequence[Example]) -> dict[str, list[float]]:
    """Per-column mean and spread of the track and detection features (the normalisation).

    Fixed at training time and stored in the model card; the spread has a floor so that an
    almost-constant column (reserved ones) is not blown up.
    """
    out: dict[str, list[float]] = {}
    for side, key in (('track', 'track_feat'), ('det', 'det_feat')):
        rows = np.concatenate([getattr(e, key) for e in examples]).astype(np.float64)
        mean = rows.mean(axis=0) if rows.size else np.zeros(rows.shape[1])
        std = rows.std(axis=0) if rows.size else np.ones(rows.shape[1])
        out[f'{side}_mean'] = [round(float(x), 8) for x in mean]
        out[f'{side}_std'] = [round(float(max(x, 1e-4)), 8) for x in std]
    return out


def label_counts(examples: Sequence[Example]) -> dict[str, int]:
    """Positives, labelled "no match" detections and pairs (for the card and the log)."""
    pos = sum(int(((e.target >= 0) & (e.weight > 0)).sum()) for e in examples)
    dets = sum(int((e.weight > 0).sum()) for e in examples)
    pairs = sum(int(e.cost.size) for e in examples)
    return {'examples': len(examples), 'labelled_detections': dets, 'positive_pairs': pos,
            'no_match_detections': dets - pos, 'pairs': pairs}
