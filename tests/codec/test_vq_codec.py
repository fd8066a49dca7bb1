"""A VQ-VAE's codebook indices as files: bit-exact round trip, the table, refusals."""

import numpy as np
import pytest
from conftest import tiny_config

from jaxae import compress, decompress
from jaxae import config as config_lib
from jaxae.codec import bitstream
from jaxae.codec.api import open_codec
from jaxae.codec.vq import VQCodec

from .conftest import train_tiny


@pytest.fixture(scope="module")
def trained_vq(tmp_path_factory):
    """(workdir, test images) of a small VQ-VAE trained 40 steps on synthetic images."""
    config = tiny_config("vqvae", num_steps=40, eval_every=40, batch_size=16)
    config.model = config_lib.model_config("vqvae", features=(8, 16), num_embeddings=16)
    config.dataset.max_train_examples = 128
    config.dataset.max_test_examples = 16
    return train_tiny(tmp_path_factory, "vq", config)


def test_indices_round_trip_bit_exactly_to_the_models_reconstruction(trained_vq):
    workdir, images = trained_vq
    codec = open_codec(workdir)
    assert isinstance(codec, VQCodec) and codec.tables.channels == 1
    # one count per codebook entry (offset 0) plus the escape, summing to the coder's total
    assert codec.tables.offsets[0] == 0 and codec.tables.lengths[0] <= 16 + 1
    assert codec.tables.counts[0].sum() == 2**16
    for image in images[:8]:
        data = codec.compress(image)
        assert np.array_equal(codec.decompress(data), codec.reconstruct(image))
        q = codec.latents(image)
        assert q.shape == (7, 7, 1) and q.min() >= 0 and q.max() < 16
        payload_bits = 8 * (len(data) - len(bitstream.Header(b"0000", (28, 28, 1), q.shape).pack()))
        # the payload is whole 32-bit words: at most one word above the table's own estimate
        assert codec.estimated_bits(image) <= payload_bits <= codec.estimated_bits(image) + 64
    # the stored table is reused, and a second opening decodes the same files
    again = open_codec(workdir)
    assert again.tables.fingerprint == codec.tables.fingerprint
    assert np.array_equal(again.decompress(codec.compress(images[0])), codec.reconstruct(images[0]))


def test_the_command_line_compresses_and_refuses_other_shapes(trained_vq, tmp_path, capsys):
    workdir, images = trained_vq
    np.save(tmp_path / "x.npy", images[:3])
    compress.main(
        ["--workdir", str(workdir), str(tmp_path / "x.npy"), "--out", str(tmp_path / "z")]
    )
    files = sorted(str(p) for p in (tmp_path / "z").glob("*.jxc"))
    assert len(files) == 3
    decompress.main(["--workdir", str(workdir), *files, "--out", str(tmp_path / "png")])
    assert len(list((tmp_path / "png").glob("*.png"))) == 3
    codec = open_codec(workdir)
    with pytest.raises(ValueError, match=r"codes \(28, 28, 1\) images only"):
        codec.compress(np.zeros((32, 32, 1), np.uint8))
    with pytest.raises(bitstream.BitstreamError, match="not a jaxae codec file"):
        codec.decompress(b"PNG....", "x.png")
