"""Session-level (cross-frame) label evidence: ctx_* keys, the preset, the switch estimate.

On hand-made tracks and on generated scenes with an injected flip.
"""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
import json
from pathlib import Path

import numpy as np
import pytest

from assoc_logger_ros import cli
from assoc_logger_ros.dataset.label_filter import PRESETS, LabelRule, keep_mask
from assoc_logger_ros.dataset.retrack import RUNS as RETRACK_RUNS
from assoc_logger_ros.dataset.retrack import SessionDetections, runs
from assoc_logger_ros.dataset.track_context import (
    CONTEXT_KEYS,
    OVERLAP,
    SWAP_FRAMES,
    SessionContext,
)
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.npzfile import encode, load
from assoc_logger_ros.shards.pack import pack
from assoc_logger_ros.shards.source import open_source
from assoc_logger_ros.sim.record import record_scene
from assoc_logger_ros.sim.scene import SceneConfig
from assoc_logger_ros.tracking.confidence import CONFIDENCE_KEYS


def _box(cx: float, cy: float, h: float = 100.0) -> list[float]:
    return [cx - h / 4, cy - h / 2, cx + h / 4, cy + h / 2]


def _hand_session(flip_at: int = 10, n: int = 20) -> list[dict[str, np.ndarray]]:
    """Tracks 1 and 2 walk side by side; at ``flip_at`` 1 takes 2's detection, then returns.

    Track 2 stays unmatched in that frame.
    """
    out = []
    for f in range(n):
        a, b = _box(100 + 2 * f, 300), _box(160 + 2 * f, 300)
        if f == 0:
            out.append({'frame_idx': np.array([f]), 'det_boxes': np.array([a, b]),
                        'assigned_track_ids': np.array([-1, -1]),
                        'new_track_ids': np.array([1, 2])})
        elif f == flip_at:
            out.append({'frame_idx': np.array([f]), 'det_boxes': np.array([a, b]),
                        'assigned_track_ids': np.array([-1, 1]),
                        'new_track_ids': np.array([-1, -1])})
        else:
            out.append({'frame_idx': np.array([f]), 'det_boxes': np.array([a, b]),
                        'assigned_track_ids': np.array([1, 2]),
                        'new_track_ids': np.array([-1, -1])})
    return out


def test_a_one_frame_flip_stands_out_and_smooth_labels_do_not():
    """ctx_resid flags the flip, ctx_resid_prev the step back, ctx_rival_fit the rival's path."""
    samples = _hand_session()
    ctx = SessionContext()
    for i, a in enumerate(samples):
        ctx.add(i, a)
    out = ctx.compute()
    assert set(out[5]) == set(CONTEXT_KEYS)
    flip, back = out[10], out[11]
    assert flip['ctx_resid'][1] > 0.5                  # 60 px off track 1's path, h = 100
    assert flip['ctx_rival_fit'][1] < 0.05             # on track 2's path (interpolated)
    assert back['ctx_resid_prev'][0] > 0.5 and back['ctx_resid'][0] < 0.05
    assert out[9]['ctx_resid'][0] < 0.05             # the box before the flip is fine
    assert np.isnan(flip['ctx_resid'][0])              # unmatched detection: no evidence
    smooth = [out[i]['ctx_resid'][j] for i in range(1, 20) if i != 10
              for j in (0, 1)]
    assert max(smooth) < 0.02
    assert out[5]['ctx_rival_fit'][0] > 0.5            # the rival walks 60 px away
    assert out[18]['ctx_matches_left'][0] == 1.0
    # ctx thresholds (the earlier preset's) set exactly the flip and the step back to weight 0
    rule = LabelRule(max_ctx_resid=0.22, max_ctx_resid_prev=0.21, min_ctx_rival_fit=0.13)
    ignored = []
    for i, a in enumerate(samples):
        nan = np.full(2, np.nan)
        conf = {**dict.fromkeys(('pair_row_margin', 'pair_col_margin', 'pair_iou',
                                 'pair_time_since_update', 'pair_height_ratio',
                                 'pair_rival_track_iou', 'pair_rival_det_iou',
                                 'pair_det_overlap'), nan), **out[i]}
        matched = a['assigned_track_ids'] >= 0
        keep = keep_mask(conf, np.ones(2), np.ones(2), matched, rule)
        ignored += [(i, int(d)) for d in np.flatnonzero(~keep)]
    assert ignored == [(10, 1), (11, 0)]
    assert rule.needs_context() and not PRESETS['per-frame'].needs_context()
    assert PRESETS['recommended'].needs_context()


