"""The stamp joiner shared by the node and the replay: deterministic, bounded, never waits long."""

from __future__ import annotations

import pytest

from assoc_logger_ros.messages.joiner import StampJoiner

MS = 1_000_000


def _names(out):
    return [(j.detections, j.sides.get('mask'), j.missed) for j in out]


def test_no_sides_releases_immediately():
    """Without wanted sides a detection array is released on arrival."""
    j = StampJoiner(50 * MS, sides=())
    assert _names(j.add_detections(0, 'd0', now_ns=0)) == [('d0', None, ())]


def test_mask_before_detections_joins_on_arrival():
    """A buffered mask with the same stamp joins the detection array as soon as it arrives."""
    j = StampJoiner(50 * MS)
    assert j.add_side('mask', 100 * MS, 'm', now_ns=0) == []
    assert _names(j.add_detections(100 * MS, 'd', now_ns=1)) == [('d', 'm', ())]


def test_mask_after_detections_within_tolerance_joins():
    """A detection array waits for a mask that arrives before its deadline."""
    j = StampJoiner(50 * MS)
    assert j.add_detections(100 * MS, 'd', now_ns=0) == []
    assert _names(j.add_side('mask', 110 * MS, 'm', now_ns=40 * MS)) == [('d', 'm', ())]


def test_missing_mask_releases_at_deadline_and_counts_miss():
    """No mask: released once now reaches arrival + tolerance, counted as a miss."""
    j = StampJoiner(50 * MS)
    j.add_detections(100 * MS, 'd', now_ns=0)
    assert j.poll(49 * MS) == []
    assert _names(j.poll(50 * MS)) == [('d', None, ('mask',))]
    assert j.stats()['mask_misses'] == 1


def test_mask_after_deadline_never_joins():
    """A call first expires with its own now: a mask arriving after the deadline misses."""
    j = StampJoiner(50 * MS)
    j.add_detections(100 * MS, 'd', now_ns=0)
    assert _names(j.add_side('mask', 100 * MS, 'm', now_ns=60 * MS)) == [('d', None, ('mask',))]


def test_stamp_outside_tolerance_does_not_join():
    """A mask whose stamp differs by more than the tolerance is not joined."""
    j = StampJoiner(10 * MS)
    j.add_side('mask', 200 * MS, 'm', now_ns=0)
    j.add_detections(100 * MS, 'd', now_ns=0)
    assert _names(j.poll(10 * MS)) == [('d', None, ('mask',))]


def test_release_order_is_arrival_order():
    """A complete later array waits behind an incomplete earlier one (stamps stay monotone)."""
    j = StampJoiner(50 * MS)
    j.add_detections(100 * MS, 'd1', now_ns=0)
    assert j.add_detections(133 * MS, 'd2', now_ns=1 * MS) == []
    assert j.add_side('mask', 133 * MS, 'm2', now_ns=2 * MS) == []
    assert _names(j.poll(50 * MS)) == [('d1', None, ('mask',)), ('d2', 'm2', ())]


def test_late_mask_of_previous_frame_does_not_join_next():
    """A mask arriving after its frame was released is not given to the next frame."""
    j = StampJoiner(50 * MS)
    j.add_detections(100 * MS, 'd1', now_ns=0)
    j.poll(50 * MS)  # d1 released without mask
    j.add_side('mask', 100 * MS, 'm1-late', now_ns=60 * MS)
    j.add_detections(133 * MS, 'd2', now_ns=61 * MS)
    assert _names(j.poll(111 * MS)) == [('d2', None, ('mask',))]


def test_nearest_stamp_wins():
    """With two candidates the nearest stamp is joined."""
    j = StampJoiner(50 * MS)
    j.add_side('mask', 90 * MS, 'far', now_ns=0)
    j.add_side('mask', 101 * MS, 'near', now_ns=0)
    assert _names(j.add_detections(100 * MS, 'd', now_ns=0))[0][1] == 'near'


