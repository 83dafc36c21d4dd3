"""Train the association model: batched, split by session, reproducible, resumable, DDP-ready.

``train(TrainConfig(...))`` loads every sample once (:func:`data.load_examples`), fixes the
normalisation on the training sessions, trains with AdamW, validates each epoch on the held-out
sessions, keeps the best epoch (a real copy, not the live weights), checkpoints every epoch to
``OUT/checkpoint.pt`` and exports ``OUT/model.onnx`` + ``OUT/model.json`` at the end. A rerun
with the same output folder and settings resumes from the checkpoint. Launched by ``torchrun``
(``WORLD_SIZE``/``RANK`` set) it trains with DistributedDataParallel over gloo, each rank reading
its own sessions. ``stream=True`` (``train --stream``) trains on shard directories through
DataLoader workers with bounded memory instead (:mod:`.stream_train`).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
import sys
import time
from typing import Any, Callable

import numpy as np

from assoc_logger_ros.training import data
from assoc_logger_ros.training.metrics import score
from assoc_logger_ros.training.model import AssocModel, torch

CHECKPOINT = 'checkpoint.pt'
INPUT_KEYS = ('track_feat', 'track_emb', 'det_feat', 'det_emb', 'cost', 'mask', 'track_pad',
              'det_pad')


@dataclass
class TrainConfig:
    """Every setting of a training run (stored in the checkpoint and the card)."""

    data: list[str]
    out: str
    epochs: int = 4
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    width: int = 64
    heads: int = 4
    layers: int = 1
    hidden: int = 32
    arch: str = 'pair'              # 'pair' (ours) or 'seed' (no pair inputs)
    loss: str = 'softmax'           # 'softmax' (no-match column) or 'bce' (weighted pairs)
    gated: bool = True              # pair MLP on gated pairs only (False: every pair)
    embed_dim: int | None = None    # default: the samples' width
    track_thresh: float = data.DEFAULT_TRACK_THRESH
    val_fraction: float = 0.2
    val_sessions: list[str] | None = None
    threads: int = 2
    progress: bool = True
    resume: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = False            # stream shards with DataLoader workers (stream_train)
    workers: int = 2                # DataLoader workers of the streamed input
    shuffle_buffer: int = 2048      # examples shuffled within this buffer (streamed input)

    def fingerprint(self) -> dict[str, Any]:
        """The settings a checkpoint must share to be resumed (not out/progress/threads)."""
        d = asdict(self)
        for k in ('out', 'progress', 'threads', 'resume', 'epochs', 'extra'):
            d.pop(k)
        if not d['gated']:     # checkpoints from before the option resume as before
            d.pop('gated')
        if not self.stream:   # the in-memory recipe: fingerprint as before streaming existed
            for k in ('stream', 'workers', 'shuffle_buffer'):
                d.pop(k)
        return d


class Progress:
    """A one-line progress bar on stderr (no dependency); silent when disabled."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled = max(total, 1), label, enabled
        self.t0 = time.perf_counter()
        self.n = 0
        self.enabled = enabled and sys.stderr.isatty()

    def step(self, text: str = '') -> None:
        """One unit done; redraw."""
        self.n += 1
        if not self.enabled:
            return
        frac = min(self.n / self.total, 1.0)
        bar = '#' * int(frac * 24)
        dt = time.perf_counter() - self.t0
        sys.stderr.write(f'\r{self.label} [{bar:<24}] {self.n}/{self.total} {dt:5.1f}s {text}')
        if self.n >= self.total:
            sys.stderr.write('\n')
        sys.stderr.flush()


def _tensors(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in batch.items()}


