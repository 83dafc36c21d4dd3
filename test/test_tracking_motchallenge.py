"""MOT file I/O, the mot command, and a MOT17 sanity check on real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from assoc_logger_ros import motchallenge as mc
from assoc_logger_ros.cli import main as cli_main
from assoc_logger_ros.commands.mot import track_sequence
from assoc_logger_ros.config import TrackerConfig
from assoc_logger_ros.tracking.matching import iou_matrix

SEQINFO = """[Sequence]
name=TOY-01
imDir=img1
frameRate=10
seqLength=6
imWidth=640
imHeight=480
imExt=.jpg
"""


def _toy(tmp_path: Path) -> Path:
    seq = tmp_path / 'TOY-01'
    (seq / 'det').mkdir(parents=True)
    (seq / 'seqinfo.ini').write_text(SEQINFO)
    lines = []
    for f in range(1, 7):
        if f == 4:
            continue                                   # a frame without detections
        lines.append(f'{f},-1,{10 + 5 * f},20,40,100,0.9,-1,-1,-1')
        lines.append(f'{f},-1,300,200,50,120,0.8,-1,-1,-1')
    (seq / 'det' / 'det.txt').write_text('\n'.join(reversed(lines)) + '\n')
    return seq


def test_read_seqinfo_and_detections(tmp_path):
    """Seqinfo fields are parsed; detections are grouped per frame as xyxy + score."""
    seq = _toy(tmp_path)
    info = mc.read_seqinfo(seq)
    assert (info.frame_rate, info.seq_length, info.width, info.height) == (10.0, 6, 640, 480)
    assert info.half_val_first == 5
    dets = mc.read_detections(seq / 'det' / 'det.txt')
    assert sorted(dets) == [1, 2, 3, 5, 6]
    np.testing.assert_allclose(dets[1][:, :4], [[300, 200, 350, 320], [15, 20, 55, 120]])
    np.testing.assert_allclose(dets[1][:, 4], [0.8, 0.9])


def test_read_seqinfo_errors_name_the_problem(tmp_path):
    """A missing file or key gives a ValueError naming it."""
    with pytest.raises(ValueError, match='not found'):
        mc.read_seqinfo(tmp_path)
    (tmp_path / 'seqinfo.ini').write_text('[Sequence]\nname=x\nframeRate=30\n')
    with pytest.raises(ValueError, match='seqLength'):
        mc.read_seqinfo(tmp_path)


def test_iter_frames_stamps_and_empty_frames(tmp_path):
    """One Frame per frame number, stamp = frame / frameRate, empty frames included."""
    seq = _toy(tmp_path)
    frames = list(mc.iter_frames(seq, seq / 'det' / 'det.txt', first_frame=2))
    assert [f.frame_idx for f in frames] == [2, 3, 4, 5, 6]
    assert [f.stamp_ns for f in frames] == [200_000_000, 300_000_000, 400_000_000,
                                            500_000_000, 600_000_000]
    assert len(frames[2]) == 0 and len(frames[0]) == 2


def test_gt_trim_renumbers():
    """trim_gt keeps first..last and renumbers first -> 1."""
    rows = np.array([[f, 1, 0, 0, 10, 10, 1, 1, 1] for f in range(1, 11)], float)
    out = mc.trim_gt(rows, 6, 10)
    assert out[:, 0].tolist() == [1, 2, 3, 4, 5]


def test_output_filter_and_result_file(tmp_path):
    """Reference filter drops tiny and wide boxes; results round-trip through the file."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 5, 30], [0, 0, 40, 20], [0, 0, 20, 40]], float)
    assert mc.reference_output_filter(boxes).tolist() == [False, True, False, True]
    rows = mc.result_rows(7, np.array([3, 4]), boxes[[1, 3]], np.array([0.5, 0.25]))
    path = tmp_path / 'r.txt'
    assert mc.write_results(path, [rows]) == 2
    assert path.read_text().splitlines()[0] == '7,3,0.00,0.00,5.00,30.00,0.50,-1,-1,-1'


