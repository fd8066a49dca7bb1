"""Real data's sources in order (TFDS dir, IDX dirs, download) and the one-line not-found error."""

import pathlib
import time

import numpy as np
import pytest

from jaxae import data
from jaxae.data import idx, tfds

from .fake_idx import fake_mnist, write_fake_mnist, write_idx

REAL_FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------- IDX dirs


@pytest.mark.parametrize("subdir", ["fashion_mnist", "fashion-mnist"])
def test_jaxae_data_dir_subdirectories(tmp_path, monkeypatch, subdir):
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path))
    write_fake_mnist(tmp_path / subdir)
    assert data.load_dataset("fashion_mnist").source == f"idx:{tmp_path / subdir}"


def test_debian_location_and_raw_files(tmp_path, monkeypatch):
    root = tmp_path / "datasets"
    monkeypatch.setattr(idx, "DEBIAN_DATA_ROOT", root)
    arrays = fake_mnist()
    for field, stem in data.IDX_FILES.items():  # uncompressed files are accepted too
        write_idx(root / "fashion-mnist" / stem, arrays[field], gz=False)
    ds = data.load_dataset("fashion_mnist")
    assert ds.source == f"idx:{root / 'fashion-mnist'}"
    np.testing.assert_array_equal(ds.test_images[..., 0], arrays["test_images"])


def test_broken_idx_under_jaxae_data_dir_is_an_error_naming_the_file(tmp_path, monkeypatch):
    """The user pointed at $JAXAE_DATA_DIR: a damaged file there never falls back to Debian's."""
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path / "env"))
    write_fake_mnist(tmp_path / "env")
    bad = tmp_path / "env" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-40])  # truncated
    write_fake_mnist(tmp_path / "no-debian-datasets" / "fashion-mnist")
    with pytest.raises(data.DataFileError, match=f"{bad}: corrupt or truncated gzip") as info:
        data.load_dataset("fashion_mnist")
    assert "\n" not in str(info.value)


def test_broken_idx_in_the_debian_dir_is_named_in_the_not_found_error(tmp_path, monkeypatch):
    root = tmp_path / "no-debian-datasets" / "fashion-mnist"
    write_fake_mnist(root)
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(data.DatasetNotFoundError, match="unreadable"):
        data.load_dataset("fashion_mnist")


def test_data_dir_without_a_prepared_tfds_dataset_is_an_error(tmp_path, monkeypatch):
    """--config.dataset.data_dir=/path/to/pngs used to be ignored (training on Fashion-MNIST)."""
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path / "idx"))
    write_fake_mnist(tmp_path / "idx")
    (tmp_path / "pngs").mkdir()
    with pytest.raises(data.DatasetNotFoundError, match=f"name=folder:{tmp_path / 'pngs'}"):
        data.load_dataset("fashion_mnist", data_dir=str(tmp_path / "pngs"))
    (tmp_path / "pngs" / "fashion_mnist").mkdir()  # there, but not a prepared dataset
    with pytest.raises(data.DataFileError, match="not a readable prepared TFDS dataset"):
        data.load_dataset("fashion_mnist", data_dir=str(tmp_path / "pngs"))


# ----------------------------------------------------------------------------- TFDS dir


def fake_records(n: int, shape: tuple[int, int, int], offset: int) -> list[dict]:
    return [
        {"image": np.full(shape, (i + offset) % 256, np.uint8), "label": np.int64(i % 10)}
        for i in range(n)
    ]


class FakeSource:
    """Stands in for an ArrayRecordDataSource: len, __getitem__, __getitems__."""

    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __getitems__(self, keys):
        return [self.records[k] for k in keys]


def test_prepared_tfds_dir_is_read_first_and_cached(tmp_path, monkeypatch):
    tfds_dir = tmp_path / "tfds"
    (tfds_dir / "cifar10" / "3.0.2").mkdir(parents=True)
    (tfds_dir / "cifar10" / "3.0.2" / "dataset_info.json").write_text("{}")
    calls = []

    def source(name, directory, split, download):
        calls.append((name, directory, split, download))
        return FakeSource(fake_records(12 if split == "train" else 5, (32, 32, 3), 0))

    monkeypatch.setattr(tfds, "data_source", source)
    ds = data.load_dataset("cifar10")
    assert calls == [
        ("cifar10", str(tfds_dir), "train", False),
        ("cifar10", str(tfds_dir), "test", False),
    ]
    assert ds.source == f"tfds:{tfds_dir}"
    assert ds.train_images.shape == (12, 32, 32, 3) and ds.test_images.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(ds.train_images[:, 0, 0, 0], np.arange(12))
    np.testing.assert_array_equal(ds.train_labels, np.arange(12) % 10)
    assert ds.train_labels.dtype == np.int32

    again = data.load_dataset("cifar10")
    assert again.source.startswith("cache:") and len(calls) == 2
    np.testing.assert_array_equal(again.train_images, ds.train_images)

    # data_dir argument wins over $TFDS_DATA_DIR.
    other = tmp_path / "other-tfds"
    (other / "cifar10").mkdir(parents=True)
    assert data.load_dataset("cifar10", data_dir=str(other)).source == f"tfds:{other}"


