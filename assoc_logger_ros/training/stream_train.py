"""The training loop over streamed shards (``train --stream``), bounded memory at any size.

Same model, optimiser, checkpoint/resume, best-epoch and export as :func:`.train.train`; the
input is :mod:`.stream_input` instead of a list of examples in memory. One streamed pass first
computes the normalisation (feature moments of the training examples), the label counts and
the examples per shard (so DDP ranks agree on a step count); then every epoch streams the
training shards (shuffled) and the validation shards (in order, metrics accumulated batch by
batch). Same seed, same data, same worker count: same model.
"""

from __future__ import annotations

from pathlib import Path
import time
from typing import Any, Callable

import numpy as np

from assoc_logger_ros.cpus import usable_cpus
from assoc_logger_ros.training import data
from assoc_logger_ros.training import stream_input as si
from assoc_logger_ros.training import train as tr
from assoc_logger_ros.training.metrics import score
from assoc_logger_ros.training.model import AssocModel, torch

LABEL_KEYS = ('examples', 'labelled_detections', 'positive_pairs', 'no_match_detections',
              'pairs')


def _norm(track: np.ndarray, det: np.ndarray) -> dict[str, list[float]]:
    out = {}
    for side, sums, width in (('track', track, si.TRACK_W), ('det', det, si.DET_W)):
        n = max(float(sums[0]), 1.0)
        mean = sums[1:1 + width] / n
        var = np.maximum(sums[1 + width:] / n - mean ** 2, 0.0)
        out[f'{side}_mean'] = [round(float(x), 8) for x in mean]
        out[f'{side}_std'] = [round(float(max(np.sqrt(x), 1e-4)), 8) for x in var]
    return out


def compute_threads(threads: int, workers: int) -> int:
    """Torch threads of the trainer beside ``workers`` reader processes: at most the free CPUs.

    Torch's intra-op threads spin while they wait; with the DataLoader workers on the same
    CPUs that oversubscription made epochs 10x slower on the 2-core development machine
    (40 s instead of 3 s for the test's epoch), so the threads leave the workers their CPUs.
    """
    return max(1, min(max(threads, 1), usable_cpus() - max(workers, 0)))


def _stream(cfg: tr.TrainConfig, plan: si.Plan, role: str, rank: int, world: int,
            embed_dim: int | None) -> si.ExampleStream:
    return si.ExampleStream(plan, role, batch_size=cfg.batch_size,
                            shuffle_buffer=cfg.shuffle_buffer if role == 'train' else 0,
                            seed=cfg.seed, track_thresh=cfg.track_thresh, embed_dim=embed_dim,
                            rank=rank, world_size=world)


def first_pass(cfg: tr.TrainConfig, plan: si.Plan, rank: int, world: int) -> dict[str, Any]:
    """Normalisation, label counts, examples per shard, embedding width (pooled over ranks)."""
    stream = _stream(cfg, plan, 'stats', rank, world, cfg.embed_dim)
    track, det = np.zeros(1 + 2 * si.TRACK_W), np.zeros(1 + 2 * si.DET_W)
    labels: dict[str, int] = {}
    counts = np.zeros(len(plan.shards))
    embed, read, masked, n_val = 0, 0, 0, 0
    for item in si.loader(stream, cfg.workers, cfg.seed):
        track += item['track']
        det += item['det']
        counts[item['shard']] = item['train_examples']
        n_val += item['val_examples']
        embed = max(embed, item['embed_dim'])
        read += item['read']
        masked += item['masked']
        for k, v in item['labels'].items():
            labels[k] = labels.get(k, 0) + v
    keys = LABEL_KEYS
    vec = tr._allreduce(list(track) + list(det) + list(counts)
                        + [labels.get(k, 0) for k in keys] + [read, masked, n_val])
    if world > 1:
        embed = int(tr._allreduce([float(embed)], torch.distributed.ReduceOp.MAX)[0])
    a, b = 1 + 2 * si.TRACK_W, 2 + 2 * si.TRACK_W + 2 * si.DET_W
    c = b + len(plan.shards)
    return {'norm': _norm(np.array(vec[:a]), np.array(vec[a:b])),
            'per_shard': {i: int(v) for i, v in enumerate(vec[b:c])},
            'labels': {k: int(v) for k, v in zip(keys, vec[c:c + len(keys)])},
            'read': int(vec[-3]), 'masked': int(vec[-2]), 'val_examples': int(vec[-1]),
            'embed_dim': int(cfg.embed_dim or embed)}


def evaluate_stream(model: AssocModel, stream: si.ExampleStream, workers: int, seed: int,
                    world: int) -> dict[str, float]:
    """Loss and :func:`.metrics.score` over a streamed role, batch by batch (eval mode)."""
    model.eval()
    acc = {'loss': 0.0, 'w': 0.0}

    def pairs() -> Any:
        with torch.no_grad():
            for item in si.loader(stream, workers, seed):
                if item['batch'] is None:
                    continue
                b = tr._tensors(item['batch'])
                loss, _ = model.loss(b)
                w = float(b['weight'].sum())
                acc['loss'] += float(loss) * w
                acc['w'] += w
                probs = model(*(b[k] for k in tr.INPUT_KEYS)).numpy()
                t_n = (~item['batch']['track_pad']).sum(1)
                d_n = (~item['batch']['det_pad']).sum(1)
                for i in range(probs.shape[0]):
                    yield _Shape(item['batch'], i, int(t_n[i]), int(d_n[i])), \
                        probs[i, :t_n[i], :d_n[i]]

    m = score(pairs(), model.loss_kind)
    m['loss'] = round(acc['loss'] / acc['w'], 6) if acc['w'] else float('nan')
    if world == 1:
        return m
    keys = ('loss', 'det_acc', 'classical_det_acc', 'pair_acc', 'pos_recall',
            'all_negative_pair_acc')
    n = float(m['labelled_detections'])
    tot = tr._allreduce([(m[k] * n if m[k] == m[k] else 0.0) for k in keys] + [n])
    out = {k: round(v / tot[-1], 6) if tot[-1] else float('nan') for k, v in zip(keys, tot)}
    out['labelled_detections'] = int(tot[-1])
    return out


