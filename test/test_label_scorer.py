"""The learned label scorer: boosted trees, out-of-fold threshold, model file, filter and CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import seed_loader
import numpy as np
import pytest

from assoc_logger_ros import cli
from assoc_logger_ros.dataset import boost
from assoc_logger_ros.dataset.label_scorer import (
    DEFAULT_FEATURES,
    LabelScorer,
    ScorerError,
    fit_scorer,
    keep_threshold,
)
from assoc_logger_ros.dataset.labels import CORRECT, WRONG, score_directory
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.npzfile import load
from assoc_logger_ros.shards.pack import pack
from assoc_logger_ros.sim.record import record_scene
from assoc_logger_ros.sim.scene import SceneConfig


def test_boost_learns_a_rule_with_nans_and_round_trips():
    """Positives are x0 > 0.7 or x1 missing; the trees rank them first, also after JSON."""
    rng = np.random.default_rng(0)
    x = rng.random((4000, 3))
    x[rng.random(4000) < 0.1, 1] = np.nan
    y = ((x[:, 0] > 0.7) | np.isnan(x[:, 1])).astype(float)
    model = boost.fit(x, y, boost.BoostSettings(rounds=40, depth=2))
    s = model.score(x)
    neg = np.sort(s[y == 0])
    auc = np.searchsorted(neg, s[y == 1], side='left').mean() / neg.size
    assert auc > 0.99, auc
    again = boost.from_plain(json.loads(json.dumps(boost.to_plain(model))), 3)
    np.testing.assert_array_equal(again.score(x), s)
    assert np.isfinite(model.score(np.full((2, 3), np.inf))).all()


def _sessions(n: int, shift: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Rows of ``n`` sessions, each with its own offset of the score (a domain shift)."""
    xs, ys, gs = [], [], []
    for k in range(n):
        x = rng.normal(size=(1500, 4))
        y = (x[:, 0] + 0.5 * rng.normal(size=1500) > 1.6).astype(float)
        x[:, 1] += shift * rng.normal()          # a nuisance key that differs per session
        xs.append(x)
        ys.append(y)
        gs.append(np.full(1500, f's{k}'))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def test_out_of_fold_threshold_keeps_its_share_on_unseen_sessions():
    """Out of fold, the threshold keeps its share on new sessions; on training scores, not.

    Deep trees overfit their training rows, so a threshold set on those rows' scores keeps
    fewer right labels on a session the model has not seen than it was set to keep.
    """
    rng = np.random.default_rng(3)
    x, y, g = _sessions(6, 2.0, rng)
    xt, yt, _ = _sessions(3, 2.0, rng)
    settings = boost.BoostSettings(rounds=150, depth=4, lr=0.3, pos_weight=5.0, min_hess=0.5)
    cols = {f'pair_{k}': x[:, j] for j, k in enumerate(('iou', 'row_margin', 'col_margin',
                                                         'track_age'))}
    feats = tuple(cols)
    verdict = np.where(y > 0, WRONG, CORRECT)
    scorer = fit_scorer({**cols, 'verdict': verdict, 'group': g}, features=feats, kept=0.95,
                        target='per_frame', settings=settings)
    assert scorer.info['calibration'].startswith('out of fold (6 folds')
    in_sample = keep_threshold(scorer.model.score(x), [verdict], 0.95)
    st = scorer.model.score(xt)
    kept_oof = float((st[yt == 0] <= scorer.threshold).mean())
    kept_in = float((st[yt == 0] <= in_sample).mean())
    assert kept_in < 0.94 < kept_oof, (kept_in, kept_oof)
    assert abs(kept_oof - 0.95) < 0.02
    est = scorer.info['estimate']['per_frame']
    assert est['right_kept'] >= 0.949 and 0 < est['wrong_removed'] <= 1


def _record(d: Path, seed: int, frames: int = 150) -> Path:
    """A crowded generated session with ground truth (its labels hold some wrong pairs)."""
    return record_scene(d, SceneConfig(seed=seed, num_frames=frames, num_walkers=25,
                                       group_fraction=0.6, fast_fraction=0.3, box_noise=0.06,
                                       sway=0.1))


def test_fit_scorer_then_filter_removes_wrong_labels_of_an_unseen_session(tmp_path, capsys):
    """A scorer fitted by ``labels`` removes far more wrong labels than right ones, held out.

    ``labels --fit-scorer`` on two sessions (and one that only trains); ``filter
    --label-scorer`` on a fourth: its wrong labels go to weight 0 far more often.
    """
    a, b, c, d = (_record(tmp_path / n, s) for n, s in (('a', 11), ('b', 12), ('c', 13),
                                                         ('d', 14)))
    model = tmp_path / 'scorer.json'
    assert cli.main(['labels', str(a), str(b), '--fit-scorer', str(model),
                     '--extra-train', str(c), '--kept', '0.9']) == 0
    out = capsys.readouterr().out
    assert 'out of fold (2 folds of 2 sessions)' in out and str(model) in out
    scorer = LabelScorer.load(model)
    assert scorer.features == DEFAULT_FEATURES and scorer.kept == 0.9
    assert scorer.info['sessions'] == 3 and scorer.info['calibration_sessions'] == 2
    assert scorer.needs_context() and scorer.needs_retrack()
    assert cli.main(['filter', str(d), '--out', str(tmp_path / 'f'), '--label-scorer',
                     str(model)]) == 0
    line = [t for t in capsys.readouterr().out.splitlines() if 'label_weights 0 on' in t]
    assert len(line) == 1
    pack(d, tmp_path / 'sh')                # the shard layout: the same pairs ignored
    assert cli.main(['filter', str(tmp_path / 'sh'), '--out', str(tmp_path / 'shf'),
                     '--label-scorer', str(model), '--jobs', '2']) == 0
    assert line[0] in capsys.readouterr().out.splitlines()
    before = score_directory(d)[0]['total']['consistent']
    after = score_directory(tmp_path / 'f')[0]['total']['consistent']
    assert (after['correct'], after['wrong']) == (before['correct'], before['wrong'])
    assert before['wrong'] >= 20
    removed = after['ignored_wrong'] / after['wrong']
    dropped = after['ignored_correct'] / after['correct']
    assert removed > 0.3 and dropped < 0.2 and removed > 3 * dropped, (removed, dropped)
    for rec in manifest.read_records(tmp_path / 'f'):
        arrays = load(tmp_path / 'f' / rec['npz'])
        w = arrays['label_weights']
        assert (w[arrays['assigned_track_ids'] < 0] == 1).all()
    seed = seed_loader()(tmp_path / 'f')
    assert len(seed) == len(manifest.read_records(d))