def _crossing_session(swap: bool, n: int = 30, meet: int = 12) -> list[dict[str, np.ndarray]]:
    """Tracks 1 and 2 walk towards each other, overlap around ``meet``, then walk apart.

    With ``swap`` each track leaves the crossing on the other's walker (its labels after the
    overlap are wrong), otherwise on its own.
    """
    out = []
    for f in range(n):
        a, b = _box(100 + 5 * f, 300), _box(100 + 10 * meet - 5 * f, 300)
        crossed = swap and f > meet + 3
        assigned = [2, 1] if crossed else [1, 2]
        out.append({'frame_idx': np.array([f]), 'det_boxes': np.array([a, b]),
                    'assigned_track_ids': np.array([-1, -1] if f == 0 else assigned),
                    'new_track_ids': np.array([1, 2] if f == 0 else [-1, -1])})
    return out


def _compute(samples: list[dict[str, np.ndarray]]) -> dict:
    ctx = SessionContext()
    for i, a in enumerate(samples):
        ctx.add(i, a)
    return ctx.compute()


def test_the_swap_keys_tell_a_swap_at_a_crossing_from_a_clean_crossing():
    """ctx_swap > 0 after a crossing that swapped the walkers, < 0 after a clean one.

    The overlap keys mark the crossing: ctx_overlap near 1 at the meeting frame, frames since
    the overlap counted after it, the separation large as the boxes part.
    """
    swapped, clean = _compute(_crossing_session(True)), _compute(_crossing_session(False))
    for out in (swapped, clean):
        assert out[12]['ctx_overlap'][0] > 0.9 and out[2]['ctx_overlap'][0] < OVERLAP
        assert np.isnan(out[5]['ctx_since_overlap'][0])      # no overlap before it
        assert np.isnan(out[5]['ctx_swap'][0])
        assert out[16]['ctx_separation'][0] > 0.5
        assert out[20]['ctx_since_overlap'][0] <= 20 - 14
    # boxes 50 px wide, 10 px/frame closer: IoU > 0.3 from frame 10 to 14
    assert clean[20]['ctx_since_overlap'][0] == 20 - 14
    after = range(17, 30)
    assert after[-1] - 14 <= SWAP_FRAMES       # all within reach of the overlap
    # each walker's detection, after the crossing: the swapped tracks hold the other walker
    assert min(swapped[f]['ctx_swap'][d] for f in after for d in (0, 1)) > 0.4
    assert max(clean[f]['ctx_swap'][d] for f in after for d in (0, 1)) < -0.4
    # --max-ctx-swap 0.2 ignores exactly the swapped labels after the crossing
    rule = LabelRule(max_ctx_swap=0.2)
    for out, samples, expect in ((swapped, _crossing_session(True), range(16, 30)),
                                 (clean, _crossing_session(False), ())):
        ignored = set()
        for i, a in enumerate(samples):
            nan = np.full(2, np.nan)
            conf = {**dict.fromkeys(CONFIDENCE_KEYS, nan), **out[i]}
            keep = keep_mask(conf, np.ones(2), np.ones(2), a['assigned_track_ids'] >= 0, rule)
            if not keep.all():
                ignored.add(i)
        assert ignored == set(expect)


