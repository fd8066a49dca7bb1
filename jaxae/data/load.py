"""load_dataset and load_for_config: the name -> loader table, the shape check, subsets."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from jaxae.data import generated, real
from jaxae.data.core import Dataset, ImageShapeError, LoadRequest, fmt_shape

# Every dataset name and the function that makes it from a LoadRequest. A new source is a module
# with such a function plus one entry here; its name then shows up in DATASETS (and so in the
# config's validation and the unknown-name message).
LOADERS: dict[str, Callable[[LoadRequest], Dataset]] = {
    **dict.fromkeys(real.SPECS, real.load),
    "digits": generated.load_digits,
    "synthetic": generated.load_synthetic,
}
DATASETS: tuple[str, ...] = tuple(LOADERS)


def load_dataset(
    name: str,
    *,
    data_dir: str = "",
    max_train_examples: int = 0,
    max_test_examples: int = 0,
    exclude_class: int = -1,
    image_shape: tuple[int, int, int] | Sequence[int] | None = None,
    seed: int = 0,
    download: bool = True,
) -> Dataset:
    """Loads a dataset as uint8 images [N, H, W, C] and int32 labels [N].

    Real data (fashion_mnist, mnist, cifar10) comes from the first source that works: a
    prepared TFDS directory (data_dir, $TFDS_DATA_DIR or ~/tensorflow_datasets) read through
    tfds.data_source (array_record, no TensorFlow); IDX files in $JAXAE_DATA_DIR or
    /usr/share/datasets/<name>; a TFDS download when `download` and $JAXAE_NO_DOWNLOAD is
    unset. A source is decoded once, then read from cache_dir()/<name>.npz while its files'
    sizes and mtimes are unchanged. Nothing found -> DatasetNotFoundError (one line).
    'digits' (scikit-learn, 8x8x1) and 'synthetic' (procedural, default 28x28x1 or
    `image_shape`) are generated from `seed`; real data ignores `seed`.

    Afterwards `exclude_class` >= 0 drops that class from train only (anomaly detection), and
    max_train_examples / max_test_examples > 0 keep the first N examples.
    """
    key = name.strip().lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if max_train_examples < 0 or max_test_examples < 0:
        raise ValueError("max_train_examples and max_test_examples must be >= 0 (0 = all)")
    wanted = None if image_shape is None else tuple(int(d) for d in image_shape)
    if wanted is not None and (len(wanted) != 3 or min(wanted) <= 0):
        raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {image_shape}")

    request = LoadRequest(
        name=key,
        data_dir=data_dir,
        image_shape=wanted,
        max_train_examples=max_train_examples,
        max_test_examples=max_test_examples,
        seed=seed,
        download=download,
    )
    ds = LOADERS[key](request)
    if wanted is not None and ds.image_shape != wanted:
        raise ImageShapeError(
            f"dataset {key} has images {fmt_shape(ds.image_shape)} but the model expects "
            f"{fmt_shape(wanted)}; set --config.model.image_shape or pick another dataset"
        )
    return _subset(ds, max_train_examples, max_test_examples, exclude_class)


def load_for_config(config: Any) -> Dataset:
    """The dataset a run's config names (`config.dataset`, `config.seed`), at the model's
    image shape (`config.model.image_shape`, default 28×28×1). Train, analysis and sweep share it.
    """
    return load_dataset(
        config.dataset.name,
        data_dir=config.dataset.data_dir,
        max_train_examples=config.dataset.max_train_examples,
        max_test_examples=config.dataset.max_test_examples,
        exclude_class=config.dataset.exclude_class,
        image_shape=tuple(config.model.get("image_shape", (28, 28, 1))),
        seed=config.seed,
    )


def _subset(ds: Dataset, max_train: int, max_test: int, exclude_class: int) -> Dataset:
    """ds with exclude_class dropped from train (if >= 0), then the first max_train / max_test
    examples of each split (if > 0)."""
    train_x, train_y = ds.train_images, ds.train_labels
    if exclude_class >= 0:
        if exclude_class >= ds.num_classes:
            raise ValueError(
                f"exclude_class={exclude_class} but {ds.name} has classes 0..{ds.num_classes - 1}"
            )
        keep = train_y != exclude_class
        train_x, train_y = train_x[keep], train_y[keep]
    if max_train:
        train_x, train_y = train_x[:max_train], train_y[:max_train]
    test_x, test_y = ds.test_images, ds.test_labels
    if max_test:
        test_x, test_y = test_x[:max_test], test_y[:max_test]
    return dataclasses.replace(
        ds, train_images=train_x, train_labels=train_y, test_images=test_x, test_labels=test_y
    )
