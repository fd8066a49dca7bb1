"""The generated datasets: synthetic (seeded, balanced, any shape) and scikit-learn's digits."""

import numpy as np

from jaxae import data


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