def test_no_swap_evidence_for_an_overlap_the_track_was_born_in():
    """Track 1 is born on top of track 2 and walks off: it has no path before that overlap.

    Its ctx_swap stays NaN (not a value from another overlap's partner), while the frames
    since the overlap are counted.
    """
    samples = []
    for f in range(18):     # track 2 stands at x = 300 throughout; track 1 lives 3..14
        b = _box(300, 300)
        if f < 3 or f > 14:
            samples.append({'frame_idx': np.array([f]), 'det_boxes': np.array([b]),
                            'assigned_track_ids': np.array([-1 if f == 0 else 2]),
                            'new_track_ids': np.array([2 if f == 0 else -1])})
            continue
        a = _box(300 - 8 * (f - 3), 300)
        samples.append({'frame_idx': np.array([f]), 'det_boxes': np.array([a, b]),
                        'assigned_track_ids': np.array([-1 if f == 3 else 1, 2]),
                        'new_track_ids': np.array([1 if f == 3 else -1, -1])})
    out = _compute(samples)
    assert out[4]['ctx_overlap'][0] > OVERLAP
    assert all(np.isnan(out[f]['ctx_swap'][0]) for f in range(4, 15))
    assert out[14]['ctx_since_overlap'][0] > 5


def _scene_dir(d: Path, seed: int = 3) -> Path:
    return record_scene(d, SceneConfig(seed=seed, num_frames=50, num_walkers=5))


def _inject_flip(d: Path) -> tuple[str, str, list[int], list[int]]:
    """Swap two far-apart tracks' labels in one mid-session sample (a one-frame double flip).

    Returns (flipped sample, next sample, the swapped detections, their next detections).
    """
    recs = manifest.read_records(d)
    for k in range(15, len(recs) - 1):
        a = load(d / recs[k]['npz'])
        nxt = load(d / recs[k + 1]['npz'])
        m = np.flatnonzero(a['assigned_track_ids'] >= 0)
        cx = (a['det_boxes'][m, 0] + a['det_boxes'][m, 2]) / 2
        h = a['det_boxes'][m, 3] - a['det_boxes'][m, 1]
        for i in range(m.size):
            for j in range(m.size):
                ti, tj = a['assigned_track_ids'][m[i]], a['assigned_track_ids'][m[j]]
                later = {int(t): int(x) for x, t in enumerate(nxt['assigned_track_ids'])
                         if t >= 0}
                if cx[j] - cx[i] > max(h[i], h[j]) and ti in later and tj in later:
                    ids = a['assigned_track_ids'].copy()
                    ids[m[i]], ids[m[j]] = tj, ti
                    a['assigned_track_ids'] = ids
                    for key in CONFIDENCE_KEYS:     # recomputed for the swapped pairs
                        del a[key]
                    (d / recs[k]['npz']).write_bytes(encode(a))
                    return (recs[k]['npz'], recs[k + 1]['npz'], [int(m[i]), int(m[j])],
                            [later[int(ti)], later[int(tj)]])
    raise AssertionError('no far-apart pair of tracks in the scene')


def _zero_weights(d: Path) -> dict[str, set[int]]:
    out, source = {}, open_source(d)
    for rec in source.records:
        a = source.load(rec)
        out[rec['npz']] = {int(x) for x in np.flatnonzero(a['label_weights'] == 0)}
    return out


def test_preset_sets_weight_zero_on_an_injected_flip_in_both_layouts(tmp_path, capsys):
    """The preset reads the session first: a swap and the steps back get weight 0.

    Every frame stays; the shard layout gives the same weights.
    """
    src = _scene_dir(tmp_path / 'src')
    k, k1, dets, nxt = _inject_flip(src)
    assert cli.main(['filter', str(src), '--out', str(tmp_path / 'out'),
                     '--label-preset', 'recommended']) == 0
    out = tmp_path / 'out'
    assert [r['npz'] for r in manifest.read_records(out)] == [
        r['npz'] for r in manifest.read_records(src)]
    zero = _zero_weights(out)
    assert set(dets) <= zero[k] and set(nxt) <= zero[k1]
    matched = sum(int((load(out / n)['assigned_track_ids'] >= 0).sum()) for n in zero)
    assert sum(len(z) for z in zero.values()) < 0.3 * matched   # not everything goes
    # shards: same weights (the shard filter used to skip every sample under a label rule)
    pack(src, tmp_path / 'sh')
    capsys.readouterr()
    assert cli.main(['filter', str(tmp_path / 'sh'), '--out', str(tmp_path / 'shout'),
                     '--label-preset', 'recommended']) == 0
    assert 'skipped' not in capsys.readouterr().err
    assert _zero_weights(tmp_path / 'shout') == zero


