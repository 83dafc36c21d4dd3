"""The eval command: half-val trimming/renumbering and TrackEval scoring (needs trackeval)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assoc_logger_ros import motchallenge as mc
from assoc_logger_ros.commands.evaluate import evaluate, format_table

SEQINFO = """[Sequence]
name={name}
imDir=img1
frameRate=10
seqLength=10
imWidth=640
imHeight=480
imExt=.jpg
"""


def _sequence(root: Path, name: str) -> np.ndarray:
    """Two pedestrians over 10 frames; returns the GT rows."""
    seq = root / name
    (seq / 'gt').mkdir(parents=True)
    (seq / 'seqinfo.ini').write_text(SEQINFO.format(name=name))
    rows = []
    for f in range(1, 11):
        rows.append([f, 1, 10 + 3 * f, 20, 40, 100, 1, 1, 1.0])
        rows.append([f, 2, 300, 200 - 2 * f, 50, 120, 1, 1, 1.0])
    gt = np.array(rows)
    mc.write_results(seq / 'gt' / 'gt.txt', gt[:, :7])
    text = (seq / 'gt' / 'gt.txt').read_text().replace(',-1,-1,-1', ',1,1')
    (seq / 'gt' / 'gt.txt').write_text(text)
    return gt


def test_perfect_results_score_100_and_half_val_trims(tmp_path):
    """GT as results scores 100; a switch inside the scored half costs IDSW, one outside not."""
    pytest.importorskip('trackeval')
    gt = _sequence(tmp_path / 'gt', 'TOY-01')
    res = tmp_path / 'res'
    perfect = gt[:, :7].copy()
    mc.write_results(res / 'perfect' / 'TOY-01.txt', perfect)
    switched = perfect.copy()
    switched[(switched[:, 0] >= 9) & (switched[:, 1] == 1), 1] = 5   # switch at frame 9
    mc.write_results(res / 'switched' / 'TOY-01.txt', switched)
    early = perfect.copy()
    early[(early[:, 0] <= 3) & (early[:, 1] == 1), 1] = 5             # differs only early
    mc.write_results(res / 'early' / 'TOY-01.txt', early)
    scores = evaluate(tmp_path / 'gt', {'perfect': res / 'perfect', 'switched': res / 'switched',
                                        'early': res / 'early'}, ['TOY-01'], half_val=True)
    assert scores['perfect']['COMBINED']['MOTA'] == pytest.approx(100.0)
    assert scores['perfect']['COMBINED']['HOTA'] == pytest.approx(100.0)
    assert scores['switched']['COMBINED']['IDSW'] == 1
    assert scores['early']['COMBINED']['IDSW'] == 0          # frames 1..6 are not scored
    assert '| perfect |' in format_table(scores)
