"""Training data: one sample reader, labels from GT or decisions, session split, padding."""

from __future__ import annotations

import json

import numpy as np

from assoc_logger_ros.training import data


def _sample(session, frame, track_ids, states, det_scores, assigned, *, gt=None, stage=None,
            new=None, weights=None, k=4):
    t, d = len(track_ids), len(det_scores)
    s = {
        'session_id': np.array(session), 'frame_idx': np.array([frame]),
        'track_ids': np.array(track_ids, np.int64), 'track_states': np.array(states, np.int8),
        'track_features': np.full((t, 10), frame, np.float32),
        'track_embeddings': np.ones((t, k), np.float32),
        'det_features': np.full((d, 8), frame, np.float32),
        'det_embeddings': np.ones((d, k), np.float32),
        'det_scores': np.array(det_scores, np.float32),
        'cost_matrix': np.arange(t * d, dtype=np.float32).reshape(t, d) / max(t * d, 1),
        'mask_matrix': np.ones((t, d), np.float32),
        'assigned_track_ids': np.array(assigned, np.int64),
        'match_stage': np.array(stage if stage is not None else
                                [1 if a >= 0 else 0 for a in assigned], np.int8),
        'new_track_ids': np.array(new if new is not None else [-1] * d, np.int64),
    }
    if gt is not None:
        s['det_gt_ids'] = np.array(gt, np.int64)
    if weights is not None:
        s['label_weights'] = np.array(weights, np.float32)
    return s


def test_gt_labels_follow_identities_not_decisions():
    """A detection's target is the track that holds its identity, even when the tracker erred."""
    lab = data.Labeler()
    # frame 1: det (gt 10) starts track 5, det (gt 11) starts track 6
    assert lab(_sample('s', 1, [], [], [0.9, 0.9], [-1, -1], gt=[10, 11], new=[5, 6])) is None
    # frame 2: the tracker swaps them (det gt 10 -> track 6): labels say track 5 (row 0)
    ex = lab(_sample('s', 2, [5, 6], [1, 1], [0.9, 0.9, 0.95], [6, 5, -1], gt=[10, 11, 12]))
    assert ex.from_gt
    assert ex.target.tolist() == [0, 1, -1]         # gt 12 has no track: "no match"
    assert ex.weight.tolist() == [1, 1, 1]
    # frame 3: identities moved with the (wrong) assignments of frame 2
    ex = lab(_sample('s', 3, [5, 6], [1, 1], [0.9, 0.9], [5, 6], gt=[10, 11]))
    assert ex.target.tolist() == [1, 0]
    # another session knows nothing of these tracks
    ex = lab(_sample('t', 1, [5], [1], [0.9], [5], gt=[10]))
    assert ex.target.tolist() == [-1]


def test_unknown_gt_and_label_weights_are_ignored():
    """det_gt_ids -1 (false positive) and label_weights 0 give weight 0; absent weights = 1."""
    lab = data.Labeler()
    lab(_sample('s', 1, [], [], [0.9, 0.9], [-1, -1], gt=[10, 11], new=[5, 6]))
    ex = lab(_sample('s', 2, [5, 6], [1, 1], [0.9, 0.9, 0.9], [5, 6, -1], gt=[10, 11, -1],
                     weights=[1.0, 0.0, 1.0]))
    assert ex.weight.tolist() == [1.0, 0.0, 0.0]


def test_without_gt_labels_are_stage1_decisions_on_the_stage1_block():
    """No det_gt_ids: the tracker's stage-1 matches; unconfirmed tracks and low dets excluded."""
    lab = data.Labeler(track_thresh=0.6)
    s = _sample('s', 4, [1, 2, 3], [1, 2, 0], [0.9, 0.3, 0.8, 0.7], [2, 1, 3, -1],
                stage=[1, 2, 3, 0])
    ex = lab(s)
    assert not ex.from_gt
    assert ex.shape == (2, 3)                       # tracks 1, 2 x dets 0, 2, 3
    assert ex.target.tolist() == [1, -1, -1]        # det 2 went to the unconfirmed track 3
    np.testing.assert_array_equal(ex.cost, s['cost_matrix'][np.ix_([0, 1], [0, 2, 3])])


