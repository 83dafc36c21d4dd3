"""The recorder behind the real tracker: valid, reproducible samples; limits spare tracking."""

from __future__ import annotations

from pathlib import Path

import pytest

from assoc_logger_ros.config import resolve
from assoc_logger_ros.dataset.summary import summarize
from assoc_logger_ros.recording import manifest

pipeline = pytest.importorskip('assoc_logger_ros.pipeline', reason='tracker not available')
scene = pytest.importorskip('assoc_logger_ros.sim.scene', reason='scene generator not available')


@pytest.fixture(scope='module')
def frames():
    return scene.generate_scene(scene.SceneConfig(seed=3, num_frames=60, num_walkers=12)
                                ).to_frames()


def _run(frames, out: Path, **settings) -> tuple[pipeline.Pipeline, int, list[str]]:
    s = resolve({'log_dir': str(out), 'log_min_free_mb': 0.0, 'log_embed_dim': 32,
                 'log_wait_when_full': True, **settings}, env={})
    warnings: list[str] = []
    p = pipeline.Pipeline(s, session_id='scene3', warn=warnings.append, source='test')
    logged = 0
    for f in frames:
        snap = p.process(f)
        logged += snap.num_tracks > 0 and snap.num_detections > 0
    p.close()
    return p, logged, warnings


def test_tracker_samples_are_valid_and_complete(frames, tmp_path):
    """Every frame with tracks and detections gives one valid sample; none dropped."""
    p, logged, _ = _run(frames, tmp_path / 'a')
    stats = summarize(tmp_path / 'a', embed_cap=32)
    assert stats['error_count'] == 0, stats['errors']
    assert stats['samples'] == logged > 0
    assert p.stats()['writer_dropped_queue_full'] == 0
    assert stats['samples_with_gt'] == logged


def test_replaying_twice_is_byte_identical(frames, tmp_path):
    """The same frames through two pipelines give identical sample files and manifests."""
    _run(frames, tmp_path / 'a')
    _run(frames, tmp_path / 'b')
    names = sorted(x.name for x in (tmp_path / 'a').iterdir())
    assert names == sorted(x.name for x in (tmp_path / 'b').iterdir())
    for name in names:
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes(), name


def test_byte_limit_keeps_tracking(frames, tmp_path):
    """With a tiny log_max_bytes the tracker processes every frame; writing stops once."""
    p, _, warnings = _run(frames, tmp_path / 'a', log_max_bytes=40_000)
    st = p.stats()
    assert st['frames'] == len(frames)
    assert st['writer_stopped_reason'] and 'log_max_bytes' in st['writer_stopped_reason']
    assert sum('sample logging stopped' in w for w in warnings) == 1
    recs = manifest.read_records(tmp_path / 'a')
    assert 0 < len(recs) and sum(r['bytes'] for r in recs) <= 40_000
    assert summarize(tmp_path / 'a')['error_count'] == 0