def test_unreadable_tfds_dir_falls_back_to_idx(tmp_path, monkeypatch):
    """The real tfds.data_source on a dir without a prepared dataset fails; IDX files win."""
    (tmp_path / "tfds" / "fashion_mnist").mkdir(parents=True)
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path / "idx"))
    write_fake_mnist(tmp_path / "idx")
    ds = data.load_dataset("fashion_mnist")
    assert ds.source == f"idx:{tmp_path / 'idx'}"


# ----------------------------------------------------------------------------- errors


def test_missing_dataset_error_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "tfds").mkdir()
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_dataset("fashion_mnist")
    msg = str(info.value)
    assert "\n" not in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "JAXAE_DATA_DIR" in msg
    assert str(tmp_path / "tfds") in msg  # every place it looked is named
    assert f"$JAXAE_DATA_DIR={tmp_path / 'empty'}" in msg
    assert str(tmp_path / "no-debian-datasets" / "fashion-mnist") in msg
    assert "JAXAE_NO_DOWNLOAD" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_partial_idx_set_is_named_in_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path / "idx"))
    write_fake_mnist(tmp_path / "idx")
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        data.DatasetNotFoundError, match=r"idx lacks t10k-labels-idx1-ubyte\[\.gz\]"
    ):
        data.load_dataset("fashion_mnist")


def test_missing_dataset_error_mentions_unset_env(monkeypatch):
    monkeypatch.setattr(tfds, "network_reachable", lambda hosts: False)
    monkeypatch.delenv("JAXAE_NO_DOWNLOAD")
    with pytest.raises(data.DatasetNotFoundError, match=r"\$JAXAE_DATA_DIR \(unset\).*no network"):
        data.load_dataset("mnist")
    with pytest.raises(data.DatasetNotFoundError, match="download=False"):
        data.load_dataset("cifar10", download=False)


def test_download_failure_is_caught_and_reported(monkeypatch):
    calls = []

    def failing_source(name, tfds_dir, split, download):
        calls.append((name, split, download))
        raise ConnectionError("host unreachable\nsecond line")

    monkeypatch.delenv("JAXAE_NO_DOWNLOAD")
    monkeypatch.setattr(tfds, "network_reachable", lambda hosts: True)
    monkeypatch.setattr(tfds, "data_source", failing_source)
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_dataset("cifar10")
    assert calls == [("cifar10", "train", True)]
    msg = str(info.value)
    assert "\n" not in msg and "download failed (ConnectionError: host unreachable" in msg
    assert "tfds build cifar10" in msg


def test_network_probe_fails_fast_on_closed_port(monkeypatch):
    import socket

    with socket.socket() as s:  # bind then close: nothing listens on this port afterwards
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    assert not tfds.network_reachable([("127.0.0.1", port)])
    assert time.perf_counter() - start < 3.0


# ----------------------------------------------------------------------------- real data


@pytest.mark.skipif(
    not (REAL_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="needs `apt-get install dataset-fashion-mnist`",
)
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setattr(idx, "DEBIAN_DATA_ROOT", REAL_FASHION.parent)
    ds = data.load_dataset("fashion_mnist")
    assert ds.source == f"idx:{REAL_FASHION}"
    assert ds.train_images.shape == (60000, 28, 28, 1)
    assert ds.test_images.shape == (10000, 28, 28, 1)
    assert ds.num_classes == 10
    assert np.bincount(ds.train_labels).tolist() == [6000] * 10
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10
    assert ds.train_images.dtype == np.uint8 and ds.train_images.max() == 255
    cached = data.load_dataset("fashion_mnist")
    assert cached.source.startswith("cache:")
    np.testing.assert_array_equal(cached.test_images, ds.test_images)
