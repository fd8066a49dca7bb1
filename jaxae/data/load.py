"""load_dataset and load_for_config: the name -> loader table, the shape check, subsets."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

from jaxae.data import arrays, folder, generated, real, stream, table, tfds
from jaxae.data.core import Dataset, ImageShapeError, LoadRequest, UnusedFieldError, fmt_shape

# Every dataset name (or `kind:` of the own-data names `kind:path`) and the function that makes
# it from a LoadRequest. A new source is a module with such a function plus one entry here; its
# name then shows up in DATASETS (and so in the config's validation and the unknown-name message).
LOADERS: dict[str, Callable[[LoadRequest], Dataset]] = {
    **dict.fromkeys(real.SPECS, real.load),
    "digits": generated.load_digits,
    "synthetic": generated.load_synthetic,
    "folder": folder.load,
    "array": arrays.load,
    "csv": table.load_csv,
    "parquet": table.load_parquet,
    "sklearn": table.load_sklearn,
    "tfds": tfds.load_any,
}
DATASETS: tuple[str, ...] = tuple(LOADERS)
# The kinds whose name carries a path or TFDS name: `kind:path`.
PATH_KINDS = ("folder", "array", "csv", "parquet", "sklearn", "tfds")
_SPLIT = ("test_fraction", "split_seed")
# The source-specific LoadRequest fields each source reads; setting any other is an error.
FIELDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(real.SPECS, ("data_dir",)),
    "folder": ("test_path", *_SPLIT, "resize"),
    "array": ("test_path", *_SPLIT, "scaling", "stream"),
    "csv": ("test_path", *_SPLIT, "label_column", "anomaly_column", "scaling"),
    "parquet": ("test_path", *_SPLIT, "label_column", "anomaly_column", "scaling"),
    "sklearn": (*_SPLIT, "label_column", "anomaly_column", "scaling"),
    "tfds": ("data_dir", *_SPLIT),
}
OPTIONS = ("data_dir", "test_path", *_SPLIT, "label_column", "anomaly_column", "scaling")
OPTIONS += ("resize", "stream")


def parse_name(name: str) -> tuple[str, str]:
    """'fashion-mnist' -> ('fashion_mnist', ''); 'folder:/data/pngs' -> ('folder', '/data/pngs').

    Unknown names raise ValueError listing the valid ones (and the `kind:` form for a path).
    """
    kind, sep, path = name.partition(":")
    key = kind.strip().lower().replace("-", "_")
    if sep and key in PATH_KINDS and path.strip():
        return key, path.strip()
    if not sep and key in LOADERS and key not in PATH_KINDS:
        return key, ""
    hint = ""
    if pathlib.Path(name).expanduser().exists():
        guess = {".npy": "array", ".npz": "array", ".csv": "csv", ".parquet": "parquet"}.get(
            pathlib.Path(name).suffix.lower()
        )
        hint = f"; for your own data write --config.dataset.name={guess or 'folder'}:{name}"
    elif key in PATH_KINDS:
        hint = f"; {key} needs its path: {key}:PATH"
    builtin = ", ".join(n for n in DATASETS if n not in PATH_KINDS)
    own = "folder:DIR, array:FILE.npy|.npz, csv:FILE, parquet:FILE, sklearn:NAME, tfds:NAME"
    raise ValueError(f"unknown dataset {name!r}{hint}; valid names: {builtin}, {own}")


def load_dataset(
    name: str,
    *,
    max_train_examples: int = 0,
    max_test_examples: int = 0,
    exclude_class: int = -1,
    image_shape: tuple[int, int, int] | Sequence[int] | None = None,
    seed: int = 0,
    download: bool = True,
    fitted_scaling: Any = None,
    **options: Any,
) -> Dataset:
    """Loads a dataset as images [N, H, W, C] (uint8, or float32 in [0, 1]) or scaled float32
    vectors [N, 1, 1, D], with int32 labels [N].

    Built-in names: real data (fashion_mnist, mnist, cifar10) comes from the first source that
    works: a prepared TFDS directory (data_dir, $TFDS_DATA_DIR or ~/tensorflow_datasets) read
    through tfds.data_source (array_record, no TensorFlow); IDX files in $JAXAE_DATA_DIR or
    /usr/share/datasets/<name>; a TFDS download when `download` and $JAXAE_NO_DOWNLOAD is
    unset. An explicit data_dir or $JAXAE_DATA_DIR that lacks the data or holds a damaged
    file is an error naming it, never a fall-through to another copy. A source is decoded once,
    then read from cache_dir() while its files' sizes and mtimes are unchanged. Nothing found
    -> DatasetNotFoundError (one line). 'digits' (scikit-learn, 8x8x1) and 'synthetic'
    (procedural, default 28x28x1 or `image_shape`) are generated from `seed`.

    Own data, `kind:path`: folder:DIR (jaxae.data.folder), array:FILE.npy|.npz
    (jaxae.data.arrays), csv:FILE.csv, parquet:FILE.parquet and sklearn:NAME (jaxae.data.table),
    tfds:NAME (jaxae.data.tfds.load_any); one source without a test part is split as
    jaxae.data.own says. `options` are the LoadRequest fields data_dir, test_path,
    test_fraction, split_seed, label_column, anomaly_column, scaling, resize, stream; one that
    the source does not read (FIELDS) and that differs from its default raises UnusedFieldError.
    `fitted_scaling` (a run's stored jaxae.data.scaling.Scaling) is applied to vectors instead
    of fitting anew.

    Afterwards `exclude_class` >= 0 drops that class from train only (anomaly detection), and
    max_train_examples / max_test_examples > 0 keep the first N examples.
    """
    key, path = parse_name(name)
    if max_train_examples < 0 or max_test_examples < 0:
        raise ValueError("max_train_examples and max_test_examples must be >= 0 (0 = all)")
    wanted = None if image_shape is None else tuple(int(d) for d in image_shape)
    if wanted is not None and (len(wanted) != 3 or min(wanted) <= 0):
        raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {image_shape}")
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"load_dataset got unknown options {sorted(unknown)}; known: {OPTIONS}")
    check_fields(key, options)
    request = LoadRequest(
        name=key if not path else f"{key}:{path}",
        image_shape=wanted,
        max_train_examples=max_train_examples,
        max_test_examples=max_test_examples,
        seed=seed,
        download=download,
        path=path,
        fitted_scaling=fitted_scaling,
        **options,
    )
    ds = LOADERS[key](request)
    if wanted is not None and ds.image_shape != wanted:
        fix = (
            f"set --config.model.image_shape='{ds.image_shape}' (the table has "
            f"{ds.image_shape[2]} feature columns)"
            if ds.kind == "vectors"
            else "set --config.model.image_shape or pick another dataset"
        )
        raise ImageShapeError(
            f"dataset {request.name} has {'vectors' if ds.kind == 'vectors' else 'images'} "
            f"{fmt_shape(ds.image_shape)} but the model expects {fmt_shape(wanted)}; {fix}"
        )
    return _subset(ds, max_train_examples, max_test_examples, exclude_class)


def check_fields(key: str, options: dict[str, Any]) -> None:
    """UnusedFieldError when an option differs from its default but source `key` ignores it."""
    defaults = LoadRequest(name=key)
    for field, value in options.items():
        if field not in FIELDS.get(key, ()) and value != getattr(defaults, field):
            readers = [k for k, fs in FIELDS.items() if field in fs and k not in real.SPECS]
            hint = (
                "; for a folder of images use --config.dataset.name=folder:" + str(value)
                if field == "data_dir"
                else f" (it is read by {', '.join(f'{k}:' for k in readers)})"
            )
            raise UnusedFieldError(
                f"dataset.{field}={value!r} is not used by dataset {key!r}{hint}; "
                f"remove --config.dataset.{field}"
            )


def load_for_config(config: Any, fitted_scaling: Any = None) -> Dataset:
    """The dataset a run's config names (`config.dataset`, `config.seed`), at the model's
    image shape (`config.model.image_shape`, default 28×28×1). Train, analysis and sweep share it;
    the analysis passes the run's stored `fitted_scaling` (jaxae.data.scaling.load(workdir)).
    """
    fields = config.dataset
    ds = load_dataset(
        fields.name,
        max_train_examples=fields.max_train_examples,
        max_test_examples=fields.max_test_examples,
        exclude_class=fields.exclude_class,
        image_shape=tuple(config.model.get("image_shape", (28, 28, 1))),
        seed=config.seed,
        fitted_scaling=fitted_scaling,
        **{f: fields[f] for f in OPTIONS if f in fields},
    )
    _check_model_takes(ds, config.model.get("name", ""))
    return ds


def _check_model_takes(ds: Dataset, model_name: str) -> None:
    """Vectors [N, 1, 1, D] need a fully connected model; a conv model cannot pool a 1×1 map."""
    from jaxae import models  # lazy: jax and flax; load_for_config runs where they are loaded

    cls = models.MODELS.get(model_name)
    if ds.kind == "vectors" and cls is not None and cls.__module__ != "jaxae.models.fc":
        fc = ", ".join(n for n, c in models.MODELS.items() if c.__module__ == "jaxae.models.fc")
        raise ImageShapeError(
            f"dataset {ds.name} holds feature vectors (a table) and model {model_name!r} is "
            f"convolutional; use a fully connected model: {fc} (e.g. --config configs/vanilla.py)"
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
        train_x, train_y = _rows(train_x, keep), train_y[keep]
    if max_train:
        train_x, train_y = _rows(train_x, slice(max_train)), train_y[:max_train]
    test_x, test_y, anomaly = ds.test_images, ds.test_labels, ds.test_anomaly
    if max_test:
        test_x, test_y = _rows(test_x, slice(max_test)), test_y[:max_test]
        anomaly = None if anomaly is None else anomaly[:max_test]
    return dataclasses.replace(
        ds,
        train_images=train_x,
        train_labels=train_y,
        test_images=test_x,
        test_labels=test_y,
        test_anomaly=anomaly,
    )


_rows = stream.take