def test_labels_reports_the_offline_switch_estimate(tmp_path, capsys):
    """The injected flip is a true event the offline estimate finds (label report, JSON)."""
    src = _scene_dir(tmp_path / 'src', seed=5)
    _inject_flip(src)
    assert cli.main(['labels', str(src), '--json']) == 0
    rep = json.loads(capsys.readouterr().out)
    off, live = rep['offline_switch_events'], rep['est_id_switches_events']
    assert off['true_events'] == live['true_events'] >= 1
    assert off['found'] >= 1 and off['found'] >= live['found']
    assert off['estimated_events'] >= live['estimated_events']
    assert cli.main(['labels', str(src)]) == 0
    assert 'offline estimate' in capsys.readouterr().out
    assert cli.main(['labels', str(src), '--json', '--no-context']) == 0
    assert 'offline_switch_events' not in json.loads(capsys.readouterr().out)


def test_session_pass_survives_bad_samples(tmp_path, capsys):
    """A garbage sample and one with inconsistent arrays: the session pass skips them.

    The filter reports the unreadable one and writes the others (the hostile files are decoys
    in the test's own directory).
    """
    src = _scene_dir(tmp_path / 'src', seed=7)
    recs = manifest.read_records(src)
    (src / recs[3]['npz']).write_bytes(b'PK\x03\x04 not a zip')
    a = load(src / recs[5]['npz'])
    a['det_boxes'] = a['det_boxes'][:, :3]
    (src / recs[5]['npz']).write_bytes(encode(a))
    assert cli.main(['filter', str(src), '--out', str(tmp_path / 'out'),
                     '--label-preset', 'recommended']) == 0
    err = capsys.readouterr().err
    assert recs[3]['npz'] in err
    out = [r['npz'] for r in manifest.read_records(tmp_path / 'out')]
    assert recs[3]['npz'] not in out and len(out) >= len(recs) - 2


def test_retracking_votes_flag_an_injected_swap_and_spare_clean_labels(tmp_path):
    """Every re-tracking run splits a swap of far-apart tracks; clean labels mostly get 0.

    Without ``retrack`` the vote keys are NaN (they pass any threshold).
    """
    src = _scene_dir(tmp_path / 'src', seed=11)
    k, k1, dets, nxt = _inject_flip(src)
    source = open_source(src)
    ctx, plain = SessionContext(retrack=True), SessionContext()
    for rec in source.records:
        ctx.add(rec['npz'], source.load(rec))
        plain.add(rec['npz'], source.load(rec))
    out, off = ctx.compute(), plain.compute()
    assert np.isnan(off[k]['ctx_retrack_votes']).all()
    for key in ('ctx_retrack_votes', 'ctx_window_retrack_votes'):
        assert list(out[k][key][dets]) == [RETRACK_RUNS] * 2, key
        assert list(out[k1][key][nxt]) == [RETRACK_RUNS] * 2, key   # the steps back
    # a run that tracks neither side abstains from splits: the forward runs always split
    forward = sum(not back for _, _, back in runs())
    assert min(out[k]['ctx_retrack_splits'][dets]) >= forward
    assert min(out[k1]['ctx_retrack_splits'][nxt]) >= forward
    clean = {key: np.concatenate([out[r['npz']][key] for r in source.records
                                  if r['npz'] not in (k, k1)])
             for key in ('ctx_retrack_votes', 'ctx_retrack_splits')}
    votes, splits = (v[np.isfinite(v)] for v in clean.values())
    assert votes.size > 100
    # a run that has not started a track yet (low scores at a track's end, seen backwards)
    # votes but does not split
    assert (splits == 0).mean() > 0.95 and (votes >= 4).mean() < 0.05
    assert (splits <= votes).all()
    # the filter flag reads them: the swap and the steps back get weight 0, little else does
    assert cli.main(['filter', str(src), '--out', str(tmp_path / 'out'),
                     '--max-ctx-retrack-splits', '1']) == 0
    zero = _zero_weights(tmp_path / 'out')
    assert set(dets) <= zero[k] and set(nxt) <= zero[k1]
    assert sum(len(z) for z in zero.values()) <= 4 + 0.05 * votes.size
    assert LabelRule(max_ctx_window_retrack_votes=1).needs_retrack()
    assert not PRESETS['per-frame'].needs_retrack()
    assert PRESETS['recommended'].needs_retrack() and not PRESETS['session'].needs_retrack()
    assert PRESETS['session'].needs_context()


