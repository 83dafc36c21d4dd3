"""Training end to end: reproducible, resumable, padding-safe; ONNX export run by the tracker.

Needs the training extras (``scripts/setup.sh --train``); see the ``tiny_model`` fixture.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from assoc_logger_ros.config import resolve
from assoc_logger_ros.tracking.learned_cost import LearnedCost, LearnedCostError

if os.environ.get('ASSOC_REQUIRE_TRAIN') != '1':
    pytest.importorskip('torch', reason='training extras not installed (setup.sh --train)')

import torch  # noqa: E402

from assoc_logger_ros.training import data  # noqa: E402
from assoc_logger_ros.training.train import INPUT_KEYS, TrainConfig, build_model, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUIET = {'progress': False}


def _cfg(samples: Path, out: Path, **kw) -> TrainConfig:
    base = {'epochs': 2, 'batch_size': 16, 'width': 16, 'hidden': 16, 'heads': 2}
    base.update(kw)
    return TrainConfig(data=[str(samples)], out=str(out), **base, **QUIET)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / 'checkpoint.pt', weights_only=False)['model']


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_card_describes_model_and_training(tiny_model):
    """model.json: layout, embedding width, normalisation, sessions, metrics per epoch."""
    model_dir, _ = tiny_model
    card = json.loads((model_dir / 'model.json').read_text())
    assert (model_dir / 'model.onnx').stat().st_size > 1000
    assert card['embed_dim'] == 16 and card['inputs']['track_emb']['shape'] == ['B', 'T', 16]
    assert card['inputs']['track_feat']['columns'][6] == 'age/100'
    assert len(card['normalisation']['track_std']) == 10
    t = card['training']
    assert sorted(t['train_sessions'] + t['val_sessions']) == ['scene1', 'scene2', 'scene3']
    assert not set(t['train_sessions']) & set(t['val_sessions'])
    hist = card['metrics']['history']
    assert [m['epoch'] for m in hist] == [1, 2]
    assert all(0.0 <= m['det_acc'] <= 1.0 and m['labelled_detections'] > 0 for m in hist)
    assert card['package_version'] and card['architecture']['kind'] == 'pair'


def test_same_seed_same_model_other_seed_other_model(tiny_model, tmp_path):
    """A fixed seed reproduces the weights exactly; another seed does not."""
    _, samples = tiny_model
    train(_cfg(samples, tmp_path / 'a'), log=lambda s: None)
    train(_cfg(samples, tmp_path / 'b'), log=lambda s: None)
    train(_cfg(samples, tmp_path / 'c', seed=1), log=lambda s: None)
    assert _same(_weights(tmp_path / 'a'), _weights(tmp_path / 'b'))
    assert not _same(_weights(tmp_path / 'a'), _weights(tmp_path / 'c'))


def test_interrupted_training_resumes_to_the_same_model(tiny_model, tmp_path):
    """Stopped after epoch 1, a rerun continues at epoch 2 and ends where an unbroken run does."""
    _, samples = tiny_model
    train(_cfg(samples, tmp_path / 'full', epochs=3), log=lambda s: None)

    def stop(epoch):
        if epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(samples, tmp_path / 'cut', epochs=3), log=lambda s: None, on_epoch_end=stop)
    lines = []
    train(_cfg(samples, tmp_path / 'cut', epochs=3), log=lines.append)
    assert any('resumed' in line and 'after epoch 1' in line for line in lines)
    assert _same(_weights(tmp_path / 'full'), _weights(tmp_path / 'cut'))
    card = json.loads((tmp_path / 'cut' / 'model.json').read_text())
    assert [m['epoch'] for m in card['metrics']['history']] == [1, 2, 3]
    with pytest.raises(ValueError, match='other settings'):
        train(_cfg(samples, tmp_path / 'cut', epochs=3, lr=0.5), log=lambda s: None)


@pytest.mark.parametrize('arch,loss', [('pair', 'softmax'), ('seed', 'softmax'),
                                       ('pair', 'bce')])
def test_padding_does_not_change_scores(tiny_model, arch, loss):
    """An example scored alone equals the same example inside a padded batch."""
    _, samples = tiny_model
    examples = data.load_examples([samples], embed_dim=16)
    torch.manual_seed(0)
    model = build_model(TrainConfig(data=[], out='', width=16, hidden=16, heads=2, arch=arch,
                                    loss=loss), data.feature_stats(examples), 16).eval()
    small = min(examples, key=lambda e: e.cost.size)
    big = max(examples, key=lambda e: e.cost.size)
    assert small.shape[0] < big.shape[0] and small.shape[1] < big.shape[1]

    def probs(batch):
        b = {k: torch.from_numpy(v) for k, v in data.collate(batch).items()}
        with torch.no_grad():
            return model(*(b[k] for k in INPUT_KEYS)).numpy()
    alone = probs([small])[0]
    padded = probs([big, small])[1][:small.shape[0], :small.shape[1]]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def _assert_runtime_matches(model, lc, examples) -> list[np.ndarray]:
    """The onnxruntime lc gives the torch model's probabilities on each example (returned)."""
    out = []
    for ex in examples:
        b = {k: torch.from_numpy(v) for k, v in data.collate([ex]).items()}
        with torch.no_grad():
            want = model(*(b[k] for k in INPUT_KEYS)).numpy()[0]
        got = lc.probabilities(ex.track_feat, ex.track_emb, ex.det_feat, ex.det_emb, ex.cost,
                               ex.mask)
        np.testing.assert_allclose(got, want, atol=1e-5)
        out.append(got)
    return out


