"""read_idx: round trips, gzip by content, and one clear line for every malformed file."""

import gzip

import numpy as np
import pytest

from jaxae import data

from .fake_idx import idx_bytes, write_idx


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([7, 0, 255], np.uint8),
        np.array([[-5, 70000], [1, 2]], np.int32),
        np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
    ],
)
def test_read_idx_roundtrip(tmp_path, array, gz):
    path = write_idx(tmp_path / ("a.gz" if gz else "a"), array, gz=gz)
    out = data.read_idx(path)
    assert out.dtype == array.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # a writable copy, not a view of a read-only buffer


def test_read_idx_detects_gzip_by_content(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "no-suffix"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(data.read_idx(path), array)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda raw: b"\x12\x34" + raw[2:], "bad IDX magic"),
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "bad IDX magic"),
        (lambda raw: raw[:-5], "truncated"),
        (lambda raw: raw + b"\x00\x00", "trailing bytes"),
        (lambda raw: raw[:2] + b"\x08\x04" + raw[4:], "IDX"),  # 4 dims declared, 3 written
        (lambda raw: raw[:9], "truncated IDX header"),
        (lambda raw: raw[:3], "not an IDX file"),
    ],
)
def test_read_idx_malformed(tmp_path, mutate, message):
    raw = idx_bytes(np.zeros((4, 3, 2), np.uint8))
    for gz in (False, True):
        path = tmp_path / ("bad.gz" if gz else "bad")
        bad = mutate(raw)
        path.write_bytes(gzip.compress(bad) if gz else bad)
        with pytest.raises(ValueError, match=message) as info:
            data.read_idx(path)
        assert str(path) in str(info.value)


def test_read_idx_truncated_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))[:-20])
    with pytest.raises(ValueError, match="gzip"):
        data.read_idx(path)