def test_image_and_mask_both_required():
    """With mask and image wanted, release needs both (or the deadline)."""
    j = StampJoiner(50 * MS, sides=('mask', 'image'))
    j.add_detections(0, 'd', now_ns=0)
    assert j.add_side('mask', 0, 'm', now_ns=1) == []
    out = j.add_side('image', 0, 'i', now_ns=2)
    assert out[0].sides == {'mask': 'm', 'image': 'i'} and out[0].missed == ()


def test_pending_queue_is_bounded():
    """More waiting arrays than max_queue releases the oldest as a miss."""
    j = StampJoiner(10**12, max_queue=2)
    j.add_detections(1, 'a', now_ns=0)
    j.add_detections(2, 'b', now_ns=0)
    out = j.add_detections(3, 'c', now_ns=0)
    assert _names(out) == [('a', None, ('mask',))]
    assert j.waiting == 2 and j.stats()['overflow_released'] == 1


def test_side_buffer_is_bounded():
    """Unclaimed masks beyond max_queue drop the oldest and count it."""
    j = StampJoiner(MS, max_queue=3)
    for k in range(5):
        j.add_side('mask', k * 10**9, k, now_ns=0)
    assert j.stats()['mask_dropped'] == 2


def test_clock_going_back_expires_waiting_arrays():
    """Now going backwards (bag loop) releases what waits instead of stalling."""
    j = StampJoiner(50 * MS)
    j.add_detections(10**9, 'd', now_ns=10**9)
    assert _names(j.poll(0)) == [('d', None, ('mask',))]
    assert j.stats()['clock_jumps'] == 1


def test_stamps_jumping_back_still_join():
    """After a stamp jump back (bag restart) masks of the new epoch still join."""
    j = StampJoiner(50 * MS)
    j.add_side('mask', 10**9, 'm-old', now_ns=0)
    assert _names(j.add_detections(10**9, 'd-old', now_ns=0))[0][1] == 'm-old'
    j.add_side('mask', 0, 'm-new', now_ns=1)
    assert _names(j.add_detections(0, 'd-new', now_ns=2)) == [('d-new', 'm-new', ())]


def test_flush_releases_everything():
    """flush() releases every waiting array with misses counted."""
    j = StampJoiner(50 * MS)
    j.add_detections(0, 'a', now_ns=0)
    j.add_detections(1, 'b', now_ns=0)
    assert [x.detections for x in j.flush()] == ['a', 'b']
    assert j.waiting == 0 and j.stats()['mask_misses'] == 2


def test_same_calls_give_same_joins():
    """The release sequence is a function of the calls and their now values only."""
    import random

    def run():
        rnd = random.Random(4)
        j = StampJoiner(20 * MS, sides=('mask',))
        out = []
        for k in range(200):
            t = k * 33 * MS
            if rnd.random() < 0.8:
                out += j.add_side('mask', t + rnd.randint(-5, 5) * MS, k, now_ns=t)
            out += j.add_detections(t, k, now_ns=t + rnd.randint(0, 30) * MS)
            out += j.poll(t + 20 * MS)
        out += j.flush()
        return [(x.detections, x.sides['mask']) for x in out]

    first = run()
    assert first == run()
    assert [d for d, _ in first] == list(range(200))
    assert all(mk is None or mk == d for d, mk in first)


def test_unknown_side_rejected():
    """Adding a side the joiner does not wait for is an error."""
    with pytest.raises(KeyError):
        StampJoiner(0).add_side('image', 0, None, now_ns=0)


def test_arrival_feed_orders_batch_by_arrival():
    """A batch taken from several queues is fed in arrival order, each with its own "now"."""
    from assoc_logger_ros.messages.joiner import DETECTIONS, ArrivalFeed

    j = StampJoiner(50 * MS)
    feed = ArrivalFeed(j)
    # taken queue by queue (detections first), but the mask was received first
    out = feed.feed([(10 * MS, DETECTIONS, 100 * MS, 'd'), (5 * MS, 'mask', 100 * MS, 'm')])
    assert _names(out) == [('d', 'm', ())]