def test_onnx_runtime_matches_torch(tiny_model):
    """The exported graph on onnxruntime gives the trained model's probabilities."""
    model_dir, samples = tiny_model
    ck = torch.load(model_dir / 'checkpoint.pt', weights_only=False)
    card = json.loads((model_dir / 'model.json').read_text())
    cfg = TrainConfig(data=[], out='', width=16, hidden=16, heads=2)
    model = build_model(cfg, card['normalisation'], 16)
    model.load_state_dict(ck['best_state'])
    model.eval()
    _assert_runtime_matches(model, LearnedCost(model_dir, 0.5),
                            data.load_examples([samples], embed_dim=16)[:20])


def _run_scene(tmp_path, model_dir, weight, name, seed=5):
    from assoc_logger_ros.pipeline import Pipeline
    from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

    s = resolve({'log_dir': str(tmp_path / name), 'log_min_free_mb': 0.0, 'log_embed_dim': 16,
                 'log_wait_when_full': True, 'transformer_assoc_enable': weight > 0,
                 'transformer_assoc_weights': str(model_dir), 'transformer_assoc_weight': weight},
                env={})
    warnings: list[str] = []
    p = Pipeline(s, session_id=name, warn=warnings.append)
    snaps = [p.process(f) for f in generate_scene(SceneConfig(seed=seed, num_frames=40)
                                                  ).to_frames()]
    p.close()
    return p, snaps, warnings