def test_session_pass_computes_each_session_at_its_last_record(monkeypatch):
    """Sessions one after another: each is computed (and dropped) before the next is read.

    Interleaved sessions give the same values as each session alone.
    """
    from assoc_logger_ros.dataset import track_context
    a, b = _hand_session(flip_at=6, n=12), _hand_session(flip_at=8, n=12)
    events: list[str] = []
    original = SessionContext.compute

    def compute(self: SessionContext, run_ids: list | None = None) -> dict:
        events.append('compute')
        return original(self, run_ids)
    monkeypatch.setattr(SessionContext, 'compute', compute)

    def load(rec: dict) -> dict:
        events.append(rec['session'])
        return rec['arrays']
    recs = [{'session': 'a', 'arrays': s} for s in a] + [{'session': 'b', 'arrays': s} for s in b]
    out = track_context.records_context(recs, load)
    assert events == ['a'] * 12 + ['compute'] + ['b'] * 12 + ['compute']
    mixed = [r for pair in zip(recs[:12], recs[12:]) for r in pair]
    again = track_context.records_context(mixed, load)
    for pos, rec in enumerate(mixed):
        ref = out[recs.index(rec)]
        for key in CONTEXT_KEYS:
            np.testing.assert_array_equal(again[pos][key], ref[key])


def _walkers(n: int, stamps: list[int] | None = None, low_first: bool = False) -> list[dict]:
    """Two walkers far apart for ``n`` frames; ``low_first``: a 0.05-score box leads each frame."""
    out = []
    for f in range(n):
        boxes = [_box(100 + 3 * f, 300), _box(600 - 3 * f, 300)]
        scores = [0.9, 0.9]
        if low_first:
            boxes, scores = [_box(900, 700)] + boxes, [0.05] + scores
        out.append({'frame_idx': np.array([f]), 'det_boxes': np.array(boxes),
                    'det_scores': np.array(scores),
                    'stamp_ns': np.array([f * 33_000_000 if stamps is None else stamps[f]])})
    return out


def test_retracking_ids_land_on_the_right_rows_when_the_tracker_drops_some():
    """A leading box under the tracker's score floor: its row gets -1, the others keep theirs."""
    from assoc_logger_ros.dataset.retrack import SessionDetections
    for low_first in (False, True):
        det = SessionDetections()
        for i, a in enumerate(_walkers(10, low_first=low_first)):
            det.add(i, a)
        for run in det.all_track_ids():
            ids = np.stack([run[i] for i in range(10)])
            walkers = ids[:, 1:] if low_first else ids
            if low_first:
                assert (ids[:, 0] == -1).all()
            assert (walkers >= 0).all()
            assert (walkers == walkers[0]).all() and walkers[0, 0] != walkers[0, 1]