class _Shape:
    """One example of a collated batch, as :func:`.metrics.score` reads it."""

    def __init__(self, b: dict[str, np.ndarray], i: int, t: int, d: int) -> None:
        self.shape = (t, d)
        self.cost = b['cost'][i, :t, :d]
        self.mask = b['mask'][i, :t, :d]
        self.weight = b['weight'][i, :d]
        tgt = b['target'][i, :d]
        self.target = np.where(tgt >= b['cost'].shape[1], -1, tgt)


def train_streaming(cfg: tr.TrainConfig, *, log: Callable[[str], None] = print,
                    on_epoch_end: Callable[[int], None] | None = None,
                    on_batch: Callable[[int, list[tuple[str, int]]], None] | None = None
                    ) -> dict[str, Any]:
    """Run (or resume) one streamed training; ``on_batch(epoch, ids)`` sees every batch."""
    t_start = time.perf_counter()
    rank, world = tr._dist()
    threads = compute_threads(cfg.threads, cfg.workers)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    plan = si.make_plan(cfg.data, cfg.val_fraction, cfg.val_sessions)
    if len(plan.for_role('train')) < world:
        raise data.DataError(f'--stream with {world} ranks needs at least {world} shards '
                             'holding training sessions')
    first = first_pass(cfg, plan, rank, world)
    counts = first['labels']
    if not counts.get('examples'):
        raise data.DataError('no training sample has a stage-1 pair (tracked/lost track x '
                             'high-score detection) to learn from')
    log(f'stream: {plan.samples} samples in {len(plan.shards)} shard(s), {cfg.workers} '
        f'worker(s), {threads} torch thread(s), shuffle buffer {cfg.shuffle_buffer}; '
        f'train: {counts["examples"]} examples from {len(plan.train_sessions)} session(s), '
        f'val: {first["val_examples"]} from {len(plan.val_labels)}; '
        f'{first["masked"]} "no match" labels masked (identity history in an earlier '
        f'shard); positives {counts["positive_pairs"]} of {counts["pairs"]} pairs')
    model, opt, net, st = tr.prepare(cfg, first['norm'], first['embed_dim'], world, log)
    train_stream = _stream(cfg, plan, 'train', rank, world, first['embed_dim'])
    has_val = first['val_examples'] > 0
    val_stream = _stream(cfg, plan, 'val' if has_val else 'train', rank, world,
                         first['embed_dim'])
    if not has_val:
        val_stream.shuffle_buffer = 0

    for epoch in range(st['start_epoch'], cfg.epochs):
        model.train()
        train_stream.set_epoch(epoch)
        steps = si.batches_per_rank(train_stream, first['per_shard'], cfg.workers)
        if world > 1:
            steps = int(tr._allreduce([float(steps)], torch.distributed.ReduceOp.MIN)[0])
        bar = tr.Progress(steps, f'epoch {epoch + 1}/{cfg.epochs}', cfg.progress and rank == 0)
        t0 = time.perf_counter()
        run_loss, step, read, seen = 0.0, 0, 0, 0
        for item in si.loader(train_stream, cfg.workers, cfg.seed + epoch):
            read += item['read']
            if item['batch'] is None or step >= steps:
                continue
            if on_batch is not None:
                on_batch(epoch, item['ids'])
            seen += len(item['ids'])
            run_loss += tr.optimise(net, model, opt, tr._tensors(item['batch']))
            step += 1
            bar.step(f'loss {run_loss / step:.4f}')
        t_train = time.perf_counter() - t0
        metrics = evaluate_stream(model, val_stream, cfg.workers, cfg.seed, world)
        metrics['train_loss'] = round(run_loss / max(step, 1), 6)
        metrics['epoch'] = epoch + 1
        metrics['epoch_s'] = round(time.perf_counter() - t0, 2)
        metrics['samples_read'] = int(tr._allreduce([float(read)])[0])
        metrics['train_examples_seen'] = int(tr._allreduce([float(seen)])[0])
        metrics['train_samples_per_s'] = round(read / t_train, 1) if t_train > 0 else 0.0
        tr.close_epoch(cfg, model, opt, st, metrics, rank, log, (
            f'epoch {epoch + 1}: train loss {metrics["train_loss"]:.4f}, val loss '
            f'{metrics["loss"]:.4f}, det acc {metrics["det_acc"]:.4f} (classical '
            f'{metrics["classical_det_acc"]:.4f}), {metrics["samples_read"]} samples '
            f'read, {metrics["train_examples_seen"]} examples trained '
            f'[{metrics["epoch_s"]:.1f}s]'))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1)

    return tr.finish(model, st['best_state'], st['history'], cfg, rank, world, log, training={
        'data': [str(p) for p in cfg.data], 'train_sessions': plan.train_sessions,
        'val_sessions': plan.val_labels, 'labels': counts, 'input': 'stream',
        'time_s': round(time.perf_counter() - t_start, 1)})
