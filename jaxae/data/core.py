"""Dataset (uint8 NHWC images or float32 feature vectors, int32 labels), LoadRequest, to_float
and the user errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxae.errors import UserError


class DatasetNotFoundError(UserError, FileNotFoundError):
    """No source had the dataset; the message is one line naming every place looked and the fix."""


class ImageShapeError(UserError, ValueError):
    """The dataset's images do not have the shape the model expects; the message is one line."""


class DataFileError(UserError, ValueError):
    """A file the user pointed at is damaged or holds data jaxae cannot train on (non-numeric
    columns, NaNs, mixed image sizes...); the message is one line naming the file and the fix."""


class UnusedFieldError(UserError, ValueError):
    """A dataset field was set that the chosen source does not read; the message names it."""


KINDS = ("images", "vectors")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test split held on the host, rank 4 so every model takes it as [B, H, W, C].

    kind 'images': uint8 pixels [N, H, W, C] (to_float maps them to [0, 1]), or float32 already
    in [0, 1]. kind 'vectors': float32 features [N, 1, 1, D], already scaled by `scaling` (fitted
    on the training split; its `to_json()` is stored with the run). Arrays may be np.memmap or a
    streaming view (jaxae.data.stream.Rows) for sources larger than host memory.
    """

    name: str
    train_images: np.ndarray  # [N, H, W, C] uint8 or float32
    train_labels: np.ndarray  # [N] int32 (all 0 when the source has no labels)
    test_images: np.ndarray  # [M, H, W, C]
    test_labels: np.ndarray  # [M] int32
    num_classes: int  # 1 when the source has no labels
    source: str  # e.g. 'idx:/usr/share/datasets/fashion-mnist', 'tfds:...', 'cache:...'
    kind: str = "images"
    feature_names: tuple[str, ...] = ()  # vectors: one name per feature D
    class_names: tuple[str, ...] = ()  # e.g. a folder's class subfolders; () = 0..K-1
    test_anomaly: np.ndarray | None = None  # [M] bool: rows the source marks as anomalies
    scaling: Any = None  # vectors: the fitted jaxae.data.scaling.Scaling, else None

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype not in (np.uint8, np.float32) or images.ndim != 4:
                raise ValueError(
                    f"{self.name} {split}_images must be uint8 or float32 [N, H, W, C], "
                    f"got {images.dtype} {images.shape}"
                )
            if labels.dtype != np.int32 or labels.shape != images.shape[:1]:
                raise ValueError(
                    f"{self.name} {split}_labels must be int32 [{images.shape[0]}], "
                    f"got {labels.dtype} {labels.shape}"
                )
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise ValueError(
                f"{self.name} train and test images differ in shape: "
                f"{self.train_images.shape[1:]} vs {self.test_images.shape[1:]}"
            )
        if self.kind not in KINDS:
            raise ValueError(f"Dataset.kind must be one of {KINDS}, got {self.kind!r}")
        anomaly = self.test_anomaly
        if anomaly is not None and (
            anomaly.dtype != bool or anomaly.shape != (len(self.test_labels),)
        ):
            raise ValueError(f"{self.name} test_anomaly must be bool [{len(self.test_labels)}]")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one example ((1, 1, D) for vectors)."""
        h, w, c = self.train_images.shape[1:]
        return int(h), int(w), int(c)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, kind={self.kind}, train={self.train_images.shape[0]}, "
            f"test={self.test_images.shape[0]}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes}, source={self.source!r})"
        )


@dataclasses.dataclass(frozen=True)
class LoadRequest:
    """What load_dataset asks of a source: the arguments that can change which arrays it makes.

    A source may use max_*_examples to make fewer examples; load_dataset cuts to them anyway.
    """

    name: str  # canonical (lower case, '_' for '-'): a key of the loader table
    data_dir: str = ""  # '' = the source's default places
    image_shape: tuple[int, int, int] | None = None  # (H, W, C) the model expects; None = any
    max_train_examples: int = 0  # 0 = all
    max_test_examples: int = 0  # 0 = all
    seed: int = 0
    download: bool = True
    # Own data (folder:, npy:, npz:, csv:, tfds:, sklearn: names); see load_dataset.
    path: str = ""  # the part of the name after 'kind:'
    test_path: str = ""  # a separate test file; '' = split the one source
    test_fraction: float = 0.2
    split_seed: int = 0
    label_column: str = ""
    anomaly_column: str = ""
    scaling: str = "minmax"
    resize: bool = False
    stream: str = "auto"
    fitted_scaling: Any = None  # a stored jaxae.data.scaling.Scaling to apply instead of fitting


def to_float(images: Any) -> Any:
    """Model input from a Dataset array (numpy or jax), same shape and kind: uint8 pixels ->
    float32 in [0, 1]; float32 (scaled features, float images, or an already converted batch)
    unchanged, so applying it twice is harmless."""
    if images.dtype == np.float32:
        return images
    if images.dtype != np.uint8:
        # Any other dtype means a caller skipped the Dataset; fail loudly instead of guessing.
        raise TypeError(f"to_float expects uint8 or float32 arrays, got {images.dtype}")
    return images.astype(np.float32) / 255.0


def one_line(err: BaseException, limit: int = 160) -> str:
    """`Type: message` of an exception on one line, cut to `limit` characters for error lists."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fmt_shape(shape: Sequence[int]) -> str:
    """(28, 28, 1) -> '28×28×1', the form error messages use."""
    return "×".join(str(d) for d in shape)