def test_tracker_runs_the_model_and_logs_both_costs(tiny_model, tmp_path):
    """Model on: stage 1 uses the blend, samples carry assoc_prob + classical cost and stay valid.

    w = 1 assigns on the model alone, so the decisions differ from the classical ones somewhere;
    the classical cost logged with the model on equals the cost of a run without it on frame 1.
    """
    from assoc_logger_ros.dataset.summary import summarize
    model_dir, _ = tiny_model
    p, snaps, warnings = _run_scene(tmp_path, model_dir, 1.0, 'on')
    assert not warnings and p.tracker.learned_cost.calls > 10
    assert p.tracker.learned_cost.failures == 0
    assert all(s.assoc_prob is not None and s.classical_cost_matrix is not None for s in snaps)
    assert any((s.assoc_prob > 0).any() for s in snaps)
    _, off, _ = _run_scene(tmp_path, model_dir, 0.0, 'off')
    assert all(s.assoc_prob is None for s in off)
    assert any(not np.array_equal(a.assigned_track_ids, b.assigned_track_ids)
               for a, b in zip(snaps, off)) or any(
        not np.allclose(a.cost_matrix, a.classical_cost_matrix) for a in snaps)
    first = next(i for i, s in enumerate(snaps) if (s.assoc_prob > 0).any())
    np.testing.assert_allclose(snaps[first].classical_cost_matrix, off[first].cost_matrix,
                               atol=1e-6)
    stats = summarize(tmp_path / 'on', embed_cap=16)
    assert stats['error_count'] == 0, stats['errors']
    sys.path.insert(0, str(REPO / 'training'))
    try:
        from seed_loader import SeedAssocDataset
    finally:
        sys.path.pop(0)
    ds = SeedAssocDataset(tmp_path / 'on')
    assert len(ds) > 0 and ds[0]['cost'].shape == ds[0]['mask'].shape


def test_model_failure_falls_back_with_one_warning(tiny_model, tmp_path):
    """A model that fails mid-run: one warning, then the classical cost (same as model off)."""
    model_dir, _ = tiny_model
    from assoc_logger_ros.pipeline import Pipeline
    from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

    frames = generate_scene(SceneConfig(seed=5, num_frames=30)).to_frames()
    s = resolve({'log_dir': '', 'transformer_assoc_enable': True,
                 'transformer_assoc_weights': str(model_dir)}, env={})
    warnings: list[str] = []
    p = Pipeline(s, warn=warnings.append)

    def broken(*a, **k):
        raise RuntimeError('simulated inference failure')
    p.tracker.learned_cost._session.run = broken
    ref = Pipeline(resolve({'log_dir': ''}, env={}))
    for f in frames:
        a, b = p.process(f), ref.process(f)
        np.testing.assert_array_equal(a.assigned_track_ids, b.assigned_track_ids)
    assert len(warnings) == 1 and 'simulated inference failure' in warnings[0]
    assert str(model_dir / 'model.onnx') in warnings[0]


def test_missing_or_incompatible_model_is_a_clear_error_at_start(tiny_model, tmp_path):
    """Start fails with one line naming the file and what is wrong."""
    from assoc_logger_ros.tracking.byte_tracker import ByteTracker
    model_dir, _ = tiny_model

    def start(weights):
        cfg = resolve({'transformer_assoc_enable': True, 'transformer_assoc_weights': weights},
                      env={}).tracker
        ByteTracker(cfg)
    with pytest.raises(LearnedCostError, match='transformer_assoc_weights is empty'):
        start('')
    with pytest.raises(LearnedCostError, match=r'nowhere/model\.json: model card not found'):
        start(str(tmp_path / 'nowhere'))
    bad = tmp_path / 'bad'
    bad.mkdir()
    card = json.loads((model_dir / 'model.json').read_text())
    card['inputs']['track_feat']['columns'][0] = 'x1'
    (bad / 'model.json').write_text(json.dumps(card))
    (bad / 'model.onnx').write_bytes((model_dir / 'model.onnx').read_bytes())
    with pytest.raises(LearnedCostError, match=r'bad/model\.json: input track_feat has columns'):
        start(str(bad))
    card = json.loads((model_dir / 'model.json').read_text())
    (bad / 'model.json').write_text(json.dumps(card))
    (bad / 'model.onnx').write_bytes(b'not onnx')
    with pytest.raises(LearnedCostError, match=r'bad/model\.onnx: not a loadable ONNX model'):
        start(str(bad))
    card['embed_dim'] = 99
    (bad / 'model.json').write_text(json.dumps(card))
    (bad / 'model.onnx').write_bytes((model_dir / 'model.onnx').read_bytes())
    with pytest.raises(LearnedCostError, match='disagrees with the card embed_dim 99'):
        start(str(bad))


