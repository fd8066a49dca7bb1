"""load_dataset's front door: names, the image-shape check, subsets; to_float."""

import numpy as np
import pytest

from jaxae import data

from .fake_idx import write_fake_mnist


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


def test_to_float_numpy_and_jax():
    import jax.numpy as jnp

    x = np.array([[0, 128, 255]], np.uint8)
    out = data.to_float(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 128 / 255, 1.0]])
    out_j = data.to_float(jnp.asarray(x))
    assert isinstance(out_j, jnp.ndarray) and out_j.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out_j), out, rtol=1e-6)
    assert data.to_float(out) is out  # float32 (scaled features, converted images) passes through
    with pytest.raises(TypeError, match="uint8 or float32"):
        data.to_float(out.astype(np.float64))


def test_a_source_is_one_entry_in_the_loader_table(monkeypatch):
    """load_dataset hands a new loader the request, then checks the shape and cuts the splits."""
    requests = []

    def loader(request):
        requests.append(request)
        images = np.zeros((6, 4, 4, 1), np.uint8)
        labels = np.arange(6, dtype=np.int32) % 3
        return data.Dataset("mine", images, labels, images[:4], labels[:4], 3, "mine:test")

    assert tuple(data.LOADERS) == data.DATASETS
    monkeypatch.setitem(data.LOADERS, "mine", loader)
    monkeypatch.setitem(data.load.FIELDS, "mine", ("data_dir",))  # the fields it reads
    ds = data.load_dataset(
        "Mine", data_dir="/x", image_shape=(4, 4, 1), max_test_examples=2, exclude_class=0, seed=5
    )
    assert requests == [
        data.LoadRequest(
            "mine", "/x", (4, 4, 1), max_test_examples=2, seed=5, download=True, path=""
        )
    ]
    assert ds.train_labels.tolist() == [1, 2, 1, 2] and len(ds.test_labels) == 2
    with pytest.raises(data.ImageShapeError, match="4×4×1"):
        data.load_dataset("mine", image_shape=(8, 8, 1))


def test_load_for_config_reads_dataset_seed_and_image_shape():
    import ml_collections

    config = ml_collections.ConfigDict(
        {
            "seed": 3,
            "dataset": {
                "name": "synthetic",
                "data_dir": "",
                "max_train_examples": 20,
                "max_test_examples": 10,
                "exclude_class": 2,
            },
            "model": {"image_shape": (8, 8, 3)},
        }
    )
    ds = data.load_for_config(config)
    expected = data.load_dataset(
        "synthetic", max_train_examples=20, max_test_examples=10, exclude_class=2,
        image_shape=(8, 8, 3), seed=3,
    )  # fmt: skip
    assert ds.image_shape == (8, 8, 3) and 2 not in ds.train_labels and len(ds.test_labels) == 10
    np.testing.assert_array_equal(ds.train_images, expected.train_images)
    del config.model["image_shape"]  # the default: 28×28×1
    assert data.load_for_config(config).image_shape == (28, 28, 1)


def test_import_is_light():
    """`import jaxae.data` (every train/analyze start) pulls in none of the heavy libraries."""
    import subprocess
    import sys

    heavy = ("jax", "matplotlib", "sklearn", "tensorflow", "tensorflow_datasets")
    code = (
        "import sys, jaxae.data; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
