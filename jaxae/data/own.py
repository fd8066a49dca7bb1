"""What every own-data source shares: the train/test split, anomaly rows, scaling, the cache.

A source decodes its file(s) into Parts (all rows of one file or folder); `finish` makes the
Dataset. The split, when the user gives one source and no test part: a seeded random
`test_fraction` of the rows, drawn by numpy.random.default_rng(split_seed) — a seed of its own,
not the run's, so every seed of a sweep sees the same test rows — rounded to the nearest row,
at least one row in each split; both splits keep file order. Rows marked as anomalies are never
trained on: with one source they all go to test (the normal rows are split as above), with an
explicit test part the training part's anomalies are dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxae.data import cache, scaling, stream
from jaxae.data.core import DataFileError, Dataset, LoadRequest


@dataclasses.dataclass(frozen=True)
class Part:
    """All rows of one file or folder, decoded.

    x: [N, H, W, C] uint8 / float32 images, or [N, D] numeric features (ndarray or np.memmap);
    labels [N] int32 or None; anomaly [N] bool or None; where: the path, for messages.
    """

    x: Any
    labels: np.ndarray | None
    anomaly: np.ndarray | None
    where: str


def split_indices(
    n: int, fraction: float, seed: int, anomaly: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) sorted row indices of n rows, as the module docstring says."""
    normal = np.arange(n) if anomaly is None else np.flatnonzero(~anomaly)
    if not 0 < fraction < 1:
        raise DataFileError(
            f"dataset.test_fraction must be in (0, 1), got {fraction}; e.g. "
            f"--config.dataset.test_fraction=0.2, or give a test file with dataset.test_path"
        )
    if len(normal) < 2:
        raise DataFileError(f"{n} rows ({len(normal)} normal) cannot be split into train and test")
    k = min(max(int(round(fraction * len(normal))), 1), len(normal) - 1)
    chosen = normal[np.random.default_rng(seed).permutation(len(normal))[:k]]
    test = np.sort(chosen if anomaly is None else np.concatenate([chosen, np.flatnonzero(anomaly)]))
    train = np.setdiff1d(normal, chosen)
    return train, test


def finish(
    request: LoadRequest,
    main: Part,
    test: Part | None,
    *,
    kind: str,
    source: str,
    feature_names: tuple[str, ...] = (),
    class_names: tuple[str, ...] = (),
) -> Dataset:
    """The Dataset of a source's main Part and optional test Part (split, scaled, anomalies)."""
    if test is None:
        train_idx, test_idx = split_indices(
            len(main.x), request.test_fraction, request.split_seed, main.anomaly
        )
        parts = [(main, train_idx), (main, test_idx)]
    else:
        keep = np.arange(len(main.x)) if main.anomaly is None else np.flatnonzero(~main.anomaly)
        parts = [(main, keep), (test, np.arange(len(test.x)))]
    if test is not None and (main.labels is None) != (test.labels is None):
        raise DataFileError(f"{main.where} and {test.where}: one has labels, the other not")
    fitted = None
    if kind == "vectors" and request.fitted_scaling is not None:  # a run's stored transform
        fitted = request.fitted_scaling
        if len(fitted.offset) != main.x.shape[1]:
            raise DataFileError(
                f"{main.where} has {main.x.shape[1]} features but the run was trained on "
                f"{len(fitted.offset)}; analyse it with the table it was trained on"
            )
    elif kind == "vectors":
        fitted = scaling.fit(
            request.scaling, _rows(main.x, parts[0][1]), feature_names, where=main.where
        )
    elif main.x.dtype != np.uint8:
        _check_unit_range(main, test)
    out: dict[str, Any] = {}
    for split, (part, idx) in zip(("train", "test"), parts, strict=True):
        out[f"{split}_images"] = _take(part.x, idx, fitted)
        labels = part.labels[idx] if part.labels is not None else np.zeros(len(idx), np.int32)
        out[f"{split}_labels"] = labels.astype(np.int32)
    anomaly = parts[1][0].anomaly
    all_labels = [p.labels for p in (main, test) if p is not None and p.labels is not None]
    num_classes = max([int(y.max()) + 1 for y in all_labels if y.size] or [1])
    return Dataset(
        name=request.name,
        num_classes=max(num_classes, len(class_names)),
        source=source,
        kind=kind,
        feature_names=feature_names,
        class_names=class_names,
        test_anomaly=None if anomaly is None else anomaly[parts[1][1]].astype(bool),
        scaling=fitted,
        **out,
    )


def _rows(x: Any, idx: np.ndarray) -> Any:
    """x[idx] without reading a memmap into memory (a streaming view instead)."""
    return stream.Rows(x, idx) if isinstance(x, np.memmap) else x[idx]


def _take(x: Any, idx: np.ndarray, fitted: scaling.Scaling | None) -> Any:
    """Rows idx of x as the Dataset holds them: images as they are, vectors scaled to
    [n, 1, 1, D] float32; a memmap becomes a streaming view with the same transform."""
    if fitted is None:
        return _rows(x, idx)

    def transform(rows: np.ndarray) -> np.ndarray:
        return fitted.apply(rows).reshape(len(rows), 1, 1, -1)

    if isinstance(x, np.memmap):
        return stream.Rows(x, idx, shape=(1, 1, x.shape[1]), dtype=np.float32, transform=transform)
    return transform(x[idx])


def _check_unit_range(main: Part, test: Part | None) -> None:
    """Float images must lie in [0, 1] (the stated range of float image arrays)."""
    for part in (main, test):
        if part is None or isinstance(part.x, np.memmap):  # a streamed file is not read twice
            continue
        if part.x.size and (part.x.min() < 0 or part.x.max() > 1):
            raise DataFileError(
                f"{part.where}: float images span [{part.x.min():g}, {part.x.max():g}]; float "
                f"images must lie in [0, 1] (divide by 255, or save them as uint8)"
            )


def cache_name(kind: str, *parts: Any) -> str:
    """A cache entry name for an own source: its kind and a hash of what decoding depended on."""
    digest = hashlib.sha1(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


def cached(
    name: str, paths: list, depends: Any, decode: Callable[[], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], bool]:
    """(decode()'s arrays, False), or (the cached copy, True) while `paths` are unchanged."""
    stamp = cache.file_stamp(paths)
    key = cache.key(name, json.dumps(depends, default=str), stamp)
    arrays = cache.read_arrays(name, key)
    if arrays is not None:
        return arrays, True
    arrays = decode()
    cache.write_arrays(name, key, **arrays)
    return arrays, False
