"""The hand-built npz encoder: a real zip of real .npy members that round-trips exactly."""

from __future__ import annotations

import io
import zipfile
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
import pytest

from assoc_logger_ros.recording.npzfile import decode, encode, encode_zipfile, load
from assoc_logger_ros.recording.sample import build
from assoc_logger_ros.recording.synthetic import make_snapshot

DTYPES = st.sampled_from(['bool', 'int8', 'uint16', 'int32', 'int64', 'float32', 'float64',
                          '>f8', 'complex64', '<U1', '<U7'])


@st.composite
def arrays(draw) -> np.ndarray:
    dtype = np.dtype(draw(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    arr = draw(hnp.arrays(dtype, shape))
    if arr.ndim >= 2 and draw(st.booleans()):
        arr = arr.T  # not C-contiguous: must be stored in C order and load back equal
    return arr


KEYS = st.text(alphabet='abcdefghijklmnopqrstuvwxyz_0123456789', min_size=1, max_size=12)


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype, key
        assert got[key].shape == value.shape, key
        assert got[key].tobytes() == np.ascontiguousarray(value).tobytes(), key


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(KEYS, arrays(), min_size=1, max_size=8), st.booleans())
def test_every_array_round_trips_exactly(data, compress):
    """np.load(allow_pickle=False) gives back every key with its dtype, shape and bytes."""
    content = encode(data, compress)
    _assert_same(decode(content), data)


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(KEYS, arrays(), min_size=1, max_size=8), st.booleans())
def test_output_is_a_valid_zip_and_deterministic(data, compress):
    """The zip module finds every member with a correct CRC, and equal input gives equal bytes."""
    content = encode(data, compress)
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == [f'{k}.npy' for k in data]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
    copy = {k: v.copy() for k, v in data.items()}
    assert encode(copy, compress) == content


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(KEYS, arrays(), min_size=1, max_size=6))
def test_same_arrays_as_the_zipfile_reference(data):
    """The fast encoder and the zipfile + write_array reference decode to the same arrays."""
    _assert_same(decode(encode(data)), decode(encode_zipfile(data)))


def test_sample_loads_from_disk_and_compresses(tmp_path):
    """A real sample written to disk loads with np.load; deflate makes it smaller than stored."""
    arrays_ = build(make_snapshot(20, 25, seed=1, embed_dim=64), 's', {}, 64).arrays
    path = tmp_path / 'sample.npz'
    path.write_bytes(encode(arrays_))
    _assert_same(load(path), arrays_)
    assert len(encode(arrays_)) < len(encode(arrays_, compress=False))
    with zipfile.ZipFile(path) as zf:  # stored only where deflate would not help
        for info in zf.infolist():
            if info.compress_type == zipfile.ZIP_STORED:
                raw = zf.read(info)
                assert len(zlib.compress(raw, 1, -15)) >= len(raw), info.filename


def test_object_arrays_are_refused():
    """Nothing that would need pickle to load is ever written."""
    with pytest.raises(ValueError):
        encode({'x': np.array([{'a': 1}], dtype=object)})


def test_non_ascii_key_falls_back_to_zipfile():
    """A key zipfile must flag as UTF-8 still round-trips (through the reference encoder)."""
    data = {'größe': np.arange(3)}
    assert encode(data) == encode_zipfile(data)
    _assert_same(decode(encode(data)), data)
