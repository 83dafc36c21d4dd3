"""Label quality: confidence keys, the ground-truth label report, per-pair filtering, origins."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import seed_loader
import numpy as np
import pytest

from assoc_logger_ros import cli
from assoc_logger_ros.config import RecorderConfig, resolve
from assoc_logger_ros.dataset.label_filter import PRESETS, LabelRule, keep_mask, label_weights
from assoc_logger_ros.dataset.labels import CORRECT, UNVERIFIABLE, WRONG, SessionScorer
from assoc_logger_ros.dataset.ops import filter_dataset
from assoc_logger_ros.dataset.select import Criteria
from assoc_logger_ros.messages.convert import FALLBACK_SIZE, ClassRegistry, arrays_to_frame
from assoc_logger_ros.pipeline import Pipeline
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.npzfile import encode, load
from assoc_logger_ros.recording.sample import build
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.recording.writer import SampleWriter
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene
from assoc_logger_ros.tracking.byte_tracker import ByteTracker
from assoc_logger_ros.tracking.confidence import CONFIDENCE_KEYS, pair_confidence


def test_margins_are_runner_up_minus_cost():
    """Row margin: the track's next-cheapest eligible detection; column: the next track."""
    cost = np.array([[0.2, 0.3, 1.0], [0.25, 0.9, 0.4]], np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 1]], np.float32)
    boxes = np.array([[0, 0, 10, 20], [50, 0, 60, 20]], float)
    dets = np.array([[0, 0, 10, 20], [1, 0, 11, 20], [50, 0, 60, 24]], float)
    feats = np.zeros((2, 10), np.float32)
    feats[:, 6], feats[:, 7] = 0.3, 0.04                # age 30, since 2
    c = pair_confidence(cost, mask, np.array([7, 8]), np.array([7, -1, 8]), boxes, dets, feats)
    np.testing.assert_allclose(c['pair_row_margin'], [0.1, np.nan, 0.25 - 0.4], atol=1e-6)
    # det 0: other track 8 costs 0.25; det 2: no other eligible track -> 1.0
    np.testing.assert_allclose(c['pair_col_margin'], [0.05, np.nan, 0.6], atol=1e-6)
    np.testing.assert_allclose(c['pair_track_age'], [30, np.nan, 30], atol=1e-4)
    np.testing.assert_allclose(c['pair_time_since_update'], [2, np.nan, 2], atol=1e-4)
    np.testing.assert_allclose(c['pair_iou'], [1.0, np.nan, 200 / 240], atol=1e-6)
    np.testing.assert_allclose(c['pair_height_ratio'], [1.0, np.nan, 1.2], atol=1e-6)
    assert c['pair_rival_det_iou'][0] == pytest.approx(180 / 220)   # det 1 on track 7's box
    assert c['pair_rival_track_iou'][0] == 0.0
    assert c['pair_det_overlap'][0] == pytest.approx(0.9)


def test_samples_carry_valid_confidence_keys_and_old_ones_still_validate():
    """Built samples have every key (NaN where unmatched); without them they still validate."""
    a = build(make_snapshot(6, 7, seed=3), 's', {}, 16).arrays
    assert set(CONFIDENCE_KEYS) <= set(a)
    assert validate(a) == []
    old = {k: v for k, v in a.items() if k not in CONFIDENCE_KEYS}
    assert validate(old) == []
    bad = dict(a, pair_iou=np.zeros_like(a['pair_iou']))
    assert any('pair_iou' in e for e in validate(bad))
    assert any('label_weights' in e for e in validate(dict(
        a, label_weights=np.full(a['det_scores'].shape, 2.0, np.float32))))


def _scene_arrays(frames, tracker=None):
    """Track frames, return the sample arrays of every frame that is a sample."""
    tracker = tracker or ByteTracker()
    out = []
    for f in frames:
        snap = tracker.update(f)
        if snap.num_tracks and snap.num_detections:
            out.append(build(snap, 's', {}, 0).arrays)
    return out


def _score(samples):
    sc = SessionScorer()
    for a in samples:
        sc.score(a)
    return sc.counts


