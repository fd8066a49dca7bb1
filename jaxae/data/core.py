"""Dataset (uint8 NHWC images, int32 labels), LoadRequest, to_float and the user errors."""

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


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test split held on the host as uint8 NHWC images and int32 labels."""

    name: str
    train_images: np.ndarray  # [N, H, W, C] uint8
    train_labels: np.ndarray  # [N] int32
    test_images: np.ndarray  # [M, H, W, C] uint8
    test_labels: np.ndarray  # [M] int32
    num_classes: int
    source: str  # e.g. 'idx:/usr/share/datasets/fashion-mnist', 'tfds:...', 'cache:...'

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(
                    f"{self.name} {split}_images must be uint8 [N, H, W, C], "
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

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        h, w, c = self.train_images.shape[1:]
        return int(h), int(w), int(c)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.train_images.shape[0]}, "
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


def to_float(images: Any) -> Any:
    """uint8 images [..., H, W, C] (numpy or jax) -> float32 in [0, 1], same shape and kind."""
    if images.dtype != np.uint8:
        # A float input here would be divided by 255 twice; fail loudly instead.
        raise TypeError(f"to_float expects uint8 images, got {images.dtype}")
    return images.astype(np.float32) / 255.0


def one_line(err: BaseException, limit: int = 160) -> str:
    """`Type: message` of an exception on one line, cut to `limit` characters for error lists."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fmt_shape(shape: Sequence[int]) -> str:
    """(28, 28, 1) -> '28×28×1', the form error messages use."""
    return "×".join(str(d) for d in shape)