def test_classical_cost_is_the_pair_input_when_logged():
    """Samples logged with the model on: the model learns from the classical cost."""
    s = _sample('s', 1, [1], [1], [0.9], [1])
    s['classical_cost_matrix'] = np.full((1, 1), 0.25, np.float32)
    ex = data.Labeler()(s)
    assert ex.cost.tolist() == [[0.25]]


def test_split_is_by_session_or_contiguous_block():
    """No session on both sides; a single session splits into a head and a tail."""
    def ex(sess, i):
        return data.Example(sess, i, *(np.zeros((1, 1)),) * 6, np.zeros(1, np.int64),
                            np.ones(1, np.float32), True)
    many = [ex(f's{j}', i) for j in range(5) for i in range(10)]
    train, val, ts, vs = data.split_by_session(many, 0.2)
    assert len(vs) == 1 and not set(ts) & set(vs)
    assert {e.session for e in val} == set(vs) and {e.session for e in train} == set(ts)
    one = [ex('only', i) for i in range(10)]
    train, val, _, _ = data.split_by_session(one, 0.2)
    assert [e.frame_idx for e in train] == list(range(8))
    assert [e.frame_idx for e in val] == [8, 9]
    train, val, _, vs = data.split_by_session(many, val_sessions=['s3'])
    assert vs == ['s3'] and all(e.session == 's3' for e in val) and len(train) == 40


def test_collate_pads_and_marks_padding():
    """Padded rows are flagged, no-match targets point at the extra column."""
    lab = data.Labeler()
    a = lab(_sample('s', 1, [1], [1], [0.9], [1]))
    b = lab(_sample('s', 2, [1, 2, 3], [1, 1, 1], [0.9, 0.9], [2, -1]))
    batch = data.collate([a, b])
    assert batch['cost'].shape == (2, 3, 2)
    assert batch['track_pad'].tolist() == [[False, True, True], [False, False, False]]
    assert batch['det_pad'].tolist() == [[False, True], [False, False]]
    assert batch['target'].tolist() == [[0, -1], [1, 3]]
    assert batch['weight'].tolist() == [[1, 0], [1, 1]]


def _write_dir(root, sessions):
    root.mkdir()
    lines = []
    n = 0
    for sess, frames in sessions.items():
        for f in range(frames):
            name = f'sample_{n:07d}.npz'
            np.savez(root / name, **_sample(sess, f, [1], [1], [0.9], [1]))
            lines.append(json.dumps({'npz': name, 'session': sess}))
            n += 1
    (root / 'manifest.jsonl').write_text('\n'.join(lines) + '\n')


def test_iter_samples_shards_by_session(tmp_path):
    """Ranks read disjoint whole sessions and together read everything, in order."""
    _write_dir(tmp_path / 'd', {f'sess{i}': 3 for i in range(6)})
    everything = list(data.iter_samples([tmp_path / 'd']))
    assert len(everything) == 18
    parts = [list(data.iter_samples([tmp_path / 'd'], rank=r, world_size=2)) for r in (0, 1)]
    sess = [{str(s['session_id']) for s in p} for p in parts]
    assert not sess[0] & sess[1] and len(sess[0] | sess[1]) == 6
    assert sum(map(len, parts)) == 18
    for name in sess[0]:        # each session whole and in time order
        assert [int(s['frame_idx'][0]) for s in parts[0]
                if str(s['session_id']) == name] == [0, 1, 2]


def test_iter_samples_skips_bad_files_and_stays_inside(tmp_path):
    """A broken sample is reported and skipped; a manifest path leaving the folder is ignored."""
    _write_dir(tmp_path / 'd', {'a': 2})
    decoy = tmp_path / 'outside.npz'
    np.savez(decoy, **_sample('evil', 0, [1], [1], [0.9], [1]))
    (tmp_path / 'd' / 'sample_0000001.npz').write_bytes(b'broken')
    with open(tmp_path / 'd' / 'manifest.jsonl', 'a') as fh:
        fh.write(json.dumps({'npz': '../outside.npz', 'session': 'a'}) + '\n{torn\n')
    errors = []
    got = list(data.iter_samples([tmp_path / 'd'], on_error=lambda p, e: errors.append(p)))
    assert [str(s['session_id']) for s in got] == ['a']
    assert [p.name for p in errors] == ['sample_0000001.npz']