def test_report_finds_injected_switches_on_a_generated_scene():
    """A known switch: two far-apart identities' labels swapped from frame k on.

    Exactly their two pairs at k turn wrong (both definitions), nothing else changes.
    """
    scene = generate_scene(SceneConfig(seed=2, num_frames=60, num_walkers=6))
    frames = [f.to_frame(with_embeddings=False) for f in scene.frames]
    base = _scene_arrays(frames)
    def apart(a, p, q):
        box = {int(g): b for g, b in zip(a['gt_ids'], a['gt_boxes'])}
        bp, bq = box[p], box[q]
        return bp[2] < bq[0] or bq[2] < bp[0] or bp[3] < bq[1] or bq[3] < bp[1]

    def candidates():   # (frame, a, b): two matched identities whose boxes do not touch
        for a in base[20:]:
            ids = [int(g) for g in a['det_gt_ids'][a['assigned_track_ids'] >= 0] if g >= 0]
            for p in ids:
                for q in ids:
                    if p < q and apart(a, p, q):
                        yield int(a['frame_idx'][0]), p, q
    k, a_id, b_id = next(candidates())

    def swap(x):
        x = np.array(x)
        ia, ib = x == a_id, x == b_id
        x[ia], x[ib] = b_id, a_id
        return x
    from dataclasses import replace
    swapped = [replace(f, gt_ids=swap(f.gt_ids), gt_object_ids=swap(f.gt_object_ids))
               if f.frame_idx >= k else f for f in frames]
    before, after = _score(base), _score(_scene_arrays(swapped))
    for key in ('per_frame', 'consistent'):
        assert after[key].wrong - before[key].wrong == 2, key
        assert after[key].correct == before[key].correct - 2
    assert before['per_frame'].correct > 150


def test_per_frame_consistent_flip_back_missed_and_origin():
    """Hand-made session: a flip-back, an overlap the consistent definition forgives, a miss."""
    def sample(stamp, assigned, gt, boxes, gt_ids, gt_boxes, new=None, origin=None):
        d = len(assigned)
        a = {'det_gt_ids': np.array(gt), 'assigned_track_ids': np.array(assigned),
             'new_track_ids': np.array(new if new is not None else [-1] * d),
             'track_ids': np.array([1, 2]), 'det_boxes': np.array(boxes, float),
             'gt_boxes': np.array(gt_boxes, float), 'gt_ids': np.array(gt_ids),
             'stamp_ns': stamp, 'est_id_switches_frame': 0}
        if origin is not None:
            a['origin_track_ids'], a['origin_det_gt_ids'] = np.array([1, 2]), np.array(origin)
        return a
    box_a, box_b = [0, 0, 10, 20], [30, 0, 40, 20]
    near_a = [0, 0, 10, 14]          # IoU 0.7 with box_a, but matched to gt 20 per frame
    sc = SessionScorer()
    sc.score(sample(1, [1, 2], [10, 20], [box_a, box_b], [10, 20], [box_a, box_b],
                    origin=[10, 20]))
    sc.score(sample(2, [1, 2], [20, 10], [near_a, box_b], [10, 20], [box_a, box_b]))
    sc.score(sample(3, [1, 2], [10, 20], [box_a, box_b], [10, 20], [box_a, box_b]))
    sc.score(sample(4, [1, -1], [10, 20], [box_a, box_b], [10, 20], [box_a, box_b]))
    f, c = sc.counts['per_frame'], sc.counts['consistent']
    # per-frame: frame 2 both wrong, frame 3 both wrong and flip-backs, frame 4 track 1 right
    assert (f.correct, f.wrong, f.flip_backs, f.unverifiable, f.missed) == (3, 4, 2, 0, 1)
    # consistent: in frame 2 both detections still overlap their tracks' gt boxes (near_a has
    # IoU 0.7 with gt 10's box, box_b is gt 20's box): every pair is right
    assert (c.correct, c.wrong, c.unverifiable) == (7, 0, 0)
    assert c.missed == 1
    no_origin = SessionScorer()
    no_origin.score(sample(1, [1, 2], [10, 20], [box_a, box_b], [10, 20], [box_a, box_b]))
    assert no_origin.counts['per_frame'].unverifiable == 2


