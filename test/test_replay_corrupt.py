"""Replay of a bag with a corrupted compressed chunk: one ERROR line, valid samples so far."""

from __future__ import annotations

from pathlib import Path
import struct

from assoc_logger_ros import cli
from assoc_logger_ros.bag import bagio
from assoc_logger_ros.recording.npzfile import load
from assoc_logger_ros.recording.validate import validate
from assoc_logger_ros.sim.scene import SceneConfig, generate_scene

_MAGIC = b'\x89MCAP0\r\n'
_CHUNK = 0x06


def _chunks(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the compressed records of every chunk record in an mcap file."""
    out, pos = [], len(_MAGIC)
    while pos + 9 <= len(data):
        op = data[pos]
        (length,) = struct.unpack_from('<Q', data, pos + 1)
        body = pos + 9
        if op == _CHUNK:
            p = body + 8 + 8 + 8 + 4                    # start, end, uncompressed size, crc
            (n,) = struct.unpack_from('<I', data, p)
            p += 4 + n                                  # compression name
            (size,) = struct.unpack_from('<Q', data, p)
            out.append((p + 8, p + 8 + size))
        if op == 0x02:                                  # footer
            break
        pos = body + length
    return out


def test_corrupted_zstd_chunk_is_one_error_line(tmp_path, capsys):
    scene = generate_scene(SceneConfig(seed=5, num_frames=60, width=320, height=240,
                                       num_walkers=6))
    bag = tmp_path / 'bag' / 'walk'
    bag.parent.mkdir()
    bagio.write_scene(scene, bag, storage='mcap', compress=True)
    (mcap,) = sorted(Path(bag).glob('*.mcap'))
    data = bytearray(mcap.read_bytes())
    chunks = _chunks(bytes(data))
    assert len(chunks) >= 3, chunks                     # samples come before the bad chunk
    start, end = chunks[-2]
    mid = (start + end) // 2
    data[mid:mid + 64] = b'\xa5' * 64                   # garbage inside the zstd frame
    mcap.write_bytes(bytes(data))

    out = tmp_path / 'samples'
    code = cli.main(['replay', str(bag), '--log-dir', str(out), '--seg-enable',
                     '--embedding-source', 'color_hist', '-q'])
    err = capsys.readouterr().err
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith('ERROR: cannot read'), err
    assert 'Traceback' not in err
    samples = sorted(out.glob('sample_*.npz'))
    assert samples                                      # what came before is kept...
    for path in samples:                                # ...and valid
        assert validate(load(path)) == [], path
