"""Dataset tools: inspect/validate statistics, filter, prune, merge, report and their commands."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from assoc_logger_ros import cli
from assoc_logger_ros.config import RecorderConfig
from assoc_logger_ros.dataset.ops import filter_dataset, merge_datasets, prune_dataset
from assoc_logger_ros.dataset.plots import report
from assoc_logger_ros.dataset.select import Criteria
from assoc_logger_ros.dataset.store import DatasetError
from assoc_logger_ros.dataset.summary import summarize
from assoc_logger_ros.recording import manifest
from assoc_logger_ros.recording.synthetic import make_snapshot
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.recording.writer import SampleWriter

CFG = RecorderConfig(log_min_free_mb=0.0, log_embed_dim=16)


def make_dir(d: Path, n: int = 12, sessions: tuple[str, ...] = ('A', 'B'),
             switch_every: int = 4) -> Path:
    """N samples split over sessions; est_id_switches grows by one every switch_every."""
    with SampleWriter(d, CFG) as w:
        per = n // len(sessions)
        for i in range(n):
            k = i % per
            w.submit(make_snapshot(6, 7, seed=i, frame_idx=k, embed_dim=8, gt=i % 2 == 0,
                                   est_id_switches=k // switch_every,
                                   stamp_ns=10**18 + i * 10**8),
                     sessions[min(i // per, len(sessions) - 1)], {'source': 'test'})
    return d


def run_command(name: str, *argv: str) -> int:
    """``python -m assoc_logger_ros NAME ARGV...`` in this process; its exit status."""
    return cli.main([name, *argv])


@pytest.fixture
def data(tmp_path):
    return make_dir(tmp_path / 'logs')


def test_summary_counts_match_manifest(data):
    """Inspect's numbers agree with the manifest and the files; no errors on a clean dir."""
    s = summarize(data)
    recs = manifest.read_records(data)
    assert s['samples'] == len(recs) == 12
    assert s['matched_pairs'] == sum(r['matched_pairs'] for r in recs)
    assert s['widths']['track_features'] == [10] and s['widths']['det_features'] == [8]
    assert s['widths']['embed_dim'] == [16] and s['widths']['det_embed_dim'] == [8]
    assert s['tracks_per_sample'] == {'min': 6, 'median': 6.0, 'max': 6}
    assert set(s['sessions']) == {'A', 'B'}
    assert s['seed_target']['status'] == 'below'
    assert s['samples_with_gt'] == 6
    assert s['error_count'] == 0 and s['invalid_samples'] == 0


def test_summary_reports_broken_files(data):
    """A damaged sample, an unlisted file and a torn manifest line all show up as errors."""
    (data / 'sample_0000003.npz').write_bytes(b'garbage')
    (data / 'sample_0000099.npz').write_bytes(b'garbage')
    with open(data / 'manifest.jsonl', 'a') as fh:
        fh.write('{"npz": "sample_00')
    s = summarize(data)
    text = '\n'.join(s['errors'])
    assert 'sample_0000003.npz' in text and 'sample_0000099.npz' in text and 'torn' in text
    assert s['invalid_samples'] == 1


def test_validate_command_exit_status(data, tmp_path, capsys):
    """Validate exits 0 when clean, 1 on an invalid sample, 2 when DIR is not a dataset."""
    assert run_command('validate', str(data)) == 0
    (data / 'sample_0000000.npz').write_bytes(b'x')
    assert run_command('validate', str(data)) == 1
    assert 'sample_0000000.npz' in capsys.readouterr().out
    assert run_command('validate', str(tmp_path / 'nothing')) == 2


def test_inspect_json_is_machine_readable(data, capsys):
    """Inspect --json prints one JSON object with the statistics."""
    assert run_command('inspect', str(data), '--json') == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats['samples'] == 12 and 'matched_pairs' in stats


def test_filter_selects_and_hard_links(data, tmp_path):
    """Filter keeps exactly the passing samples, as hard links, with a valid manifest."""
    res = filter_dataset(data, tmp_path / 'out', Criteria(max_switches=0, sessions=('A',)))
    recs = manifest.read_records(tmp_path / 'out')
    src = {r['npz']: r for r in manifest.read_records(data)}
    want = [n for n, r in src.items() if r['session'] == 'A' and r['est_id_switches'] == 0]
    assert [r['npz'] for r in recs] == want and res['selected'] == len(want) > 0
    for r in recs:
        assert r == src[r['npz']]
        assert os.stat(tmp_path / 'out' / r['npz']).st_ino == os.stat(data / r['npz']).st_ino
    assert summarize(tmp_path / 'out')['error_count'] == 0


def test_filter_copies_when_linking_fails(data, tmp_path, monkeypatch):
    """Across filesystems (EXDEV) samples are copied instead of linked."""
    def no_link(src, dst, **kwargs):
        raise OSError(errno.EXDEV, 'Invalid cross-device link')

    monkeypatch.setattr(os, 'link', no_link)
    res = filter_dataset(data, tmp_path / 'out', Criteria())
    assert res['copied'] == 12 and res['linked'] == 0
    assert summarize(tmp_path / 'out')['error_count'] == 0


def test_filter_refuses_to_overwrite(data, tmp_path):
    """A non-empty output directory is an error, not merged into."""
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'x').write_text('x')
    with pytest.raises(DatasetError, match='refusing to overwrite'):
        filter_dataset(data, tmp_path / 'out', Criteria())


def test_session_switch_limit_drops_whole_sessions(tmp_path):
    """--max-session-switches removes every sample of a session over the limit."""
    d = make_dir(tmp_path / 'd', n=12, sessions=('calm', 'wild'), switch_every=2)
    res = filter_dataset(d, tmp_path / 'out', Criteria(max_session_switches=2))
    # each session has 6 samples with cumulative switches 0,0,1,1,2,2 -> 2 switches: kept
    assert res['selected'] == 12
    res = filter_dataset(d, tmp_path / 'out2', Criteria(max_session_switches=1))
    assert res['selected'] == 0