def test_retracking_clock_survives_broken_stamps(tmp_path, capsys):
    """Stamps that repeat or overflow int64 fall back to frame numbers; filter still runs."""
    from assoc_logger_ros.dataset.retrack import SessionDetections, _clock
    frames = SessionDetections()
    for i, a in enumerate(_walkers(4, stamps=[5, 5, 5, 5])):
        frames.add(i, a)
    assert _clock(frames.frames) == [1, 33_333_334, 66_666_667, 100_000_000]
    frames = SessionDetections()
    for i, a in enumerate(_walkers(3, stamps=[-2**63, 0, 2**63 - 1])):
        frames.add(i, a)
    assert _clock(frames.frames)[0] == 1 and len(frames.all_track_ids()) == 5
    # a whole sample directory with one crafted stamp: filter warns nothing fatal, exits 0
    src = _scene_dir(tmp_path / 'src', seed=2)
    recs = manifest.read_records(src)
    a = load(src / recs[4]['npz'])
    a['stamp_ns'] = np.array(-2**63, np.int64)       # the schema's shape (): it is read
    (src / recs[4]['npz']).write_bytes(encode(a))
    assert cli.main(['filter', str(src), '--out', str(tmp_path / 'out'),
                     '--label-preset', 'recommended']) == 0
    assert 'skipped' not in capsys.readouterr().err
    assert len(manifest.read_records(tmp_path / 'out')) == len(recs)


def test_a_session_that_cannot_be_computed_costs_only_its_own_evidence(monkeypatch):
    """compute() failing for one session: a one-line problem; the other session keeps values."""
    from assoc_logger_ros.dataset import track_context
    original = SessionContext.compute

    def compute(self: SessionContext, run_ids: list | None = None) -> dict:
        if 0 in self.sizes:           # session a holds record 0
            raise FloatingPointError('boom')
        return original(self, run_ids)
    monkeypatch.setattr(SessionContext, 'compute', compute)
    recs = ([{'session': 'a', 'arrays': s} for s in _hand_session()]
            + [{'session': 'b', 'arrays': s} for s in _hand_session()])
    problems: list[str] = []
    out = track_context.records_context(
        recs, lambda r: r['arrays'], problems=problems)
    assert problems == ["session 'a': no session evidence (FloatingPointError: boom)"]
    assert sorted(out) == list(range(20, 40))


def test_filter_skips_a_sample_without_stamp_with_a_warning(tmp_path, capsys):
    """A rewritten sample lacking ``stamp_ns`` is skipped and named, the rest are written."""
    src = _scene_dir(tmp_path / 'src', seed=4)
    recs = manifest.read_records(src)
    a = load(src / recs[6]['npz'])
    del a['stamp_ns']
    (src / recs[6]['npz']).write_bytes(encode(a))
    assert cli.main(['filter', str(src), '--out', str(tmp_path / 'out'),
                     '--label-preset', 'recommended']) == 0
    assert f'skipped {recs[6]["npz"]}' in capsys.readouterr().err
    out = [r['npz'] for r in manifest.read_records(tmp_path / 'out')]
    assert out == [r['npz'] for r in recs if r is not recs[6]]


def test_filter_and_labels_warn_about_a_session_without_evidence(tmp_path, capsys, monkeypatch):
    """Both layouts of filter and the labels report print the one-line problem, exit 0."""
    src = _scene_dir(tmp_path / 'src', seed=6)
    pack(src, tmp_path / 'sh')

    def compute(self: SessionContext, run_ids: list | None = None) -> dict:
        raise FloatingPointError('boom')
    monkeypatch.setattr(SessionContext, 'compute', compute)
    capsys.readouterr()
    for layout in ('src', 'sh'):
        assert cli.main(['filter', str(tmp_path / layout), '--out', str(tmp_path / f'o{layout}'),
                         '--label-preset', 'recommended']) == 0
        err = capsys.readouterr().err
        assert 'no session evidence (FloatingPointError: boom)' in err, layout
    cli.main(['labels', str(src)])
    assert 'no session evidence (FloatingPointError: boom)' in capsys.readouterr().err