def test_arrival_feed_uses_arrival_not_feed_time():
    """A mask received before the deadline joins even when fed after it (the node ran late)."""
    from assoc_logger_ros.messages.joiner import DETECTIONS, ArrivalFeed

    feed = ArrivalFeed(StampJoiner(50 * MS))
    assert feed.feed([(0, DETECTIONS, 100 * MS, 'd')]) == []
    # the timer fires at 200 ms; it first feeds what was received (the mask, at 40 ms)
    out = feed.feed([(40 * MS, 'mask', 100 * MS, 'm')]) + feed.poll(200 * MS)
    assert _names(out) == [('d', 'm', ())]


def test_arrival_feed_same_decisions_as_direct_calls():
    """Feeding in batches gives the replay's decisions (direct calls in arrival order)."""
    import random

    from assoc_logger_ros.messages.joiner import DETECTIONS, ArrivalFeed

    rng = random.Random(3)
    events = []
    for k in range(60):
        t = k * 33 * MS
        events.append((t + rng.randint(0, 5) * MS, DETECTIONS, t, f'd{k}'))
        if rng.random() < 0.8:
            events.append((t + rng.randint(-10, 70) * MS, 'mask', t, f'm{k}'))
    events.sort(key=lambda e: e[0])
    direct = StampJoiner(50 * MS)
    expected = []
    for arrival, kind, stamp, payload in events:
        add = (direct.add_detections if kind == DETECTIONS else
               lambda s, p, n: direct.add_side('mask', s, p, n))
        expected += add(stamp, payload, arrival)
    expected += direct.flush()
    feed = ArrivalFeed(StampJoiner(50 * MS))
    got, i = [], 0
    while i < len(events):          # batches of 1-4 messages, taken queue by queue
        batch = events[i:i + rng.randint(1, 4)]
        i += len(batch)
        masks_first = rng.random() < 0.5
        got += feed.feed(sorted(batch, key=lambda e: (e[1] == DETECTIONS) == masks_first))
        got += feed.poll(batch[-1][0])
    got += feed.joiner.flush()
    assert _names(got) == _names(expected)


def test_arrival_feed_step_back_is_not_a_clock_jump_until_reset():
    """Out-of-order arrivals across batches never release what waits; after reset() they do."""
    from assoc_logger_ros.messages.joiner import DETECTIONS, ArrivalFeed

    j = StampJoiner(50 * MS)
    feed = ArrivalFeed(j)
    feed.feed([(20 * MS, DETECTIONS, 100 * MS, 'd')])
    assert feed.feed([(-5 * 10**9, 'mask', 300 * MS, 'x')]) == []
    assert j.waiting == 1 and j.stats()['clock_jumps'] == 0
    feed.reset()
    assert _names(feed.feed([(-5 * 10**9, 'mask', 0, 'y')])) == [('d', None, ('mask',))]
    assert j.stats()['clock_jumps'] == 1


def test_arrival_feed_keeps_queue_order():
    """A detection array received late (retransmitted) still goes before its successors.

    The middleware hands out one queue's messages in order, so the successors' earlier
    receive times must not move them ahead of it (stamps would go backwards).
    """
    from assoc_logger_ros.messages.joiner import DETECTIONS, ArrivalFeed

    feed = ArrivalFeed(StampJoiner(50 * MS))
    out = feed.feed([(500 * MS, DETECTIONS, 100 * MS, 'd0'),      # retransmitted: late
                     (140 * MS, DETECTIONS, 133 * MS, 'd1'),
                     (170 * MS, DETECTIONS, 166 * MS, 'd2'),
                     (160 * MS, 'mask', 100 * MS, 'm0'),
                     (165 * MS, 'mask', 133 * MS, 'm1'),
                     (170 * MS, 'mask', 166 * MS, 'm2')])
    assert _names(out) == [('d0', 'm0', ()), ('d1', 'm1', ()), ('d2', 'm2', ())]