def evaluate_examples(model: AssocModel, examples: list[data.Example], batch_size: int = 64
                      ) -> dict[str, float]:
    """Loss and :func:`metrics.score` of the model on labelled examples (eval mode)."""
    model.eval()
    loss_sum, w_sum, pairs = 0.0, 0.0, []
    with torch.no_grad():
        for chunk in data.batches(examples, batch_size, None):
            b = _tensors(data.collate(chunk))
            loss, _ = model.loss(b)
            w = float(b['weight'].sum())
            loss_sum += float(loss) * w
            w_sum += w
            probs = model(*(b[k] for k in INPUT_KEYS)).numpy()
            pairs += [(ex, probs[i, :ex.shape[0], :ex.shape[1]]) for i, ex in enumerate(chunk)]
    out = {'loss': round(loss_sum / w_sum, 6) if w_sum else float('nan')}
    out.update(score(pairs, model.loss_kind))
    return out


def _dist() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; initialises gloo when > 1."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group('gloo')
    return rank, world


def _allreduce(values: list[float], op=None) -> list[float]:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(t, op=op or torch.distributed.ReduceOp.SUM)
    return t.tolist()


def build_model(cfg: TrainConfig, norm: dict, embed_dim: int) -> AssocModel:
    """The model a config describes (seeded by the caller)."""
    return AssocModel(norm, embed_dim=embed_dim, width=cfg.width, heads=cfg.heads,
                      layers=cfg.layers, hidden=cfg.hidden, pair_inputs=cfg.arch == 'pair',
                      loss=cfg.loss, gated=cfg.gated and cfg.arch == 'pair')


