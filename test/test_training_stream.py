"""``train --stream``: DataLoader workers over shards, every sample once per epoch, reproducible.

Needs the training extras (``scripts/setup.sh --train``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get('ASSOC_REQUIRE_TRAIN') != '1':
    pytest.importorskip('torch', reason='training extras not installed (setup.sh --train)')

import torch  # noqa: E402

from assoc_logger_ros.cli import main as cli_main  # noqa: E402
from assoc_logger_ros.shards import layout  # noqa: E402
from assoc_logger_ros.shards.pack import pack  # noqa: E402
from assoc_logger_ros.training import data  # noqa: E402
from assoc_logger_ros.training import stream_input as si  # noqa: E402
from assoc_logger_ros.training.stream_train import train_streaming  # noqa: E402
from assoc_logger_ros.training.train import TrainConfig  # noqa: E402

SMALL = {'epochs': 2, 'batch_size': 8, 'width': 16, 'hidden': 16, 'heads': 2,
         'progress': False, 'stream': True, 'workers': 2, 'shuffle_buffer': 32}


@pytest.fixture(scope='module')
def shards(tmp_path_factory) -> tuple[Path, Path]:
    """(sample directory, shard directory): 3 ground-truth scenes in about 8 small shards."""
    from assoc_logger_ros.training.scene_samples import write_scene_samples
    root = tmp_path_factory.mktemp('stream')
    write_scene_samples(root / 'samples', [1, 2, 3], num_frames=40, embed_dim=16)
    size = sum(p.stat().st_size for p in (root / 'samples').glob('*.npz'))
    pack(root / 'samples', root / 'shards', shard_mb=size / 8 / 2**20)
    assert len(layout.list_shards(root / 'shards')[0]) >= 6
    return root / 'samples', root / 'shards'


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / 'checkpoint.pt', weights_only=False)['model']


def test_stream_labels_match_the_in_memory_recipe(shards):
    """The in-memory recipe's labels; at shard boundaries only uncertain "no match" ignored."""
    samples, sh = shards
    batch = {(e.session, e.frame_idx): e for e in data.load_examples([samples])}
    plan = si.make_plan([sh], val_fraction=0.0)
    n = sum(data.list_sessions([samples]).values())
    assert plan.samples == n > 100 and any(s.continued for s in plan.shards)
    stream = si.ExampleStream(plan, 'train', batch_size=8, shuffle_buffer=0, seed=0,
                              track_thresh=data.DEFAULT_TRACK_THRESH, embed_dim=None)
    counter = {'read': 0, 'masked': 0}
    got = list(stream._examples(list(range(len(plan.shards))), counter))
    assert counter['read'] == n and len(got) == len(batch)
    masked = 0
    for _, ex in got:
        ref = batch[(ex.session, ex.frame_idx)]
        assert (ex.cost == ref.cost).all() and (ex.track_emb == ref.track_emb).all()
        keep = ex.weight > 0   # every label still used is the in-memory one
        assert (ex.target[keep] == ref.target[keep]).all()
        assert (ex.weight[keep] == ref.weight[keep]).all()
        diff = (ex.weight != ref.weight) | (ex.target != ref.target)
        assert (ex.target[diff] == -1).all() and (ex.weight[diff] == 0).all()
        masked += int((diff & (ref.weight > 0)).sum())
    labelled = sum(int((e.weight > 0).sum()) for e in batch.values())
    assert masked == counter['masked'] and 0 < masked < 0.2 * labelled


