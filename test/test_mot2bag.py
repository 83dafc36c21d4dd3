"""MOTChallenge sequence -> rosbag2: one Detection2DArray per frame, ground truth on /gt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assoc_logger_ros import cli
from assoc_logger_ros.bag import bagio
from assoc_logger_ros.bag.replay import replay_bag
from assoc_logger_ros.config import resolve
from assoc_logger_ros.messages.cdr import decode_detection_array
from assoc_logger_ros.recording.npzfile import load

# frame, id, x, y, w, h, score: frame 3 has no detection
DETS = [
    (1, -1, 10, 20, 30, 60, 0.9), (1, -1, 100, 20, 30, 60, 0.8),
    (2, -1, 12, 21, 30, 60, 0.85), (2, -1, 103, 20, 30, 60, 0.3),
    (4, -1, 16, 22, 30, 60, 0.95),
]
# frame, id, x, y, w, h, conf, class, visibility: id 9 is a distractor (class 8), id 4 ignored
GT = [
    (1, 1, 10, 20, 30, 60, 1, 1, 1.0), (1, 2, 100, 20, 30, 60, 1, 1, 0.8),
    (1, 9, 200, 20, 30, 60, 1, 8, 1.0), (1, 4, 300, 20, 30, 60, 0, 1, 1.0),
    (2, 1, 12, 21, 30, 60, 1, 1, 1.0), (2, 2, 103, 20, 30, 60, 1, 1, 0.5),
    (4, 1, 16, 22, 30, 60, 1, 1, 1.0),
]


@pytest.fixture
def seq(tmp_path: Path) -> Path:
    """A four-frame MOT sequence at 10 fps written by the test."""
    d = tmp_path / 'TINY-01'
    (d / 'det').mkdir(parents=True)
    (d / 'gt').mkdir()
    (d / 'seqinfo.ini').write_text('[Sequence]\nname=TINY-01\nimDir=img1\nframeRate=10\n'
                                   'seqLength=4\nimWidth=640\nimHeight=480\nimExt=.jpg\n')
    (d / 'det' / 'det.txt').write_text(''.join(
        ','.join(str(v) for v in row) + ',-1,-1,-1\n' for row in DETS))
    (d / 'gt' / 'gt.txt').write_text(''.join(
        ','.join(str(v) for v in row) + '\n' for row in GT))
    return d


def _convert(seq: Path, out: Path, *extra: str) -> int:
    return cli.main(['mot2bag', str(seq), '--det', str(seq / 'det' / 'det.txt'),
                     '--out', str(out), *extra])


def test_one_message_per_frame_stamped_by_frame_rate(seq, tmp_path):
    """Every frame 1..seqLength gives a message (empty when no detection) at frame / fps."""
    assert _convert(seq, tmp_path / 'bag') == 0
    msgs = list(bagio.read_messages(tmp_path / 'bag', topics=['/detections']))
    assert [m[0] for m in msgs] == ['/detections'] * 4
    assert [t for _, t, _ in msgs] == [100_000_000, 200_000_000, 300_000_000, 400_000_000]
    assert [bagio.stamp_ns(m) for _, _, m in msgs] == [t for _, t, _ in msgs]
    assert [len(m.detections) for _, _, m in msgs] == [2, 2, 0, 1]


def test_boxes_scores_and_class_survive(seq, tmp_path):
    """MOT x, y, w, h and score come back as the message's box and hypothesis."""
    _convert(seq, tmp_path / 'bag')
    with bagio.open_reader(tmp_path / 'bag') as reader:
        conns = [c for c in reader.connections if c.topic == '/detections']
        raw = next(iter(reader.messages(connections=conns)))[2]
    data = decode_detection_array(raw)
    np.testing.assert_allclose(data.bbox[:, [0, 1, 3, 4]], [[25, 50, 30, 60], [115, 50, 30, 60]])
    np.testing.assert_allclose(data.result_scores, [0.9, 0.8])
    assert data.result_class_ids.tolist() == ['0', '0']


def test_with_gt_writes_only_evaluated_pedestrians(seq, tmp_path):
    """/gt carries conf-1, class-1 rows with their identity; distractors and ignored rows not."""
    assert _convert(seq, tmp_path / 'bag', '--with-gt', '--storage', 'sqlite3') == 0
    gt = [(t, bagio.gt_arrays(m)) for topic, t, m in bagio.read_messages(tmp_path / 'bag')
          if topic == '/gt']
    assert [ids.tolist() for _, (_, ids) in gt] == [[1, 2], [1, 2], [], [1]]
    np.testing.assert_allclose(gt[0][1][0], [[10, 20, 40, 80], [100, 20, 130, 80]])