def _write(d: Path, n: int = 6) -> Path:
    cfg = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=8)
    with SampleWriter(d, cfg) as w:
        for i in range(n):
            w.submit(make_snapshot(6, 7, seed=i, frame_idx=i, gt=True,
                                   stamp_ns=10**18 + i * 10**8), 'A', {'source': 'test'})
    return d


def test_filter_sets_label_weights_and_keeps_every_frame(tmp_path):
    """--label-preset rewrites each sample with label_weights from the keys; seed loader reads."""
    src = _write(tmp_path / 'src')
    # one sample written before the confidence keys existed
    first = manifest.read_records(src)[0]
    arrays = load(src / first['npz'])
    for key in CONFIDENCE_KEYS:
        del arrays[key]
    (src / first['npz']).write_bytes(encode(arrays))
    assert cli.main(['filter', str(src), '--out', str(tmp_path / 'out'), '--label-preset',
                     'recommended', '--min-pair-iou', '0.5']) == 0
    out = tmp_path / 'out'
    recs = manifest.read_records(out)
    assert [r['npz'] for r in recs] == [r['npz'] for r in manifest.read_records(src)]
    ignored = 0
    rule = PRESETS['recommended']
    for rec in recs:
        a = load(out / rec['npz'])
        assert validate(a) == []
        w = a['label_weights']
        assert w.dtype == np.float32 and w.shape == a['det_scores'].shape
        matched = a['assigned_track_ids'] >= 0
        expect = keep_mask(a, a['det_visibility'], a['det_scores'], matched,
                           LabelRule(**{**rule.__dict__, 'min_pair_iou': 0.5}))
        np.testing.assert_array_equal(w, expect.astype(np.float32))
        assert (w[~matched] == 1).all()
        ignored += int((w == 0).sum())
    assert ignored > 0
    seed = seed_loader()(out)
    assert len(seed) == len(recs)
    assert all(seed[i]['labels'].shape == (seed[i]['num_detections'],)
               for i in range(len(seed)))
    # filters compose: a second pass never raises a weight
    res = filter_dataset(out, tmp_path / 'out2', Criteria(), LabelRule(min_pair_iou=0.99))
    assert res['rewritten'] == len(recs)
    for rec in recs:
        a, b = load(out / rec['npz']), load(tmp_path / 'out2' / rec['npz'])
        assert (b['label_weights'] <= a['label_weights']).all()
        assert (label_weights(b, LabelRule()) == b['label_weights']).all()


def test_first_frame_tracks_have_their_origin_in_the_next_sample(tmp_path):
    """Frame 1 is no sample; the tracks it starts come as origin_* keys in sample 0."""
    scene = generate_scene(SceneConfig(seed=1, num_frames=10, num_walkers=4))
    p = Pipeline(resolve({'log_dir': str(tmp_path), 'log_min_free_mb': 0.0,
                          'log_writer': 'thread'}, env={}))
    snaps = [p.process(f.to_frame(with_embeddings=False)) for f in scene.frames]
    p.close()
    recs = manifest.read_records(tmp_path)
    assert len(recs) == sum(1 for s in snaps if s.num_tracks and s.num_detections)
    a = load(tmp_path / recs[0]['npz'])
    started = snaps[0].new_track_ids[snaps[0].new_track_ids >= 0]
    np.testing.assert_array_equal(a['origin_track_ids'], started)
    assert int(a['origin_frame_idx']) == snaps[0].frame_idx
    assert 'origin_track_ids' not in load(tmp_path / recs[1]['npz'])
    assert validate(a) == []


def test_image_size_is_never_the_box_extent(tmp_path):
    """Without mask, image or setting: the fixed fallback, said once and recorded."""
    f = arrays_to_frame(5, np.array([[0.0, 0.0, 100.0, 50.0]]), np.array([0.9]), ['a'],
                        registry=ClassRegistry())
    assert (f.width, f.height, f.size_source) == (*FALLBACK_SIZE, 'fallback')
    g = arrays_to_frame(5, np.array([[0.0, 0.0, 100.0, 50.0]]), np.array([0.9]), ['a'],
                        registry=ClassRegistry(), width=640, height=480)
    assert (g.width, g.height, g.size_source) == (640, 480, 'setting')
    warnings = []
    p = Pipeline(resolve({'log_dir': str(tmp_path), 'log_min_free_mb': 0.0,
                          'log_writer': 'thread'}, env={}), warn=warnings.append)
    from dataclasses import replace
    for i in range(3):
        p.process(replace(f, stamp_ns=10**9 + i * 33_000_000))
    p.close()
    assert sum('image size unknown' in w for w in warnings) == 1
    meta = json.loads(str(load(tmp_path / manifest.read_records(tmp_path)[0]['npz'])
                          ['metadata']))
    assert (meta['width'], meta['height'], meta['size_source']) == (1920, 1080, 'fallback')


