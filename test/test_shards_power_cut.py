"""A power cut while a shard is open: what was fsynced survives, finished shards read back.

A power cut loses what the page cache had not written: the open ``shard-N.tar.part`` ends
anywhere after its last fsync, possibly followed by zeroed blocks (allocated but never
written) or by garbage. Every such file is built here from a real writing session (a copy of
the directory taken while the sink is still open, never closed) and then recovered the way the
next recorder start does (``sink.recover``).
"""

from __future__ import annotations

import os
from pathlib import Path
import shutil

import numpy as np
import pytest

from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.npzfile import encode
from assoc_logger_ros.recording.sample import build
from assoc_logger_ros.recording.schema import sample_name
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.shards import layout
from assoc_logger_ros.shards.sink import ShardSink, ensure_marker, recover
from assoc_logger_ros.shards.source import ShardSource
from assoc_logger_ros.shards.stream import iter_samples


def _block(n: int) -> int:
    return n + (-n % 512)


@pytest.fixture(scope='module')
def crashed(tmp_path_factory):
    """(directory, samples, open-shard entries, size at the last fsync, size written).

    Written with fsync at most by hand (``sync_period_s`` an hour): finished shards, then an
    open one with 9 samples of which the first 5 were fsynced.
    """
    root = tmp_path_factory.mktemp('powercut')
    d = root / 'rec'
    d.mkdir()
    ensure_marker(d)
    samples: dict[str, bytes] = {}
    sink = ShardSink(d, shard_bytes=60_000, sync_period_s=3600.0)

    def append(i: int) -> None:
        arrays = build(make_snapshot(6, 7, seed=i, frame_idx=i, embed_dim=16), 'cut',
                       {'source': 'test'}, 16).arrays
        npz = encode(arrays)
        rec = manifest.record_from_arrays(arrays, sample_name(i), len(npz))
        key = layout.sample_key('cut', i, i)
        sink.append(key, npz, manifest.dumps(rec).rstrip('\n').encode(), rec)
        samples[key] = npz

    i = 0
    while len(sink.finished) < 2:
        append(i)
        i += 1
    sink.finish()
    sink.shard_bytes = 1 << 30        # the next shard stays open
    for j in range(9):
        if j == 5:
            sink.sync()
            synced = sink.open_bytes
        append(i)
        i += 1
    entries = list(sink._entries)
    written = sink.open_bytes
    snapshot = root / 'at-cut'
    shutil.copytree(d, snapshot)   # the disk as the sink left it, the part still open
    os.close(sink._fd)             # no finish(): the process is gone
    return snapshot, samples, entries, synced, written


def _cut(src: Path, dst: Path, offset: int, tail: str, written: int) -> Path:
    shutil.copytree(src, dst)
    part = dst / layout.list_shards(dst)[1][0]
    with open(part, 'r+b') as fh:
        fh.truncate(offset)
        if tail == 'zeros':
            fh.truncate(written)
        elif tail == 'garbage':
            fh.seek(offset)
            fh.write(np.random.default_rng(offset).bytes(written - offset))
    return dst


def _offsets(entries, synced: int, written: int) -> list[int]:
    """Cut points from the last fsync to the end: at, inside and just past every member."""
    out = {synced, written}
    for e in entries:
        for x in (e.offset - 512, e.offset - 1, e.offset, e.offset + e.size // 2,
                  e.offset + e.size, e.json_offset, e.json_offset + e.json_size,
                  e.json_offset + _block(e.json_size) - 1, e.json_offset + _block(e.json_size)):
            if synced <= x <= written:
                out.add(x)
    return sorted(out)


@pytest.mark.parametrize('tail', ['none', 'zeros', 'garbage'])
def test_power_cut_anywhere_after_the_last_fsync(crashed, tmp_path, tail):
    """Finished shards read back whole; the open one keeps every complete sample up to the cut.

    Every sample whose two members reached the disk is kept, byte for byte; so at least the
    samples fsynced before the cut, at most the unsynced tail is lost.
    """
    snapshot, samples, entries, synced, written = crashed
    ends = [e.json_offset + _block(e.json_size) for e in entries]
    n_synced = sum(1 for x in ends if x <= synced)
    assert n_synced == 5 and written == ends[-1]
    finished = layout.list_shards(snapshot)[0]
    before = sum(1 for _ in iter_samples(snapshot))
    offsets = _offsets(entries, synced, written)
    assert len(offsets) > 30
    for n, off in enumerate(offsets):
        d = _cut(snapshot, tmp_path / f'c{n}', off, tail, written)
        recover(d)
        done, parts = layout.list_shards(d)
        assert parts == [] and done[:len(finished)] == finished
        src = ShardSource(d)
        assert not src.problems
        for rec in src.records:          # every sample byte-identical to what was written
            assert src.read_bytes(rec) == samples[src.key(rec)]
        kept = len(src.records) - before
        # complete: both members' bytes reached the disk (and, when the file ends at the
        # cut, their padding too: a tar member must fill its last block)
        complete = sum(1 for e, x in zip(entries, ends)
                       if (x if tail == 'none' else e.json_offset + e.json_size) <= off)
        assert kept == complete >= n_synced, (off, tail)
        keys = [k for k, _ in iter_samples(d, with_key=True)]
        assert keys == [src.key(r) for r in src.records]   # plain readers agree
        shutil.rmtree(d)