def test_train_command_and_seed_script(tiny_model, tmp_path):
    """`python -m assoc_logger_ros train` and training/train_assoc.py --data train and export."""
    _, samples = tiny_model
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    small = ['--epochs', '1', '--width', '16', '--heads', '2', '--quiet']
    r = subprocess.run([sys.executable, '-m', 'assoc_logger_ros', 'train', '--data', str(samples),
                        '--out', str(tmp_path / 'm1'), *small], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert 'best epoch 1: det acc' in r.stdout and (tmp_path / 'm1' / 'model.onnx').is_file()
    r = subprocess.run([sys.executable, str(REPO / 'training' / 'train_assoc.py'), '--data',
                        str(samples), '--out', str(tmp_path / 'm2'), *small],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'm2' / 'model.json').is_file()
    r = subprocess.run([sys.executable, '-m', 'assoc_logger_ros', 'train', '--data',
                        str(tmp_path / 'empty'), '--out', str(tmp_path / 'm3')],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 2 and 'empty is not a directory' in r.stderr
    (tmp_path / 'nomanifest').mkdir()
    r = subprocess.run([sys.executable, '-m', 'assoc_logger_ros', 'train', '--data',
                        str(tmp_path / 'nomanifest'), '--out', str(tmp_path / 'm4')],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 2 and 'no manifest.jsonl' in r.stderr


def test_assoc_eval_reports_pair_accuracy(tiny_model, tmp_path):
    """assoc-eval on held-out samples prints the model's and the classical decisions' accuracy."""
    from assoc_logger_ros.training.scene_samples import write_scene_samples
    model_dir, _ = tiny_model
    write_scene_samples(tmp_path / 'held', [9], num_frames=30, embed_dim=16)
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    r = subprocess.run([sys.executable, '-m', 'assoc_logger_ros', 'assoc-eval', '--model',
                        str(model_dir), '--samples', str(tmp_path / 'held')],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout.split('\n', 1)[1])
    assert m['examples'] > 10 and m['from_gt'] == m['examples']
    assert 0.0 < m['det_acc'] <= 1.0 and 0.0 < m['classical_det_acc'] <= 1.0


@pytest.mark.skipif(sys.platform != 'linux', reason='torchrun gloo test on Linux')
def test_ddp_two_cpu_processes(tiny_model, tmp_path):
    """Torchrun --nproc-per-node 2: gloo DDP trains, rank 0 writes one model, both agree."""
    _, samples = tiny_model
    env = {**os.environ, 'PYTHONPATH': str(REPO), 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2',
                        '--master-port', str(29500 + os.getpid() % 1000), '-m',
                        'assoc_logger_ros', 'train', '--data', str(samples), '--out',
                        str(tmp_path / 'ddp'), '--epochs', '1', '--width', '16', '--heads', '2',
                        '--threads', '1', '--quiet', '--val-fraction', '0'],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    card = json.loads((tmp_path / 'ddp' / 'model.json').read_text())
    assert card['training']['world_size'] == 2
    assert LearnedCost(tmp_path / 'ddp', 0.5).embed_dim == 16


def test_blend_reranks_within_the_classical_gate(tiny_model):
    """Eligible pairs get (1 - w) c + w (1 - p); pairs outside the gate keep their cost."""
    model_dir, _ = tiny_model
    lc = LearnedCost(model_dir, 0.5)
    cost = np.array([[0.2, 0.95], [0.5, 0.3]])
    gate = np.array([[True, True], [False, True]])
    rng = np.random.default_rng(0)
    inputs = (rng.random((2, 10), np.float32), None, rng.random((2, 8), np.float32), None)
    out, prob = lc.blend(cost, gate, 0.9, lambda: inputs)
    assert prob.shape == (2, 2)
    assert out[0, 1] == 0.95 and out[1, 0] == 0.5          # outside: unchanged
    np.testing.assert_allclose(out[[0, 1], [0, 1]],
                               0.5 * cost[[0, 1], [0, 1]] + 0.5 * (1 - prob[[0, 1], [0, 1]]))


def test_gated_export_scores_only_gated_pairs(tiny_model, tmp_path):
    """--gated: the sparse ONNX graph gives the dense gated model's numbers; outside the gate 0."""
    _, samples = tiny_model
    out = tmp_path / 'gated'
    card = train(_cfg(samples, out, epochs=1, gated=True), log=lambda s: None)
    assert card['architecture']['gated'] is True
    model = build_model(TrainConfig(data=[], out='', width=16, hidden=16, heads=2, gated=True),
                        card['normalisation'], 16)
    model.load_state_dict(torch.load(out / 'checkpoint.pt', weights_only=False)['best_state'])
    model.eval()
    lc = LearnedCost(out, 0.5)
    examples = data.load_examples([samples], embed_dim=16)[:20]
    assert any(0 < ex.mask.sum() < ex.mask.size for ex in examples)
    for ex, got in zip(examples, _assert_runtime_matches(model, lc, examples)):
        assert np.all(got[ex.mask <= 0] < 1e-6)
    ex = examples[0]        # nothing gated: every detection "no match", no failure
    got = lc.probabilities(ex.track_feat, ex.track_emb, ex.det_feat, ex.det_emb, ex.cost,
                           np.zeros_like(ex.mask))
    assert got.shape == ex.cost.shape and np.all(got < 1e-6)


def test_gated_loss_relabels_targets_outside_the_gate(tiny_model):
    """A label the gate excludes counts as "no match" (the tracker cannot make that pair)."""
    _, samples = tiny_model
    examples = data.load_examples([samples], embed_dim=16)
    ex = next(e for e in examples if (e.target >= 0).any())
    torch.manual_seed(0)
    model = build_model(TrainConfig(data=[], out='', width=16, hidden=16, heads=2, gated=True),
                        data.feature_stats(examples), 16)
    b = {k: torch.from_numpy(v) for k, v in data.collate([ex]).items()}
    closed = dict(b, mask=torch.zeros_like(b['mask']))
    gone = dict(closed, target=torch.full_like(b['target'], -1))
    gone['target'] = torch.where(b['target'] >= 0, torch.full_like(b['target'], ex.shape[0]),
                                 b['target'])
    with torch.no_grad():
        loss_closed, _ = model.loss(closed)
        loss_gone, _ = model.loss(gone)
    assert torch.isfinite(loss_closed) and float(loss_closed) < 50.0
    assert torch.allclose(loss_closed, loss_gone)


def test_zero_embeddings_export_without_the_embedding_branch(tiny_model, tmp_path):
    """drop_embeddings: K = 0 graph, same numbers as the full model on zero embeddings."""
    from assoc_logger_ros.training.export import export

    model_dir, samples = tiny_model
    card = json.loads((model_dir / 'model.json').read_text())
    model = build_model(TrainConfig(data=[], out='', width=16, hidden=16, heads=2),
                        card['normalisation'], 16)
    model.load_state_dict(torch.load(model_dir / 'checkpoint.pt',
                                     weights_only=False)['best_state'])
    slim = export(model, tmp_path / 'k0', training={}, metrics={},
                  track_thresh=card['track_thresh'], drop_embeddings=True)
    assert slim['embed_dim'] == 0 and model.embed_dim == 16   # the trained model untouched
    full, k0 = LearnedCost(model_dir, 0.5), LearnedCost(tmp_path / 'k0', 0.5)
    assert k0.embed_dim == 0
    for ex in data.load_examples([samples], embed_dim=16)[:10]:
        zero = np.zeros_like(ex.track_emb), np.zeros_like(ex.det_emb)
        want = full.probabilities(ex.track_feat, zero[0], ex.det_feat, zero[1], ex.cost,
                                  ex.mask)
        got = k0.probabilities(ex.track_feat, ex.track_emb, ex.det_feat, ex.det_emb, ex.cost,
                               ex.mask)   # embeddings given at run time are ignored
        np.testing.assert_allclose(got, want, atol=1e-5)
