"""Tests for jaxae.data: IDX reading, source order, caching, errors, subsets, generated data."""

import gzip
import os
import pathlib
import time

import numpy as np
import pytest

from jaxae import data

REAL_FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")
IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    code = IDX_CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: pathlib.Path, array: np.ndarray, *, gz: bool = True) -> pathlib.Path:
    raw = idx_bytes(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def fake_mnist(n_train: int = 50, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_fake_mnist(directory: pathlib.Path, **kw) -> dict[str, np.ndarray]:
    arrays = fake_mnist(**kw)
    for field, stem in data.IDX_FILES.items():
        write_idx(directory / f"{stem}.gz", arrays[field])
    return arrays


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real sources, no network, and a private cache, unless a test opts back in."""
    monkeypatch.setenv("JAXAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("JAXAE_NO_DOWNLOAD", "1")
    monkeypatch.delenv("JAXAE_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DATA_ROOT", tmp_path / "no-debian-datasets")


# ----------------------------------------------------------------------------- read_idx


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


# ----------------------------------------------------------------------------- IDX source, cache


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


@pytest.mark.parametrize("subdir", ["fashion_mnist", "fashion-mnist"])
def test_jaxae_data_dir_subdirectories(tmp_path, monkeypatch, subdir):
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path))
    write_fake_mnist(tmp_path / subdir)
    assert data.load_dataset("fashion_mnist").source == f"idx:{tmp_path / subdir}"


def test_debian_location_and_raw_files(tmp_path, monkeypatch):
    root = tmp_path / "datasets"
    monkeypatch.setattr(data, "DEBIAN_DATA_ROOT", root)
    arrays = fake_mnist()
    for field, stem in data.IDX_FILES.items():  # uncompressed files are accepted too
        write_idx(root / "fashion-mnist" / stem, arrays[field], gz=False)
    ds = data.load_dataset("fashion_mnist")
    assert ds.source == f"idx:{root / 'fashion-mnist'}"
    np.testing.assert_array_equal(ds.test_images[..., 0], arrays["test_images"])


def test_broken_idx_dir_falls_through_to_next(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path / "env"))
    write_fake_mnist(tmp_path / "env")
    (tmp_path / "env" / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    write_fake_mnist(tmp_path / "no-debian-datasets" / "fashion-mnist")
    ds = data.load_dataset("fashion_mnist")
    assert ds.source == f"idx:{tmp_path / 'no-debian-datasets' / 'fashion-mnist'}"


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
    monkeypatch.setattr(data, "_network_reachable", lambda hosts: False)
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
    monkeypatch.setattr(data, "_network_reachable", lambda hosts: True)
    monkeypatch.setattr(data, "_tfds_data_source", failing_source)
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
    assert not data._network_reachable([("127.0.0.1", port)])
    assert time.perf_counter() - start < 3.0


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="fashion_mnist.*mnist.*cifar10.*digits.*synthetic"):
        data.load_dataset("imagenet")


def test_image_shape_mismatch_is_one_line_value_error():
    with pytest.raises(data.ImageShapeError) as info:  # a ValueError
        data.load_dataset("digits", image_shape=(28, 28, 1))
    msg = str(info.value)
    assert "\n" not in msg
    assert "8×8×1" in msg and "28×28×1" in msg and "--config.model.image_shape" in msg
    assert data.load_dataset("digits", image_shape=[8, 8, 1]).image_shape == (8, 8, 1)


# ----------------------------------------------------------------------------- TFDS dir source


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

    monkeypatch.setattr(data, "_tfds_data_source", source)
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


# ----------------------------------------------------------------------------- subsets


def test_exclude_class_train_only_and_max_examples(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp_path))
    arrays = write_fake_mnist(tmp_path)
    ds = data.load_dataset("fashion_mnist", exclude_class=3)
    assert 3 not in ds.train_labels and len(ds.train_labels) == 45
    assert 3 in ds.test_labels and len(ds.test_labels) == 20

    ds = data.load_dataset("fashion_mnist", max_train_examples=7, max_test_examples=4)
    assert ds.train_images.shape == (7, 28, 28, 1) and ds.test_images.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(ds.train_images[..., 0], arrays["train_images"][:7])

    ds = data.load_dataset("fashion_mnist", exclude_class=0, max_train_examples=10)
    np.testing.assert_array_equal(ds.train_labels, [1, 2, 3, 4, 5, 6, 7, 8, 9, 1])

    with pytest.raises(ValueError, match="exclude_class"):
        data.load_dataset("fashion_mnist", exclude_class=10)
    with pytest.raises(ValueError, match="max_train_examples"):
        data.load_dataset("fashion_mnist", max_train_examples=-1)


# ----------------------------------------------------------------------------- generated data


def test_synthetic_is_deterministic_and_seeded():
    a = data.load_dataset("synthetic", seed=0)
    b = data.load_dataset("synthetic", seed=0)
    c = data.load_dataset("synthetic", seed=1)
    assert a.train_images.shape == (2048, 28, 28, 1) and a.test_images.shape == (512, 28, 28, 1)
    assert a.train_images.dtype == np.uint8 and a.train_labels.dtype == np.int32
    np.testing.assert_array_equal(a.train_images, b.train_images)
    np.testing.assert_array_equal(a.test_labels, b.test_labels)
    assert not np.array_equal(a.train_images, c.train_images)
    assert not np.array_equal(a.train_images, a.test_images[:1].repeat(2048, 0))
    assert a.num_classes == 10 and set(np.unique(a.train_labels)) == set(range(10))
    assert np.bincount(a.train_labels).min() >= 2048 // 10  # balanced
    # A usable range: dark background, bright shapes.
    assert a.train_images.min() == 0 and a.train_images.max() >= 200
    assert 5 < a.train_images.mean() < 100


def test_synthetic_classes_differ_on_average():
    ds = data.load_dataset("synthetic", seed=3)
    x = data.to_float(ds.train_images).reshape(len(ds.train_images), -1)
    means = np.stack([x[ds.train_labels == k].mean(0) for k in range(10)])
    dists = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert dists[~np.eye(10, dtype=bool)].min() > 0.3


def test_synthetic_honours_image_shape_and_sizes():
    ds = data.load_dataset(
        "synthetic", image_shape=(32, 32, 3), max_train_examples=64, max_test_examples=16
    )
    assert ds.train_images.shape == (64, 32, 32, 3) and ds.test_images.shape == (16, 32, 32, 3)
    assert ds.image_shape == (32, 32, 3)
    assert ds.train_images.max() >= 200
    # Colour: channels are not all equal.
    assert not np.array_equal(ds.train_images[..., 0], ds.train_images[..., 1])
    assert data.load_dataset("synthetic", image_shape=(8, 8, 1)).image_shape == (8, 8, 1)


def test_digits():
    ds = data.load_dataset("digits")
    assert ds.train_images.shape[1:] == (8, 8, 1) and ds.train_images.dtype == np.uint8
    assert len(ds.train_images) + len(ds.test_images) == 1797
    assert len(ds.test_images) == 359
    assert ds.train_images.max() == 255 and ds.train_images.min() == 0
    assert ds.num_classes == 10 and ds.train_labels.dtype == np.int32
    same = data.load_dataset("digits")
    other = data.load_dataset("digits", seed=1)
    np.testing.assert_array_equal(ds.test_labels, same.test_labels)
    assert not np.array_equal(ds.test_images, other.test_images)


# ----------------------------------------------------------------------------- helpers


def test_to_float_numpy_and_jax():
    import jax.numpy as jnp

    x = np.array([[0, 128, 255]], np.uint8)
    out = data.to_float(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 128 / 255, 1.0]])
    out_j = data.to_float(jnp.asarray(x))
    assert isinstance(out_j, jnp.ndarray) and out_j.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out_j), out, rtol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        data.to_float(out)


def test_batches():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    labels = np.arange(10, dtype=np.int32)
    plain = list(data.batches(images, labels, 4, rng=None))
    assert [b[1].tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    tail = list(data.batches(images, labels, 4, rng=None, drop_remainder=False))
    assert tail[-1][1].tolist() == [8, 9]

    shuffled = list(data.batches(images, labels, 5, rng=np.random.default_rng(0)))
    got = np.concatenate([b[1] for b in shuffled])
    assert sorted(got.tolist()) == list(range(10)) and got.tolist() != list(range(10))
    for x, y in shuffled:  # images and labels stay paired
        np.testing.assert_array_equal(x[:, 0, 0, 0], y)
    again = list(data.batches(images, labels, 5, rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in again]), got)
    with pytest.raises(ValueError):
        next(data.batches(images, labels, 0, rng=None))


def test_cache_dir(monkeypatch, tmp_path):
    assert data.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("JAXAE_CACHE_DIR")
    assert data.cache_dir() == pathlib.Path.home() / ".cache" / "jaxae"


# ----------------------------------------------------------------------------- real data


@pytest.mark.skipif(
    not (REAL_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="needs `apt-get install dataset-fashion-mnist`",
)
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_DATA_ROOT", REAL_FASHION.parent)
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
