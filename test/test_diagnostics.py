"""Contracts of the ground-truth-free ID switch estimator."""

from __future__ import annotations

import numpy as np

from assoc_logger_ros.tracking.diagnostics import SwitchEstimator

W, H = 640, 480
FPS = 30.0


def box(cx, foot, h=120.0):
    return [cx - 0.2 * h, foot - h, cx + 0.2 * h, foot]


def observe(est, k, matched=(), new=(), memb=None, nemb=None):
    """One frame: matched/new are lists of (id, box)."""
    mids = [i for i, _ in matched]
    mbox = np.array([b for _, b in matched], float).reshape(-1, 4)
    nids = [i for i, _ in new]
    nbox = np.array([b for _, b in new], float).reshape(-1, 4)
    return est.observe(k / FPS, mids, mbox, nids, nbox, width=W, height=H,
                       matched_emb=memb, new_emb=nemb)


def test_smooth_tracks_give_no_evidence():
    """Two tracks moving steadily, crossing at a distance in depth, give zero switches."""
    est = SwitchEstimator()
    observe(est, 0, new=[(1, box(100, 300)), (2, box(500, 400))])
    for k in range(1, 60):
        rep = observe(est, k, matched=[(1, box(100 + 5 * k, 300)), (2, box(500 - 5 * k, 400))])
        assert rep.count == 0
    assert est.total == 0


def test_swap_of_crossing_tracks_counts_two():
    """Two close tracks that start walking each other's way count as 2 switches, once."""
    est = SwitchEstimator()
    observe(est, 0, new=[(1, box(200, 350)), (2, box(440, 350))])
    total = 0
    suspects = set()
    for k in range(1, 45):
        x1, x2 = 200 + 4 * k, 440 - 4 * k              # they meet at k = 30
        if k > 30:
            x1, x2 = x2, x1                             # the tracks swapped people
        rep = observe(est, k, matched=[(1, box(x1, 350)), (2, box(x2, 350))])
        total += rep.swap
        suspects |= set(rep.suspected_ids.tolist())
    assert total == 2 and est.by_kind['swap'] == 2
    assert suspects == {1, 2}


def test_crossing_without_swap_is_not_counted():
    """The same crossing where each track keeps its person gives no swap evidence."""
    est = SwitchEstimator()
    observe(est, 0, new=[(1, box(200, 350)), (2, box(440, 350))])
    for k in range(1, 45):
        rep = observe(est, k, matched=[(1, box(200 + 4 * k, 350)), (2, box(440 - 4 * k, 350))])
        assert rep.count == 0


def test_lost_track_reappearing_under_new_id_counts_one():
    """A new track where a recently lost one would now be is one switch; only claimed once."""
    est = SwitchEstimator()
    observe(est, 0, new=[(1, box(200, 350))])
    for k in range(1, 10):
        observe(est, k, matched=[(1, box(200 + 3 * k, 350))])
    for k in range(10, 20):                                    # hidden for 10 frames
        observe(est, k)
    rep = observe(est, 20, new=[(5, box(200 + 3 * 20, 350))])
    assert rep.reappear == 1 and set(rep.suspected_ids.tolist()) == {1, 5}
    rep = observe(est, 21, matched=[(5, box(200 + 3 * 21, 350))],
                  new=[(6, box(200 + 3 * 21, 350))])
    assert rep.count == 0


def test_new_track_far_away_or_after_border_exit_is_not_a_switch():
    """Far from every lost track, or where a track left the image, a new track is just new."""
    est = SwitchEstimator()
    observe(est, 0, new=[(1, box(200, 350)), (2, box(8, 350))])
    for k in range(1, 5):
        observe(est, k, matched=[(1, box(200, 350)), (2, box(5, 350))])
    rep = observe(est, 10, new=[(7, box(550, 300)), (8, box(5, 350))])
    assert rep.count == 0


def test_one_frame_blip_is_not_claimed():
    """A track seen once (a false positive) that vanishes is not a lost identity."""
    est = SwitchEstimator()
    observe(est, 0, new=[(1, box(200, 350))])
    assert observe(est, 3, new=[(2, box(200, 350))]).count == 0