def test_labels_command_prints_both_definitions(tmp_path, capsys):
    """The labels command on generated samples with ground truth; 1 without ground truth."""
    scene = generate_scene(SceneConfig(seed=4, num_frames=40, num_walkers=5))
    p = Pipeline(resolve({'log_dir': str(tmp_path / 's'), 'log_min_free_mb': 0.0,
                          'log_writer': 'thread'}, env={}))
    for fr in scene.frames:
        p.process(fr.to_frame(with_embeddings=False))
    p.close()
    assert cli.main(['labels', str(tmp_path / 's')]) == 0
    text = capsys.readouterr().out
    assert 'total, per_frame' in text and 'total, consistent' in text
    assert 'est_id_switches events' in text
    assert cli.main(['labels', str(tmp_path / 's'), '--json']) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep['total']['per_frame']['verifiable'] > 100
    nogt = tmp_path / 'nogt'
    with SampleWriter(nogt, RecorderConfig(log_min_free_mb=0.0, log_embed_dim=8)) as w:
        w.submit(make_snapshot(3, 3, seed=1), 'A', {})
    assert cli.main(['labels', str(nogt)]) == 1
    assert cli.main(['labels', str(tmp_path / 'missing')]) == 2


def test_verdict_constants_are_distinct():
    """The per-pair table's verdict codes."""
    assert len({CORRECT, WRONG, UNVERIFIABLE}) == 3


def test_pipeline_scores_labels_live_as_the_report_does(tmp_path):
    """Frames with ground truth: the pipeline's gt_label_* stats equal the offline report's."""
    from assoc_logger_ros.dataset.labels import score_directory
    scene = generate_scene(SceneConfig(seed=6, num_frames=40, num_walkers=5))
    p = Pipeline(resolve({'log_dir': str(tmp_path), 'log_min_free_mb': 0.0,
                          'log_writer': 'thread'}, env={}))
    for fr in scene.frames:
        p.process(fr.to_frame(with_embeddings=False))
    p.close()
    live = p.stats()
    offline = score_directory(tmp_path)[0]['total']
    for key in ('per_frame', 'consistent'):
        assert live[f'gt_label_{key}_correct'] == offline[key]['correct']
        assert live[f'gt_label_{key}_wrong'] == offline[key]['wrong']
    plain = Pipeline(resolve({'log_dir': ''}, env={}))
    plain.process(scene.frames[0].to_frame(with_gt=False))
    assert not any(k.startswith('gt_label_') for k in plain.stats())


def test_report_counts_pairs_that_label_weights_ignore():
    """A wrong pair with weight 0 is counted as ignored; the verdicts themselves stay."""
    box_a, box_b = [0, 0, 10, 20], [30, 0, 40, 20]

    def sample(gt, weights=None):
        a = {'det_gt_ids': np.array(gt), 'assigned_track_ids': np.array([1, 2]),
             'new_track_ids': np.array([-1, -1]), 'track_ids': np.array([1, 2]),
             'det_boxes': np.array([box_a, box_b], float), 'stamp_ns': 0,
             'est_id_switches_frame': 0, 'origin_track_ids': np.array([1, 2]),
             'origin_det_gt_ids': np.array([10, 20])}
        if weights is not None:
            a['label_weights'] = np.array(weights, np.float32)
        return a
    sc = SessionScorer()
    sc.score(sample([10, 20]))
    sc.score(sample([10, 30], weights=[1, 0]))
    c = sc.counts['per_frame'].as_dict()
    assert (c['correct'], c['wrong'], c['ignored_wrong'], c['ignored_correct']) == (3, 1, 1, 0)