def test_two_workers_see_every_sample_once_and_same_seed_same_model(shards, tmp_path):
    """2 workers: each epoch reads every sample once and trains each example once; seeded."""
    _, sh = shards
    seen: dict[int, list[tuple[str, int]]] = {}
    logs: list[str] = []
    cfg = TrainConfig(data=[str(sh)], out=str(tmp_path / 'a'), val_fraction=0.0, **SMALL)
    card = train_streaming(cfg, log=logs.append,
                           on_batch=lambda ep, ids: seen.setdefault(ep, []).extend(ids))
    plan = si.make_plan([sh], val_fraction=0.0)
    first = si.ExampleStream(plan, 'train', batch_size=8, shuffle_buffer=0, seed=0,
                             track_thresh=data.DEFAULT_TRACK_THRESH, embed_dim=None)
    expected = [(e.session, e.frame_idx)
                for _, e in first._examples(list(range(len(plan.shards))),
                                            {'read': 0, 'masked': 0})]
    assert set(seen) == {0, 1}
    for ep in (0, 1):
        assert sorted(seen[ep]) == sorted(expected)   # each example once, none missing
    assert seen[0] != seen[1]                         # reshuffled per epoch
    for m in card['metrics']['history']:
        assert m['samples_read'] == plan.samples and m['train_examples_seen'] == len(expected)
    assert card['training']['input'] == 'stream'
    assert any('2 worker(s)' in line for line in logs)

    rc = cli_main(['train', '--data', str(sh), '--out', str(tmp_path / 'b'), '--stream',
                   '--workers', '2', '--shuffle-buffer', '32', '--epochs', '2',
                   '--batch-size', '8', '--width', '16', '--hidden', '16', '--heads', '2',
                   '--val-fraction', '0', '--quiet'])
    assert rc == 0
    a, b = _weights(tmp_path / 'a'), _weights(tmp_path / 'b')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = TrainConfig(data=[str(sh)], out=str(tmp_path / 'c'), val_fraction=0.0,
                        **{**SMALL, 'seed': 1, 'epochs': 1, 'workers': 0})
    train_streaming(other, log=lambda line: None)
    c = _weights(tmp_path / 'c')   # (one epoch, in-process reading: only seeds differ here)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_validation_sessions_are_streamed_apart(shards, tmp_path):
    """Held-out sessions never reach the optimiser; they are scored every epoch."""
    samples, sh = shards
    sessions = sorted(data.list_sessions([samples]))
    seen: list[tuple[str, int]] = []
    cfg = TrainConfig(data=[str(sh)], out=str(tmp_path / 'v'), val_sessions=[sessions[0]],
                      **{**SMALL, 'epochs': 1})
    card = train_streaming(cfg, log=lambda line: None,
                           on_batch=lambda ep, ids: seen.extend(ids))
    assert seen and {s for s, _ in seen} == set(sessions[1:])
    assert card['training']['val_sessions'] == [sessions[0]]
    best = card['metrics']['best_epoch']
    assert best['labelled_detections'] > 0 and 0.0 <= best['det_acc'] <= 1.0


def test_stream_refuses_a_sample_directory(shards, tmp_path):
    """--stream on an npz directory is a clear one-line error (pack it first)."""
    samples, _ = shards
    cfg = TrainConfig(data=[str(samples)], out=str(tmp_path / 'x'), **SMALL)
    with pytest.raises(data.DataError, match='reads shard directories'):
        train_streaming(cfg, log=lambda line: None)


def test_stream_under_torchrun_two_ranks(shards, tmp_path):
    """Torchrun, 2 gloo ranks x 1 worker: ranks read disjoint shards that cover the data."""
    import json
    import subprocess
    import sys
    _, sh = shards
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, 'PYTHONPATH': str(repo), 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2',
                        '--master-port', str(30500 + os.getpid() % 1000), '-m',
                        'assoc_logger_ros', 'train', '--data', str(sh), '--out',
                        str(tmp_path / 'ddp'), '--epochs', '1', '--width', '16', '--heads', '2',
                        '--threads', '1', '--quiet', '--val-fraction', '0', '--stream',
                        '--workers', '1', '--batch-size', '8'],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    card = json.loads((tmp_path / 'ddp' / 'model.json').read_text())
    assert card['training']['world_size'] == 2 and card['training']['input'] == 'stream'
    plan = si.make_plan([sh], val_fraction=0.0)
    assert card['metrics']['history'][0]['samples_read'] == plan.samples