def _scene_records(tmp_path: Path, seeds: tuple[int, ...]) -> list[dict]:
    """Records of generated sessions, interleaved, each carrying its arrays."""
    per_session = []
    for seed in seeds:
        source = open_source(_scene_dir(tmp_path / f's{seed}', seed=seed))
        per_session.append([{'session': f's{seed}', 'arrays': source.load(r)}
                            for r in source.records])
    return [r for group in zip(*per_session) for r in group]


def _assert_same_context(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for pos in a:
        for key in CONTEXT_KEYS:
            np.testing.assert_array_equal(a[pos][key], b[pos][key])


def test_retracking_in_worker_processes_gives_the_same_values(tmp_path, capsys):
    """Worker processes (``jobs`` 2, or 0: one per CPU) give the serial pass's values.

    So does filter in both layouts; it refuses a negative count with a one-line message.
    """
    from assoc_logger_ros.dataset import track_context
    recs = _scene_records(tmp_path, (3, 5, 7))
    serial = track_context.records_context(recs, lambda r: r['arrays'], retrack=True)
    assert any(np.isfinite(v['ctx_retrack_votes']).any() for v in serial.values())
    for jobs in (2, 0):
        problems: list[str] = []
        parallel = track_context.records_context(recs, lambda r: r['arrays'], retrack=True,
                                                 problems=problems, jobs=jobs)
        assert problems == []
        _assert_same_context(parallel, serial)
    src = tmp_path / 's3'
    for jobs in ('1', '2'):
        assert cli.main(['filter', str(src), '--out', str(tmp_path / f'out{jobs}'),
                         '--label-preset', 'recommended', '--jobs', jobs]) == 0
    assert _zero_weights(tmp_path / 'out1') == _zero_weights(tmp_path / 'out2')
    pack(src, tmp_path / 'sh')              # the shard layout takes the flag too
    assert cli.main(['filter', str(tmp_path / 'sh'), '--out', str(tmp_path / 'shout'),
                     '--label-preset', 'recommended', '--jobs', '2']) == 0
    assert _zero_weights(tmp_path / 'shout') == _zero_weights(tmp_path / 'out1')
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        cli.main(['filter', str(src), '--out', str(tmp_path / 'bad'), '--jobs', '-1'])
    assert refused.value.code == 2
    assert '-1 is not in 0..256' in capsys.readouterr().err
    assert not (tmp_path / 'bad').exists()


class _DiesInAWorker(SessionDetections):
    """Detections whose re-tracking kills the worker process that runs it (a lost worker)."""

    def track_ids(self, cfg, backwards):  # noqa: ANN001, ANN201 - the parent's signature
        import multiprocessing
        import os
        if multiprocessing.parent_process() is not None:
            os._exit(3)
        return super().track_ids(cfg, backwards)


def test_a_lost_worker_costs_no_evidence(tmp_path):
    """A worker killed mid-run breaks the pool: its session and later ones are done here."""
    from assoc_logger_ros.dataset import track_context
    recs = _scene_records(tmp_path, (3, 5))
    serial = track_context.records_context(recs, lambda r: r['arrays'], retrack=True)
    contexts = {}
    for pos, rec in enumerate(recs):
        contexts.setdefault(rec['session'], SessionContext(retrack=True)).add(pos, rec['arrays'])
    dying = contexts['s3'].detections
    contexts['s3'].detections = _DiesInAWorker(dying.frames)
    out: dict = {}
    problems: list[str] = []
    done = track_context._Sessions(2, True, out, problems)
    done.submit('s3', contexts['s3'])
    with pytest.raises(BrokenProcessPool):
        done.pending[0][2][0].result()
    done.submit('s5', contexts['s5'])      # the pool is broken: its runs are done here
    done.drain()
    done.shutdown()
    assert problems == []
    _assert_same_context(out, serial)