def test_mot_command_writes_results(tmp_path, capsys):
    """`mot SEQ --det --out` tracks the sequence; tracker flags come from the schema."""
    seq = _toy(tmp_path)
    out = tmp_path / 'res' / 'TOY-01.txt'
    rc = cli_main(['mot', str(seq), '--det', str(seq / 'det' / 'det.txt'), '--out', str(out),
                   '--track-thresh', '0.5', '--frame-mode'])
    assert rc == 0
    rows = np.loadtxt(out, delimiter=',', ndmin=2)
    assert set(rows[:, 1].astype(int).tolist()) == {1, 2}
    assert 'TOY-01' in capsys.readouterr().out


def test_mot_command_rejects_out_of_range_flag(tmp_path):
    """A tracker flag outside its schema range is refused by argparse (exit 2)."""
    seq = _toy(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli_main(['mot', str(seq), '--det', str(seq / 'det' / 'det.txt'), '--out',
                  str(tmp_path / 'x.txt'), '--match-thresh', '2'])
    assert exc.value.code == 2


def clear_mota(gt: np.ndarray, res: np.ndarray) -> tuple[float, int]:
    """Minimal CLEAR MOT (pedestrians with conf 1, IoU >= 0.5, keep previous matches)."""
    gt = gt[(gt[:, 6] == 1) & (gt[:, 7] == 1)]
    fp = fn = idsw = 0
    last: dict[int, int] = {}
    for f in np.unique(np.r_[gt[:, 0], res[:, 0]]):
        g, r = gt[gt[:, 0] == f], res[res[:, 0] == f]
        gb = np.c_[g[:, 2:4], g[:, 2:4] + g[:, 4:6]]
        rb = np.c_[r[:, 2:4], r[:, 2:4] + r[:, 4:6]]
        iou = iou_matrix(gb, rb)
        cost = 1 - iou
        for i, gid in enumerate(g[:, 1]):            # favour continuing matches
            prev = last.get(int(gid))
            cost[i, r[:, 1] == prev] -= 10.0
        cost[iou < 0.5] = 1e6
        gi, ri = linear_sum_assignment(cost) if cost.size else ([], [])
        ok = [(a, b) for a, b in zip(gi, ri) if iou[a, b] >= 0.5]
        for a, b in ok:
            gid, rid = int(g[a, 1]), int(r[b, 1])
            if gid in last and last[gid] != rid:
                idsw += 1
            last[gid] = rid
        fn += len(g) - len(ok)
        fp += len(r) - len(ok)
    return 1.0 - (fp + fn + idsw) / len(gt), idsw


def _bench_data() -> Path:
    env = os.environ.get('ASSOC_BENCH_DATA')
    root = Path(__file__).resolve().parents[1].parent
    return Path(env) if env else root / 'shared' / 'bench-data'


@pytest.mark.bench_data
def test_mot17_05_half_val_mota_is_sane():
    """MOT17-05 second half (418 frames, YOLOX dets): MOTA > 0.7 and few ID switches.

    The official code scores 76-77 % MOTA here; a broken association or Kalman drops far below.
    """
    seq = _bench_data() / 'MOT17' / 'train' / 'MOT17-05'
    if not (seq / 'det' / 'yolox_x_ablation.txt').is_file():
        pytest.skip(f'bench data not found at {seq} (set ASSOC_BENCH_DATA)')
    info = mc.read_seqinfo(seq)
    first = info.half_val_first
    run = track_sequence(seq, seq / 'det' / 'yolox_x_ablation.txt', TrackerConfig(),
                         first_frame=first)
    gt = mc.read_gt(seq / 'gt' / 'gt.txt')
    gt = gt[gt[:, 0] >= first]
    mota, idsw = clear_mota(gt, run.rows)
    assert mota > 0.70
    assert idsw < 60