def test_replay_labels_detections_with_gt_ids(seq, tmp_path):
    """Replaying the converted bag fills det_gt_ids by IoU with the /gt boxes."""
    _convert(seq, tmp_path / 'bag', '--with-gt')
    result = replay_bag(tmp_path / 'bag', resolve(
        {'log_dir': str(tmp_path / 'log'), 'image_width': 640, 'image_height': 480}, env={}))
    assert result.gt_frames == 4
    labelled = {}
    for line in (tmp_path / 'log' / 'manifest.jsonl').read_text().splitlines():
        s = load(tmp_path / 'log' / json.loads(line)['npz'])
        labelled[int(s['stamp_ns'])] = s['det_gt_ids'][np.argsort(s['det_source_index'])]
    assert labelled[200_000_000].tolist() == [1, 2]


def test_image_size_travels_on_camera_info(seq, tmp_path):
    """The bag carries seqinfo's 640x480 once on /camera_info; replay normalises by it."""
    _convert(seq, tmp_path / 'bag')
    infos = list(bagio.read_messages(tmp_path / 'bag', topics=['/camera_info']))
    assert [(m.width, m.height) for _, _, m in infos] == [(640, 480)]
    replay_bag(tmp_path / 'bag', resolve({'log_dir': str(tmp_path / 'log')}, env={}))
    for line in (tmp_path / 'log' / 'manifest.jsonl').read_text().splitlines():
        s = load(tmp_path / 'log' / json.loads(line)['npz'])
        meta = json.loads(str(s['metadata']))
        assert (meta['width'], meta['height'], meta['camera_info']) == (640, 480, '640x480')
        np.testing.assert_allclose(s['det_features'][:, 2], s['det_boxes'][:, 2] / 640,
                                   rtol=1e-6)


def test_refuses_to_overwrite(seq, tmp_path, capsys):
    """An existing output path is an error, not overwritten."""
    (tmp_path / 'bag').mkdir()
    assert _convert(seq, tmp_path / 'bag') == 1
    assert 'refusing to overwrite' in capsys.readouterr().err


def test_with_gt_without_gt_file_fails_clearly(seq, tmp_path, capsys):
    """--with-gt on a sequence without gt/gt.txt names the missing file."""
    (seq / 'gt' / 'gt.txt').unlink()
    assert _convert(seq, tmp_path / 'bag', '--with-gt') == 1
    assert 'gt.txt' in capsys.readouterr().err


@pytest.mark.bench_data
@pytest.mark.slow
def test_mot17_04_replay_equals_direct_tracking(bench_data, tmp_path):
    """MOT17-04, 150 frames: mot2bag + replay decides as the pipeline fed the MOT files.

    Decisions are identical; boxes and costs equal up to float rounding (Detection2D stores
    center + size, so x2 = cx + w/2 may differ in the last bit). And most confident detections
    get a ground-truth id.
    """
    from assoc_logger_ros import motchallenge as mot
    from assoc_logger_ros.pipeline import Pipeline

    seq = bench_data / 'MOT17' / 'train' / 'MOT17-04'
    det = seq / 'det' / 'yolox_x_ablation.txt'
    if not det.is_file():
        pytest.skip(f'{det} not found')
    assert cli.main(['mot2bag', str(seq), '--det', str(det), '--out', str(tmp_path / 'bag'),
                     '--with-gt', '--last-frame', '150']) == 0
    values = {'image_width': 1920, 'image_height': 1080, 'session_id': 's'}
    replay_bag(tmp_path / 'bag', resolve({**values, 'log_dir': str(tmp_path / 'r')}, env={}))
    direct = Pipeline(resolve({**values, 'log_dir': str(tmp_path / 'd'),
                               'log_queue_size': 1000}, env={}))  # never drop
    for frame in mot.iter_frames(seq, det, last_frame=150):
        direct.process(frame)
    direct.close()
    names = sorted(p.name for p in (tmp_path / 'd').glob('sample_*.npz'))
    assert len(names) == 149
    labelled = total = 0
    for name in names:
        a, b = load(tmp_path / 'r' / name), load(tmp_path / 'd' / name)
        for key in ('stamp_ns', 'track_ids', 'match_stage', 'assigned_track_ids',
                    'new_track_ids'):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f'{name}:{key}')
        # boxes travel as center + size in Detection2D: equal up to float rounding
        for key in ('track_boxes', 'det_boxes', 'cost_matrix', 'track_features',
                    'det_features'):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-9,
                                       err_msg=f'{name}:{key}')
        confident = a['det_scores'] >= 0.5
        labelled += int((a['det_gt_ids'][confident] >= 0).sum())
        total += int(confident.sum())
    assert labelled / total > 0.8