def test_old_lost_track_is_forgotten_after_window():
    """A track lost longer than the window cannot be claimed."""
    est = SwitchEstimator()
    observe(est, 0, new=[(1, box(200, 350))])
    for k in range(1, 5):
        observe(est, k, matched=[(1, box(200, 350))])
    rep = observe(est, 4 + int(4 * FPS), new=[(2, box(200, 350))])
    assert rep.count == 0


def test_appearance_disagreement_counts_once():
    """A match whose embedding is another track's counts one switch, then not again."""
    e1, e2 = np.eye(8, dtype=np.float32)[:2]
    est = SwitchEstimator()
    observe(est, 0, new=[(1, box(100, 350)), (2, box(400, 350))], nemb=np.stack([e1, e2]))
    for k in range(1, 5):
        observe(est, k, matched=[(1, box(100, 350)), (2, box(400, 350))],
                memb=np.stack([e1, e2]))
    rep = observe(est, 5, matched=[(1, box(100, 350))], memb=e2[None])
    assert rep.appearance == 1 and set(rep.suspected_ids.tolist()) == {1, 2}
    rep = observe(est, 6, matched=[(1, box(100, 350))], memb=e2[None])
    assert rep.count == 0


def test_reappearance_with_other_appearance_is_not_a_switch():
    """With embeddings on both sides, a new track that looks different is not the lost one."""
    e1, e2 = np.eye(8, dtype=np.float32)[:2]
    est = SwitchEstimator()
    observe(est, 0, new=[(1, box(200, 350))], nemb=e1[None])
    for k in range(1, 5):
        observe(est, k, matched=[(1, box(200, 350))], memb=e1[None])
    assert observe(est, 8, new=[(2, box(200, 350))], nemb=e2[None]).count == 0
    assert observe(est, 9, new=[(3, box(200, 350))], nemb=e1[None]).reappear == 1


def test_degenerate_inputs_never_raise():
    """Empty frames, NaN embeddings, width changes and reset are survived."""
    est = SwitchEstimator()
    assert observe(est, 0).count == 0
    observe(est, 1, new=[(1, box(100, 300))], nemb=np.full((1, 4), np.nan, np.float32))
    observe(est, 2, matched=[(1, box(100, 300))], memb=np.ones((1, 6), np.float32))
    observe(est, 3, matched=[(1, box(100, 300))], memb=np.ones((2, 6), np.float32))
    est.reset()
    assert est.total == 0 and observe(est, 4, matched=[(1, box(1, 1))]).count == 0


def test_fast_path_and_general_path_agree_on_a_tracked_scene():
    """Per-frame evidence is the same whether matches take the fused fast path or not.

    The calls the tracker makes on a generated scene are replayed twice; the second time every
    frame also carries a never-seen matched ID far outside the image (no embedding), which
    sends the matches through the general path (allocation, separate jump test) without
    changing what can be evidence.
    """
    from assoc_logger_ros.sim.scene import SceneConfig, generate_scene
    from assoc_logger_ros.tracking.byte_tracker import ByteTracker
    from assoc_logger_ros.tracking.reference import reference_config

    # the reference tracker's calls: this scene then exercises every kind of evidence
    tracker = ByteTracker(reference_config(frame_mode=False))
    calls = []
    real = tracker.diagnostics.observe

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    tracker.diagnostics.observe = spy
    for frame in generate_scene(SceneConfig(seed=1, num_frames=300)).to_frames():
        tracker.update(frame)
    fast, general = SwitchEstimator(), SwitchEstimator()
    for k, ((stamp, mids, mbox, nids, nbox), kw) in enumerate(calls):
        a = fast.observe(stamp, mids, mbox, nids, nbox, **kw)
        kw2 = dict(kw)
        if kw.get('matched_emb') is not None:
            kw2['matched_emb'] = np.concatenate([kw['matched_emb'], kw['matched_emb'][:1] * 0])
            kw2['matched_valid'] = np.append(kw['matched_valid'], False)
        b = general.observe(stamp, np.append(mids, 100_000 + k),
                            np.concatenate([mbox, [[-5000, -5000, -4990, -4900]]]), nids, nbox,
                            **kw2)
        assert (a.count, a.appearance, a.reappear, a.swap, a.jump, a.pairs) == \
            (b.count, b.appearance, b.reappear, b.swap, b.jump, b.pairs)
        assert a.suspected_ids.tolist() == b.suspected_ids.tolist()
    assert all(v > 0 for v in fast.by_kind.values()), fast.by_kind