def test_fit_needs_ground_truth_and_one_session_is_in_sample(tmp_path, capsys):
    """No GT pairs: exit 1 with one line; one calibration session: said, still written."""
    from assoc_logger_ros.config import RecorderConfig
    from assoc_logger_ros.recording.synthetic import make_snapshot
    from assoc_logger_ros.recording.writer import SampleWriter
    nogt = tmp_path / 'nogt'
    with SampleWriter(nogt, RecorderConfig(log_min_free_mb=0.0, log_embed_dim=8)) as w:
        w.submit(make_snapshot(3, 3, seed=1), 'A', {})
    assert cli.main(['labels', str(nogt), '--fit-scorer', str(tmp_path / 'm.json')]) == 1
    assert 'no matched pair with ground truth' in capsys.readouterr().err
    assert not (tmp_path / 'm.json').exists()
    assert cli.main(['labels', str(tmp_path / 'missing'), '--fit-scorer',
                     str(tmp_path / 'm.json')]) == 2
    one = _record(tmp_path / 'one', 21, frames=120)
    assert cli.main(['labels', str(one), '--fit-scorer', str(tmp_path / 'm.json')]) == 0
    assert 'in-sample (one calibration session' in capsys.readouterr().out
    assert LabelScorer.load(tmp_path / 'm.json').info['calibration_sessions'] == 1


def _tiny_model() -> dict:
    return json.loads(LabelScorer(('pair_iou',), boost.Boosted((np.array([0.5]),), -1.0,
                                                               ([0, 0, False, 1.0, -1.0],)),
                                  0.0, 0.95).to_json())


@pytest.mark.parametrize('mutate, message', [
    (lambda m: 'not json {', 'invalid JSON'),
    (lambda m: {**m, 'format': 'pickle'}, 'not a label scorer file'),
    (lambda m: {**m, 'version': 9}, 'version 9'),
    (lambda m: {**m, 'features': ['__import__']}, 'known keys'),
    (lambda m: {**m, 'features': ['pair_iou', 'pair_iou']}, 'known keys'),
    (lambda m: {**m, 'threshold': 'nan'}, 'threshold'),
    (lambda m: {**m, 'kept': 7}, 'kept'),
    (lambda m: {**m, 'model': {**m['model'], 'trees': [[5, 0, False, 1.0, 1.0]]}}, 'range'),
    (lambda m: {**m, 'model': {**m['model'], 'trees': [[0, 99, False, 1.0, 1.0]]}}, 'range'),
    (lambda m: {**m, 'model': {**m['model'], 'trees': [[0, 0, False, 1.0]]}}, 'tree node'),
    (lambda m: {**m, 'model': {**m['model'], 'trees': [float('nan')]}}, 'leaf'),
    (lambda m: {**m, 'model': {**m['model'], 'edges': [[2.0, 1.0]]}}, 'increasing'),
    (lambda m: {**m, 'model': {**m['model'], 'edges': [list(range(40))]}}, 'at most'),
    (lambda m: {**m, 'model': {**m['model'], 'bins': 64}}, 'bins'),
    (lambda m: '[' * 100000 + ']' * 100000, 'not a label scorer'),
])
def test_hostile_model_files_are_refused_with_one_line(tmp_path, mutate, message):
    """A model file is data: bad values, names or nesting give a ScorerError naming them."""
    bad = mutate(_tiny_model())
    path = tmp_path / 'm.json'
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    with pytest.raises(ScorerError, match=message) as info:
        LabelScorer.load(path)
    assert '\n' not in str(info.value)


def test_model_file_must_be_a_small_regular_file(tmp_path, monkeypatch, capsys):
    """A symlink, FIFO or oversized model file is refused; filter says so in one line.

    Nothing is followed, waited on or read whole, and filter writes nothing.
    """
    from assoc_logger_ros.dataset import label_scorer
    good = tmp_path / 'good.json'
    good.write_text(json.dumps(_tiny_model()))
    assert LabelScorer.load(good).features == ('pair_iou',)
    link = tmp_path / 'link.json'
    link.symlink_to(good)
    with pytest.raises(ScorerError, match='symlink'):
        LabelScorer.load(link)
    fifo = tmp_path / 'fifo.json'
    os.mkfifo(fifo)
    with pytest.raises(ScorerError, match='only regular files'):
        LabelScorer.load(fifo)
    monkeypatch.setattr(label_scorer, 'MAX_FILE_BYTES', 100)
    with pytest.raises(ScorerError, match='over'):
        LabelScorer.load(good)
    src = tmp_path / 'src'
    _record(src, 5, frames=30)
    assert cli.main(['filter', str(src), '--out', str(tmp_path / 'out'), '--label-scorer',
                     str(link)]) == 1
    err = capsys.readouterr().err
    assert err.startswith('ERROR: ') and err.count('\n') == 1
    assert not (tmp_path / 'out').exists()