def test_filter_by_stamp_visibility_and_matches(data, tmp_path):
    """Stamp range, visibility and matched-pair floors all apply."""
    recs = manifest.read_records(data)
    c = Criteria(since_ns=recs[2]['stamp_ns'], until_ns=recs[8]['stamp_ns'],
                 min_visibility=0.0, min_matched=1)
    res = filter_dataset(data, tmp_path / 'out', c)
    assert res['selected'] == 7


def test_prune_dry_run_changes_nothing(data):
    """--dry-run lists what would go but leaves every file."""
    (data / 'sample_0000050.npz.tmp').write_bytes(b'x')
    before = sorted(os.listdir(data))
    res = prune_dataset(data, Criteria(sessions=('A',)), dry_run=True)
    assert res['unlisted_removed'] == ['sample_0000050.npz.tmp']
    assert len(res['samples_removed']) == 6
    assert sorted(os.listdir(data)) == before


def test_prune_removes_unlisted_and_failing(data):
    """Unlisted files and failing samples are deleted and the manifest rewritten."""
    (data / 'sample_0000050.npz').write_bytes(b'x')
    (data / 'notes.txt').write_text('kept')
    res = prune_dataset(data, Criteria(exclude_sessions=('B',)))
    assert res['kept'] == 6
    names = {r['npz'] for r in manifest.read_records(data)}
    assert {n for n in os.listdir(data) if n.startswith('sample_')} == names
    assert (data / 'notes.txt').exists()
    assert summarize(data)['error_count'] == 0


def test_prune_invalid_samples(data):
    """--invalid removes samples that fail validation."""
    (data / 'sample_0000001.npz').write_bytes((data / 'sample_0000002.npz').read_bytes()[:50])
    res = prune_dataset(data, Criteria(), invalid=True)
    assert [n for n, _ in res['samples_removed']] == ['sample_0000001.npz']
    assert summarize(data)['error_count'] == 0


def test_prune_refuses_while_writer_runs(data):
    """Prune does not touch a directory a writer holds."""
    w = SampleWriter(data, CFG)
    try:
        with pytest.raises(DatasetError, match='in use'):
            prune_dataset(data, Criteria())
    finally:
        w.close()


def test_merge_renumbers_and_prefixes_clashing_sessions(tmp_path):
    """Merged output has unique names, one manifest, clashing sessions prefixed, all valid."""
    a = make_dir(tmp_path / 'robot1', n=6, sessions=('S', 'only1'))
    b = make_dir(tmp_path / 'robot2', n=4, sessions=('S',))
    res = merge_datasets([a, b], tmp_path / 'all')
    recs = manifest.read_records(tmp_path / 'all')
    assert len(recs) == res['samples'] == 10
    assert [r['npz'] for r in recs] == [f'sample_{i:07d}.npz' for i in range(10)]
    sessions = [r['session'] for r in recs]
    assert sessions == ['robot1/S'] * 3 + ['only1'] * 3 + ['robot2/S'] * 4
    for r in recs:
        path = tmp_path / 'all' / r['npz']
        assert validate(path) == []
        assert r['bytes'] == path.stat().st_size
    assert res['linked'] == 3 and res['rewritten'] == 7
    with SampleWriter(tmp_path / 'all', CFG) as w:  # a writer continues after the merge
        w.submit(make_snapshot(embed_dim=8), 'next', {})
    assert manifest.read_records(tmp_path / 'all')[-1]['npz'] == 'sample_0000010.npz'


def test_merge_same_dir_names_stay_distinct(tmp_path):
    """Two sources both called 'logs' get distinct prefixes."""
    a = make_dir(tmp_path / 'r1' / 'logs', n=2, sessions=('S',))
    b = make_dir(tmp_path / 'r2' / 'logs', n=2, sessions=('S',))
    merge_datasets([a, b], tmp_path / 'all')
    sessions = {r['session'] for r in manifest.read_records(tmp_path / 'all')}
    assert sessions == {'logs-1/S', 'logs-2/S'}


def test_report_writes_pngs(data, tmp_path):
    """Report writes the four plots as PNG files (+ two label plots: this data has gt)."""
    files = report(data, tmp_path / 'rep')
    assert {f.name for f in files} == {'tracks_detections.png', 'cost_distribution.png',
                                       'visibility.png', 'matched_pairs.png',
                                       'label_accuracy.png', 'wrong_labels.png'}
    for f in files:
        assert f.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_filter_command_prints_summary(data, tmp_path, capsys):
    """The filter command reports selected and rejected counts."""
    assert run_command('filter', str(data), '--out', str(tmp_path / 'o'), '--session', 'B') == 0
    out = capsys.readouterr().out
    assert '6 of 12 samples' in out and 'session not selected' in out


def test_merge_warns_about_mixed_embedding_caps(tmp_path):
    """Sources with different caps are reported; --embed-dim selects one width."""
    a = make_dir(tmp_path / 'a', n=2, sessions=('S1',))
    with SampleWriter(tmp_path / 'b', RecorderConfig(log_min_free_mb=0.0, log_embed_dim=8)) as w:
        w.submit(make_snapshot(embed_dim=8), 'S2', {})
    res = merge_datasets([a, tmp_path / 'b'], tmp_path / 'all')
    assert res['embed_dims'] == [8, 16]
    out = filter_dataset(tmp_path / 'all', tmp_path / 'w16', Criteria(embed_dim=16))
    assert out['selected'] == 2
