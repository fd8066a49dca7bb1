"""Own data: image folders, .npy/.npz arrays, CSV tables, any prepared TFDS dataset.

Each test writes its own small files; the split, scaling and every bad input are checked.
"""

import csv
import itertools

import numpy as np
import pytest
from PIL import Image

from jaxae import data
from jaxae.data import own, tfds

from .test_search_order import FakeSource

RNG = np.random.default_rng(0)


def write_pngs(directory, n, shape=(8, 8, 3), start=0):
    """n PNGs 0.png.. with pixel value start+i everywhere (so each file is recognisable)."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.full(shape, (start + i) * 7 % 256, np.uint8)
        Image.fromarray(pixels.squeeze(-1) if shape[-1] == 1 else pixels).save(
            directory / f"{i}.png"
        )


def write_csv(path, header, rows):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_split_is_seeded_disjoint_and_keeps_anomalies_out_of_train():
    train, test = own.split_indices(50, 0.2, seed=3)
    assert len(test) == 10 and len(train) == 40
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(range(50))
    again = own.split_indices(50, 0.2, seed=3)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(own.split_indices(50, 0.2, seed=4)[1], test)
    flags = np.arange(50) % 5 == 0
    train, test = own.split_indices(50, 0.25, seed=0, anomaly=flags)
    assert not flags[train].any() and flags[test].sum() == 10
    assert len(test) == 10 + 10  # a quarter of the 40 normal rows, and every anomaly


# ----------------------------------------------------------------------------- folders


def test_folder_with_class_subfolders(tmp_path):
    write_pngs(tmp_path / "imgs" / "cat", 6, start=0)
    write_pngs(tmp_path / "imgs" / "dog", 4, start=10)
    ds = data.load_dataset(f"folder:{tmp_path / 'imgs'}", image_shape=(8, 8, 3), test_fraction=0.3)
    assert ds.kind == "images" and ds.class_names == ("cat", "dog") and ds.num_classes == 2
    assert (len(ds.train_images), len(ds.test_images)) == (7, 3)
    values = {int(v) for v in ds.train_images[:, 0, 0, 0]} | {
        int(v) for v in ds.test_images[:, 0, 0, 0]
    }
    assert len(values) == 10  # every file once, in exactly one split
    labels = np.concatenate([ds.train_labels, ds.test_labels])
    pixels = np.concatenate([ds.train_images, ds.test_images])[:, 0, 0, 0]
    np.testing.assert_array_equal(labels, (pixels >= 70).astype(int))  # dog files start at 70
    again = data.load_dataset(
        f"folder:{tmp_path / 'imgs'}", image_shape=(8, 8, 3), test_fraction=0.3
    )
    assert again.source.startswith("cache:")
    np.testing.assert_array_equal(again.test_images, ds.test_images)


def test_flat_folder_has_no_labels_and_converts_rgb_to_grey(tmp_path):
    write_pngs(tmp_path / "flat", 5, shape=(6, 5, 3))
    ds = data.load_dataset(f"folder:{tmp_path / 'flat'}", image_shape=(6, 5, 1))
    assert ds.num_classes == 1 and not ds.train_labels.any() and ds.image_shape == (6, 5, 1)
    grey = np.asarray(Image.open(tmp_path / "flat" / "0.png").convert("L"))
    assert any(
        np.array_equal(x[..., 0], grey) for x in np.concatenate([ds.train_images, ds.test_images])
    )
    assert data.load_dataset(f"folder:{tmp_path / 'flat'}").image_shape == (6, 5, 3)  # as stored


def test_folder_train_test_layout_is_used_as_given(tmp_path):
    write_pngs(tmp_path / "d" / "train" / "a", 3, shape=(4, 4, 1))
    write_pngs(tmp_path / "d" / "train" / "b", 3, shape=(4, 4, 1))
    write_pngs(tmp_path / "d" / "test" / "b", 2, shape=(4, 4, 1))
    ds = data.load_dataset(f"folder:{tmp_path / 'd'}", image_shape=(4, 4, 1))
    assert (len(ds.train_images), len(ds.test_images)) == (6, 2)
    assert ds.test_labels.tolist() == [1, 1] and ds.class_names == ("a", "b")


def test_folder_sizes_resize_and_damaged_files(tmp_path):
    write_pngs(tmp_path / "m", 3, shape=(8, 8, 1))
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "m" / "odd.png")
    name = f"folder:{tmp_path / 'm'}"
    with pytest.raises(
        data.DataFileError, match=r"different sizes \(8×8: 3 files, 5×7: 1 files.*resize=True"
    ) as info:
        data.load_dataset(name, image_shape=(8, 8, 1))
    assert "\n" not in str(info.value)
    assert data.load_dataset(name, image_shape=(8, 8, 1), resize=True).image_shape == (8, 8, 1)
    (tmp_path / "m" / "odd.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(
        data.DataFileError, match=f"{tmp_path / 'm' / 'odd.png'}: not a readable image"
    ):
        data.load_dataset(name, image_shape=(8, 8, 1), resize=True)
    write_pngs(tmp_path / "mixed" / "cls", 2)
    write_pngs(tmp_path / "mixed", 1)
    with pytest.raises(data.DataFileError, match="both images .* and class subfolders"):
        data.load_dataset(f"folder:{tmp_path / 'mixed'}")
    with pytest.raises(data.DatasetNotFoundError, match="no such folder"):
        data.load_dataset(f"folder:{tmp_path / 'nowhere'}")


# ----------------------------------------------------------------------------- arrays


def test_npy_images_uint8_and_float(tmp_path):
    images = RNG.integers(0, 256, (20, 6, 6, 1), np.uint8)
    np.save(tmp_path / "u8.npy", images)
    ds = data.load_dataset(f"array:{tmp_path / 'u8.npy'}", image_shape=(6, 6, 1), stream="off")
    assert ds.kind == "images" and ds.train_images.dtype == np.uint8
    together = np.concatenate([ds.train_images, ds.test_images])
    assert sorted(map(bytes, together)) == sorted(map(bytes, images))
    np.save(tmp_path / "f.npy", images[..., 0] / 255.0)  # [N, H, W] float64 in [0, 1]
    ds = data.load_dataset(f"array:{tmp_path / 'f.npy'}", image_shape=(6, 6, 1))
    assert ds.train_images.dtype == np.float32 and float(ds.train_images.max()) <= 1.0
    np.save(tmp_path / "big.npy", images * 2.0)
    with pytest.raises(data.DataFileError, match=r"float images span \[0, 510\]; .* \[0, 1\]"):
        data.load_dataset(f"array:{tmp_path / 'big.npy'}")


def test_npz_vectors_with_labels_scaled_on_train_only(tmp_path):
    x = RNG.normal(size=(40, 3)) * [1, 10, 100]
    y = np.arange(40) % 4
    np.savez(tmp_path / "v.npz", x=x, y=y)
    ds = data.load_dataset(f"array:{tmp_path / 'v.npz'}", image_shape=(1, 1, 3))
    assert ds.kind == "vectors" and ds.train_images.shape == (32, 1, 1, 3) and ds.num_classes == 4
    train = ds.train_images.reshape(-1, 3)
    np.testing.assert_allclose(train.min(0), 0, atol=1e-6)
    np.testing.assert_allclose(train.max(0), 1, atol=1e-6)
    train_idx, test_idx = own.split_indices(40, 0.2, 0)
    np.testing.assert_allclose(ds.scaling.offset, x[train_idx].min(0))  # fitted on train rows only
    np.testing.assert_allclose(
        ds.test_images.reshape(-1, 3), ds.scaling.apply(x[test_idx]), rtol=1e-6
    )
    np.testing.assert_array_equal(ds.test_labels, y[test_idx])


def test_npz_with_both_splits_and_bad_arrays(tmp_path):
    splits = {
        "x_train": np.ones((5, 4, 4, 1), np.uint8),
        "x_test": np.zeros((3, 4, 4, 1), np.uint8),
    }
    np.savez(tmp_path / "s.npz", **splits, y_train=np.arange(5), y_test=np.arange(3))
    ds = data.load_dataset(f"array:{tmp_path / 's.npz'}")
    assert (len(ds.train_images), len(ds.test_images)) == (5, 3) and ds.num_classes == 5
    np.savez(tmp_path / "nan.npz", x=np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]))
    with pytest.raises(data.DataFileError, match="1 NaN/inf values .*row 1, column 0"):
        data.load_dataset(f"array:{tmp_path / 'nan.npz'}")
    np.savez(tmp_path / "keys.npz", images=np.zeros((3, 2)))
    with pytest.raises(data.DataFileError, match=r"holds \['images'\]; name the arrays x"):
        data.load_dataset(f"array:{tmp_path / 'keys.npz'}")
    np.save(tmp_path / "cut.npy", np.zeros((10, 4, 4, 1), np.uint8))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(cut.read_bytes()[:-30])  # truncated
    for stream in ("off", "on"):
        with pytest.raises(data.DataFileError, match="cut.npy: not a readable numpy file"):
            data.load_dataset(f"array:{cut}", stream=stream)


def test_streamed_npy_gives_the_same_batches_as_in_memory(tmp_path):
    import jax

    from jaxae.runtime.feeding import host_batches

    for name, array in {
        "img.npy": RNG.integers(0, 256, (45, 4, 4, 1), np.uint8),
        "vec.npy": RNG.normal(size=(45, 5)).astype(np.float32),
    }.items():
        np.save(tmp_path / name, array)
        streamed = data.load_dataset(f"array:{tmp_path / name}", stream="on", max_train_examples=30)
        memory = data.load_dataset(f"array:{tmp_path / name}", stream="off", max_train_examples=30)
        assert data.stream.is_streamed(streamed.train_images)
        assert not data.stream.is_streamed(memory.train_images)
        key = jax.random.PRNGKey(1)
        a = itertools.islice(host_batches(streamed.train_images, 8, key, 0), 7)  # 2 epochs
        b = itertools.islice(host_batches(memory.train_images, 8, key, 0), 7)
        for batch_a, batch_b in zip(a, b, strict=True):
            np.testing.assert_array_equal(batch_a, batch_b)
        np.testing.assert_array_equal(np.asarray(streamed.test_images), memory.test_images)
        np.testing.assert_array_equal(streamed.train_images[[7, 2]], memory.train_images[[7, 2]])


# ----------------------------------------------------------------------------- CSV tables


def test_csv_with_label_and_anomaly_columns(tmp_path):
    rows = [[i, 2.5 * i, "ab"[i % 2], int(i % 6 == 0)] for i in range(30)]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "kind", "bad"], rows)
    ds = data.load_dataset(
        f"csv:{path}", label_column="kind", anomaly_column="bad", image_shape=(1, 1, 2)
    )
    assert ds.kind == "vectors" and ds.feature_names == ("a", "b") and ds.class_names == ("a", "b")
    train_a = ds.scaling.invert(ds.train_images.reshape(-1, 2))[:, 0].round().astype(int)
    test_a = ds.scaling.invert(ds.test_images.reshape(-1, 2))[:, 0].round().astype(int)
    assert not (train_a % 6 == 0).any()  # anomalies are never trained on...
    np.testing.assert_array_equal(ds.test_anomaly, test_a % 6 == 0)  # ...and all are in test
    assert ds.test_anomaly.sum() == 5
    np.testing.assert_array_equal(ds.train_labels, train_a % 2)
    other = write_csv(tmp_path / "test.csv", ["a", "b", "kind", "bad"], rows[:4])
    ds = data.load_dataset(
        f"csv:{path}", test_path=str(other), label_column="kind", anomaly_column="bad"
    )
    assert len(ds.test_images) == 4 and len(ds.train_images) == 25  # train's anomalies dropped


@pytest.mark.parametrize(
    "rows, options, message",
    [
        ([["1", "x"], ["2", "y"]], {}, r"column 'b' is not numeric \(line 2: 'x'\).*label_column"),
        ([["1", "2"], ["", "3"]], {}, r"column 'a' has an empty cell \(line 3\); fill it"),
        ([["1", "2"], ["nan", "3"]], {}, r"column 'a' has 1 NaN/inf cells \(first on line 3"),
        ([["1", "2"], ["3"]], {}, r"line 3 has 1 cells but the header has 2"),
        (
            [["1", "2"], ["3", "4"]],
            {"label_column": "c"},
            r"label_column='c' is not a column.*: a, b",
        ),
        ([["1", "2"], ["3", "4"]], {"anomaly_column": "b", "test_fraction": 0.5}, r"must hold 0/1"),
    ],
)
def test_bad_tables_are_one_line_errors(tmp_path, rows, options, message):
    path = write_csv(tmp_path / "bad.csv", ["a", "b"], rows)
    with pytest.raises(data.DataFileError, match=message) as info:
        data.load_dataset(f"csv:{path}", **options)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_parquet_table_reads_like_csv(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"a": [1.5, 2.25, 3.0, 4.0, 0.1], "b": [1, 2, 3, 4, 5], "y": list("uvuvu")}
    pq.write_table(pa.table({**columns, "bad": [0, 0, 1, 0, 0]}), tmp_path / "t.parquet")
    ds = data.load_dataset(
        f"parquet:{tmp_path / 't.parquet'}", label_column="y", anomaly_column="bad"
    )
    assert ds.feature_names == ("a", "b") and ds.class_names == ("u", "v")
    rows = ds.scaling.invert(np.concatenate([ds.train_images, ds.test_images]).reshape(-1, 2))
    expected = np.array([columns["a"], columns["b"]]).T
    assert sorted(map(tuple, rows.round(5))) == sorted(map(tuple, expected))
    assert ds.test_anomaly.sum() == 1
    pq.write_table(pa.table({"a": [1.0, None, 3.0]}), tmp_path / "null.parquet")
    with pytest.raises(data.DataFileError, match=r"column 'a' has an empty cell \(row 1\)"):
        data.load_dataset(f"parquet:{tmp_path / 'null.parquet'}")


def test_sklearn_breast_cancer_table_and_its_csv_export(tmp_path):
    from jaxae.data import sklearn_csv

    ds = data.load_dataset("sklearn:breast_cancer", anomaly_column="target")
    assert ds.image_shape == (1, 1, 30) and "target" not in ds.feature_names
    assert ds.test_anomaly.sum() == 212 and (ds.train_labels == 0).all()  # trained on benign only
    assert len(ds.train_images) == 357 - round(0.2 * 357)
    sklearn_csv.main(["breast_cancer", str(tmp_path / "bc.csv")])
    from_csv = data.load_dataset(
        f"csv:{tmp_path / 'bc.csv'}", label_column="target", anomaly_column="target"
    )
    np.testing.assert_array_equal(from_csv.train_images, ds.train_images)
    np.testing.assert_array_equal(from_csv.test_anomaly, ds.test_anomaly)


# ----------------------------------------------------------------------------- TFDS


def test_any_prepared_tfds_image_dataset(tmp_path, monkeypatch):
    (tmp_path / "tfds" / "emnist" / "letters" / "3.0.0").mkdir(parents=True)
    calls = []

    def source(name, directory, split, download):
        calls.append((name, split, download))
        if split == "test":
            raise ValueError("Unknown split 'test'")
        return FakeSource(
            [{"image": np.full((5, 5), i, np.uint8), "label": i % 3} for i in range(10)]
        )

    monkeypatch.setattr(tfds, "data_source", source)
    ds = data.load_dataset("tfds:emnist/letters", image_shape=(5, 5, 1))
    assert calls == [("emnist/letters", "train", False), ("emnist/letters", "test", False)]
    assert (len(ds.train_images), len(ds.test_images)) == (8, 2)  # no test split: train divided
    np.testing.assert_array_equal(ds.train_labels, ds.train_images[:, 0, 0, 0] % 3)
    assert data.load_dataset("tfds:emnist/letters").source.startswith("cache:") and len(calls) == 2
    with pytest.raises(
        data.DatasetNotFoundError, match=r"no prepared kmnist/ in .*tfds build kmnist"
    ):
        data.load_dataset("tfds:kmnist")
    (tmp_path / "tfds" / "glue").mkdir()
    monkeypatch.setattr(tfds, "data_source", lambda *a: FakeSource([{"text": "hi"}]))
    with pytest.raises(data.DataFileError, match="no 'image' feature"):
        data.load_dataset("tfds:glue")


# ----------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("synthetic", {"data_dir": "/data/pngs"}, "name=folder:/data/pngs"),
        (
            "csv:/x.csv",
            {"resize": True},
            r"dataset.resize=True is not used by dataset 'csv' \(it is read by folder:\)",
        ),
        ("fashion_mnist", {"label_column": "y"}, "label_column='y' is not used"),
        ("folder:/x", {"scaling": "none"}, "scaling='none' is not used by dataset 'folder'"),
    ],
)
def test_a_field_the_source_does_not_read_is_an_error(name, options, message):
    with pytest.raises(data.UnusedFieldError, match=message):
        data.load_dataset(name, **options)


def test_names_and_config_validation():
    from jaxae import config as config_lib

    with pytest.raises(ValueError, match="write --config.dataset.name=folder:/tmp"):
        data.load_dataset("/tmp")
    with pytest.raises(ValueError, match="csv needs its path: csv:PATH"):
        data.load_dataset("csv")
    config = config_lib.default_config()
    config.dataset.name = "images:/x"
    with pytest.raises(config_lib.ConfigError, match="dataset.name.*folder:DIR"):
        config_lib.validate(config)
    config.dataset.name, config.dataset.resize = "csv:/x.csv", True
    with pytest.raises(data.UnusedFieldError, match="resize"):
        config_lib.validate(config)
    config.dataset.resize, config.dataset.test_fraction = False, 1.0
    with pytest.raises(config_lib.ConfigError, match="test_fraction"):
        config_lib.validate(config)
