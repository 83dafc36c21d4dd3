"""Our samples feed seed-schema training code unchanged; train_assoc.py --inspect works."""

from __future__ import annotations

import importlib.util
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.writer import SampleWriter

TRAINING = Path(__file__).resolve().parents[1] / 'training'


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, TRAINING / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def data(tmp_path):
    snaps = [make_snapshot(5, 7, seed=i, frame_idx=i, embed_dim=300) for i in range(4)]
    with SampleWriter(tmp_path / 'logs', RecorderConfig(log_min_free_mb=0.0,
                                                        log_embed_dim=256)) as w:
        for s in snaps:
            w.submit(s, 'sess', {'source': 'test'})
    return tmp_path / 'logs', snaps


def test_seed_loader_reads_our_samples(data):
    """Seed training code gets fixed-width inputs and labels pointing at the right tracks."""
    d, snaps = data
    ds = _module('seed_loader').SeedAssocDataset(d)
    assert len(ds) == 4
    for i, snap in enumerate(snaps):
        item = ds[i]
        assert item['track_x'].shape == (5, 10 + 256)
        assert item['det_x'].shape == (7, 8 + 256)
        assert item['num_detections'] == 7 and item['frame_idx'] == i
        labels = item['labels']
        matched = labels >= 0
        np.testing.assert_array_equal(snap.track_ids[labels[matched]],
                                      snap.assigned_track_ids[matched])
        assert (snap.assigned_track_ids[~matched] == -1).all()
        assert item['image_size'] == (1920, 1080) and item['fps'] == 30.0
    assert ds.matched_pairs() == sum(s.matched_pairs for s in snaps)


def test_train_assoc_inspect_runs(data):
    """Python training/train_assoc.py --data DIR --inspect prints stats and exits 0."""
    d, _ = data
    res = subprocess.run([sys.executable, str(TRAINING / 'train_assoc.py'), '--data', str(d),
                          '--inspect'], capture_output=True, text=True, timeout=120,
                         cwd=d.parent)
    assert res.returncode == 0, res.stderr
    assert 'samples:          4' in res.stdout
    assert 'truncated in 4 samples' in res.stdout
    assert '0 invalid' in res.stdout


def test_train_assoc_inspect_fails_on_invalid(data):
    """An invalid sample makes --inspect exit 1."""
    d, _ = data
    (d / 'sample_0000001.npz').write_bytes(b'broken')
    assert _module('train_assoc').main(['--data', str(d), '--inspect']) == 1