def train(cfg: TrainConfig, *, log: Callable[[str], None] = print,
          on_epoch_end: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run (or resume) one training; returns the card written next to the ONNX model."""
    if cfg.arch not in ('pair', 'seed') or cfg.loss not in ('softmax', 'bce'):
        raise ValueError(f'unknown arch {cfg.arch!r} or loss {cfg.loss!r}')
    if cfg.stream:
        from assoc_logger_ros.training.stream_train import train_streaming
        return train_streaming(cfg, log=log, on_epoch_end=on_epoch_end)
    t_start = time.perf_counter()
    rank, world = _dist()
    torch.set_num_threads(max(cfg.threads, 1))
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    sessions = data.list_sessions(cfg.data)
    if not sessions:
        raise data.DataError(f'no samples in {", ".join(map(str, cfg.data))}')

    prog = Progress(sum(sessions.values()) // max(world, 1), 'loading', cfg.progress
                    and rank == 0)
    examples = data.load_examples(cfg.data, track_thresh=cfg.track_thresh,
                               embed_dim=cfg.embed_dim, rank=rank, world_size=world,
                               progress=lambda n: prog.step() if n % 50 == 0 else None)
    if not examples and world == 1:
        raise data.DataError('no sample has a stage-1 pair (tracked/lost track x high-score '
                          'detection) to learn from')
    embed_dim = examples[0].track_emb.shape[1] if examples else int(cfg.embed_dim or 0)
    embed_dim = int(_allreduce([float(embed_dim)], torch.distributed.ReduceOp.MAX)[0]
                    if world > 1 else embed_dim)
    train_ex, val_ex, train_s, val_s = data.split_by_session(examples, cfg.val_fraction,
                                                          cfg.val_sessions)
    # all-zero embeddings (no embedding source): the export drops that branch (same function)
    emb_used = bool(_allreduce([float(any(e.track_emb.any() or e.det_emb.any()
                                          for e in train_ex))],
                               torch.distributed.ReduceOp.MAX)[0])
    if world > 1:   # every rank needs the same normalisation: pool the moments
        stats = _pooled_stats(train_ex)
    else:
        stats = data.feature_stats(train_ex)
    counts = data.label_counts(train_ex)
    log(f'train: {len(train_ex)} examples from {len(train_s)} session(s), '
        f'val: {len(val_ex)} from {len(val_s)}; positives {counts["positive_pairs"]} of '
        f'{counts["pairs"]} pairs, {counts["no_match_detections"]} no-match detections')

    model, opt, net, st = prepare(cfg, stats, embed_dim, world, log)
    steps = (len(train_ex) + cfg.batch_size - 1) // cfg.batch_size
    if world > 1:   # the same number of steps on every rank (DDP needs it)
        steps = int(_allreduce([float(steps)], torch.distributed.ReduceOp.MIN)[0])

    for epoch in range(st['start_epoch'], cfg.epochs):
        model.train()
        rng = np.random.default_rng([cfg.seed, epoch, rank])
        bar = Progress(steps, f'epoch {epoch + 1}/{cfg.epochs}', cfg.progress and rank == 0)
        t0 = time.perf_counter()
        run_loss = 0.0
        for i, chunk in enumerate(data.batches(train_ex, cfg.batch_size, rng)):
            if i >= steps:
                break
            run_loss += optimise(net, model, opt, _tensors(data.collate(chunk)))
            bar.step(f'loss {run_loss / (i + 1):.4f}')
        metrics = _val_metrics(model, val_ex if val_ex else train_ex, world)
        metrics['train_loss'] = round(run_loss / max(steps, 1), 6)
        metrics['epoch'] = epoch + 1
        metrics['epoch_s'] = round(time.perf_counter() - t0, 2)
        close_epoch(cfg, model, opt, st, metrics, rank, log, (
            f'epoch {epoch + 1}: train loss {metrics["train_loss"]:.4f}, val loss '
            f'{metrics["loss"]:.4f}, det acc {metrics["det_acc"]:.4f} (classical '
            f'{metrics["classical_det_acc"]:.4f}), pair acc {metrics["pair_acc"]:.4f}, '
            f'pos recall {metrics["pos_recall"]:.4f} [{metrics["epoch_s"]:.1f}s]'))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1)

    return finish(model, st['best_state'], st['history'], cfg, rank, world, log, training={
        'data': [str(p) for p in cfg.data], 'train_sessions': train_s,
        'val_sessions': val_s, 'labels': counts, 'embeddings_used': emb_used,
        'time_s': round(time.perf_counter() - t_start, 1)}, drop_embeddings=not emb_used)


def prepare(cfg: TrainConfig, norm: dict, embed_dim: int, world: int,
            log: Callable[[str], None]) -> tuple[AssocModel, torch.optim.Optimizer,
                                                  torch.nn.Module, dict[str, Any]]:
    """Model, optimiser, (DDP-wrapped) loss module and run state, resumed from a checkpoint.

    ``OUT/checkpoint.pt`` is resumed only when it was written with the same settings.
    """
    model = build_model(cfg, norm, embed_dim)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    st: dict[str, Any] = {'start_epoch': 0, 'best': -1.0, 'history': [], 'best_state': None}
    ck_path = Path(cfg.out) / CHECKPOINT
    if cfg.resume and ck_path.is_file():
        ck = torch.load(ck_path, weights_only=False)
        if ck['fingerprint'] != cfg.fingerprint():
            raise ValueError(f'{ck_path}: written by a run with other settings; use another '
                             '--out or --no-resume')
        model.load_state_dict(ck['model'])
        opt.load_state_dict(ck['optimizer'])
        st.update(start_epoch=ck['epoch'], best=ck['best'], history=ck['history'],
                  best_state=ck['best_state'])
        torch.set_rng_state(ck['torch_rng'])
        log(f'resumed from {ck_path} after epoch {st["start_epoch"]}')
    net: torch.nn.Module = _LossOf(model)
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            net, find_unused_parameters=cfg.loss == 'bce')
    return model, opt, net, st


def optimise(net: torch.nn.Module, model: AssocModel, opt: torch.optim.Optimizer,
             batch: dict[str, torch.Tensor]) -> float:
    """One optimiser step on one batch (gradients clipped); returns the batch loss."""
    loss, _ = net(batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return loss.detach().item()


def close_epoch(cfg: TrainConfig, model: AssocModel, opt: torch.optim.Optimizer,
                st: dict[str, Any], metrics: dict[str, Any], rank: int,
                log: Callable[[str], None], line: str) -> None:
    """Record an epoch, keep a copy of the best weights (not the live ones), checkpoint."""
    st['history'].append(metrics)
    score = metrics['det_acc'] if metrics['det_acc'] == metrics['det_acc'] else -1.0
    if score > st['best']:
        st['best'] = score
        st['best_state'] = copy.deepcopy(model.state_dict())
    if rank == 0:
        log(line)
        _atomic_save({'fingerprint': cfg.fingerprint(), 'model': model.state_dict(),
                      'optimizer': opt.state_dict(), 'epoch': metrics['epoch'], 'best': st['best'],
                      'history': st['history'], 'best_state': st['best_state'],
                      'torch_rng': torch.get_rng_state()}, Path(cfg.out) / CHECKPOINT)


def finish(model: AssocModel, best_state: dict | None, history: list[dict], cfg: TrainConfig,
           rank: int, world: int, log: Callable[[str], None], *, training: dict[str, Any],
           drop_embeddings: bool = False) -> dict[str, Any]:
    """Load the best epoch's weights and export them on rank 0 (both input paths end here)."""
    model.load_state_dict(best_state if best_state is not None else model.state_dict())
    card = None
    if rank == 0:
        from assoc_logger_ros.training.export import export
        best_epoch = max(history, key=lambda m: m['det_acc']) if history else {}
        card = export(model, Path(cfg.out), training={
            **training, 'config': cfg.fingerprint(), 'epochs': cfg.epochs, 'world_size': world},
            metrics={'best_epoch': best_epoch, 'history': history},
            track_thresh=cfg.track_thresh, drop_embeddings=drop_embeddings)
        log(f'wrote {Path(cfg.out) / "model.onnx"} and {Path(cfg.out) / "model.json"}')
    if world > 1:
        torch.distributed.barrier()
    return card or {}


class _LossOf(torch.nn.Module):
    """``forward(batch) = model.loss(batch)``: what DDP wraps, so its hooks sync gradients."""

    def __init__(self, model: AssocModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.model.loss(batch)


def _val_metrics(model: AssocModel, examples: list[data.Example], world: int) -> dict[str, float]:
    if world == 1:
        return evaluate_examples(model, examples)
    m = evaluate_examples(model, examples) if examples else None
    n = float(m['labelled_detections']) if m else 0.0
    keys = ('loss', 'det_acc', 'classical_det_acc', 'pair_acc', 'pos_recall',
            'all_negative_pair_acc')
    vals = [(m[k] * n if m and m[k] == m[k] else 0.0) for k in keys] + [n]
    tot = _allreduce(vals)
    n_all = tot[-1]
    out = {k: round(v / n_all, 6) if n_all else float('nan') for k, v in zip(keys, tot)}
    out['labelled_detections'] = int(n_all)
    return out


def _pooled_stats(examples: list[data.Example]) -> dict[str, list[float]]:
    out = {}
    for side, key, width in (('track', 'track_feat', 10), ('det', 'det_feat', 8)):
        rows = (np.concatenate([getattr(e, key) for e in examples]).astype(np.float64)
                if examples else np.zeros((0, width)))
        vals = [float(rows.shape[0])] + rows.sum(0).tolist() + (rows ** 2).sum(0).tolist()
        tot = _allreduce(vals)
        n = max(tot[0], 1.0)
        mean = np.array(tot[1:1 + width]) / n
        var = np.maximum(np.array(tot[1 + width:]) / n - mean ** 2, 0.0)
        out[f'{side}_mean'] = [round(float(x), 8) for x in mean]
        out[f'{side}_std'] = [round(float(max(np.sqrt(x), 1e-4)), 8) for x in var]
    return out


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix('.tmp')
    torch.save(obj, tmp)
    os.replace(tmp, path)


def config_json(cfg: TrainConfig) -> str:
    """The config as JSON (for logs)."""
    return json.dumps(asdict(cfg), sort_keys=True)
