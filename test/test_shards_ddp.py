"""Two-process DDP (gloo, CPU) training step fed by the shard reader: disjoint shards per rank.

torch is training-only; without it this module is skipped (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import socket

import pytest

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.writer import SampleWriter
from assoc_logger_ros.shards.pack import pack
from assoc_logger_ros.shards.source import ShardSource

torch = pytest.importorskip('torch', reason='torch is training-only: pip install torch==2.13.0')


def _rank_main(rank: int, world: int, shards: str, out: str, port: int) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader

    from assoc_logger_ros.shards.torch_data import shard_dataset

    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(0)
    ds = shard_dataset(shards, with_key=True, shuffle_buffer=4, seed=3)
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    got = list(loader)
    keys = [k for k, _ in got]
    steps = torch.tensor([len(got)])
    dist.all_reduce(steps, op=dist.ReduceOp.MIN)  # DDP needs the same step count everywhere
    model = DistributedDataParallel(torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _, sample in got[:int(steps)]:
        x = torch.as_tensor(sample['det_features'])
        y = torch.as_tensor(sample['assigned_track_ids'] >= 0, dtype=torch.float32)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    all_keys: list = [None] * world
    dist.all_gather_object(all_keys, keys)
    weights = model.module.weight.detach().clone()
    gathered = [torch.zeros_like(weights) for _ in range(world)]
    dist.all_gather(gathered, weights)
    if rank == 0:
        Path(out).write_text(json.dumps({
            'keys': all_keys, 'steps': int(steps), 'losses': losses,
            'same_weights': all(torch.equal(gathered[0], g) for g in gathered)}))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_ddp_reads_disjoint_shards(tmp_path):
    """Two gloo ranks x two DataLoader workers: every sample exactly once, one DDP model."""
    cfg = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=8)
    with SampleWriter(tmp_path / 'logs', cfg) as w:
        for i in range(32):
            w.submit(make_snapshot(4, 6, seed=i, frame_idx=i, embed_dim=8), 'ddp')
    res = pack(tmp_path / 'logs', tmp_path / 'sh', shard_mb=0.02, index=False)
    assert res['shards'] >= 4
    out = tmp_path / 'result.json'
    torch.multiprocessing.spawn(_rank_main, args=(2, str(tmp_path / 'sh'), str(out),
                                                  _free_port()), nprocs=2, join=True)
    r = json.loads(out.read_text())
    rank0, rank1 = (set(k) for k in r['keys'])
    assert rank0 and rank1 and not rank0 & rank1
    assert sorted(rank0 | rank1) == sorted(ShardSource(tmp_path / 'sh').keys)
    assert r['steps'] > 0 and r['same_weights'] and all(x == x for x in r['losses'])
