"""Bitstreams: encode -> decode is bit-exact, the tables are deterministic integers, the header
rejects foreign files."""

import numpy as np
import pytest

from jaxae.codec import api, bitstream, tables
from jaxae.codec.bitstream import BitstreamError

from .conftest import images, untrained_run


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    return api.ImageCodec(untrained_run(tmp_path_factory.mktemp("codec")))


def test_decoded_image_is_the_models_rounded_reconstruction_bit_for_bit(codec):
    for image in images(6):
        data = codec.compress(image)
        header, payload = bitstream.unpack(data, "x")
        q = bitstream.decode(payload, header.latent_shape, codec.tables)
        np.testing.assert_array_equal(q, codec.latents(image))  # the integers, exactly
        np.testing.assert_array_equal(codec.decompress(data), codec.reconstruct(image))
        assert codec.compress(image) == data  # deterministic


def test_sizes_not_divisible_by_four_are_padded_and_cropped_back(codec):
    image = np.ascontiguousarray(images(1, (32, 28, 1))[0][:30, :25])
    decoded = codec.decompress(codec.compress(image))
    assert decoded.shape == (30, 25, 1)
    np.testing.assert_array_equal(decoded, codec.reconstruct(image))


def test_integers_outside_the_tables_are_escaped_and_come_back(codec):
    q = codec.latents(images(1)[0])
    q[0, 0, 0] = int(codec.tables.offsets[0]) - 3000  # far below channel 0's support
    q[1, 2, 1] = int(codec.tables.offsets[1] + codec.tables.lengths[1]) + 70000
    q[3, 3, 2] = int(codec.tables.offsets[2] + codec.tables.lengths[2]) - 1  # the escape's own slot
    payload = bitstream.encode(q, codec.tables)
    np.testing.assert_array_equal(bitstream.decode(payload, q.shape, codec.tables), q)


def test_tables_are_deterministic_integers_summing_to_the_precision(tmp_path, codec):
    run = codec.run
    again = tables.build(run.model, run.variables["params"])
    np.testing.assert_array_equal(again.counts, codec.tables.counts)
    np.testing.assert_array_equal(again.offsets, codec.tables.offsets)
    assert again.fingerprint == codec.tables.fingerprint
    for c in range(codec.tables.channels):
        row = codec.tables.counts[c, : codec.tables.lengths[c]]
        assert row.dtype == np.int32 and row.min() >= 1 and row.sum() == 2**tables.PRECISION
    stored = tables.path_for(run.workdir, run.step)
    assert stored.exists()  # built once, then read: the same tables from the file
    loaded = tables.load_or_build(run.workdir, run.step, run.model, run.variables["params"])
    np.testing.assert_array_equal(loaded.counts, codec.tables.counts)
    assert loaded.fingerprint == codec.tables.fingerprint


def test_quantized_pmf_keeps_the_support_and_an_escape():
    grid = np.arange(-tables.SEARCH, tables.SEARCH + 1)
    p = np.exp(-np.abs(grid) / 2.0)
    p /= p.sum()
    counts, offset = tables.quantize_pmf(p)
    assert counts.sum() == 2**16 and counts.min() >= 1
    assert offset < -10 and offset + len(counts) - 2 > 10  # symmetric support around 0
    kept = p[offset + tables.SEARCH :][: len(counts) - 1]
    # floor rounding loses < 1 count per symbol; the remainder goes to the likeliest one
    assert np.abs(counts[:-1] / 2**16 - kept).max() <= len(counts) / 2**16


def test_header_rejects_a_foreign_model_another_version_and_no_codec_file(tmp_path, codec):
    data = codec.compress(images(1)[0])
    other = api.ImageCodec(untrained_run(tmp_path, scale=1.01))
    with pytest.raises(BitstreamError, match="written by another model"):
        other.decompress(data, "a.jxc")
    with pytest.raises(BitstreamError, match="format version 7"):
        codec.decompress(data[:3] + bytes([7]) + data[4:], "a.jxc")
    with pytest.raises(BitstreamError, match="not a jaxae codec file"):
        codec.decompress(b"\x89PNG\r\n\x1a\n" + data, "a.png")
    with pytest.raises(BitstreamError, match="truncated"):
        codec.decompress(data[:9], "a.jxc")


def test_wrong_images_are_refused(codec):
    with pytest.raises(api.NotACodecError, match="uint8"):
        codec.compress(np.zeros((28, 28, 1), np.float32))
    with pytest.raises(api.NotACodecError, match=r"not \[H, W, 1\]"):
        codec.compress(np.zeros((28, 28, 3), np.uint8))
