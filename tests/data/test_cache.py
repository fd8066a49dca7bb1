"""The decoded-array cache: written once, reused, rebuilt when sources change or it is damaged."""

import os
import pathlib

import numpy as np
import pytest

from jaxae import data

from .fake_idx import write_fake_mnist


def test_load_from_jaxae_data_dir_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path / "idx"))
    arrays = write_fake_mnist(tmp_path / "idx")

    first = data.load_dataset("fashion_mnist")
    assert first.source == f"idx:{tmp_path / 'idx'}"
    assert first.train_images.shape == (50, 28, 28, 1) and first.train_images.dtype == np.uint8
    assert first.test_images.shape == (20, 28, 28, 1)
    assert first.train_labels.dtype == np.int32 and first.test_labels.dtype == np.int32
    assert first.image_shape == (28, 28, 1) and first.num_classes == 10
    np.testing.assert_array_equal(first.train_images[..., 0], arrays["train_images"])
    np.testing.assert_array_equal(first.test_labels, arrays["test_labels"])
    assert (tmp_path / "cache" / "fashion_mnist.npz").is_file()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")]

    second = data.load_dataset("fashion_mnist")
    assert second.source.startswith("cache:")
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(second, field), getattr(first, field))
        assert getattr(second, field).dtype == getattr(first, field).dtype


def test_cache_invalidated_when_files_change(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path))
    write_fake_mnist(tmp_path, seed=0)
    data.load_dataset("fashion_mnist")
    assert data.load_dataset("fashion_mnist").source.startswith("cache:")

    new = write_fake_mnist(tmp_path, seed=1, n_train=30)  # new content and size
    ds = data.load_dataset("fashion_mnist")
    assert ds.source.startswith("idx:")
    np.testing.assert_array_equal(ds.train_images[..., 0], new["train_images"])
    assert data.load_dataset("fashion_mnist").source.startswith("cache:")

    # Same size, only the mtime differs (e.g. the package was reinstalled): rebuilt as well.
    label_file = tmp_path / "t10k-labels-idx1-ubyte.gz"
    st = label_file.stat()
    os.utime(label_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert data.load_dataset("fashion_mnist").source.startswith("idx:")


def test_corrupt_cache_is_ignored_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path / "idx"))
    write_fake_mnist(tmp_path / "idx")
    good = data.load_dataset("fashion_mnist")
    cache = tmp_path / "cache" / "fashion_mnist.npz"
    cache.write_bytes(cache.read_bytes()[:1000])  # half-written file

    with pytest.warns(RuntimeWarning, match="corrupt dataset cache"):
        rebuilt = data.load_dataset("fashion_mnist")
    assert rebuilt.source.startswith("idx:")
    np.testing.assert_array_equal(rebuilt.train_images, good.train_images)
    assert data.load_dataset("fashion_mnist").source.startswith("cache:")


def test_cache_dir(monkeypatch, tmp_path):
    assert data.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("JAXAE_CACHE_DIR")
    assert data.cache_dir() == pathlib.Path.home() / ".cache" / "jaxae"
