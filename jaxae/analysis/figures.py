"""Matplotlib helpers shared by the analyses: image grids, class colours and names, saving PNGs."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")  # files only: analysis runs on headless machines

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import StrMethodFormatter  # noqa: E402

from jaxae.analysis import files  # noqa: E402

CLASS_NAMES = {
    "fashion_mnist": (
        "T-shirt",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar10": (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
}
# One colour per feature kind, the same in every figure.
KIND_COLORS = {"codes": "C0", "raw pixels": "C1", "PCA": "C2", "train": "C0", "eval": "C3"}
THOUSANDS = StrMethodFormatter("{x:,.0f}")  # 1,254,145 rather than 1.25 with a 1e6 offset
plt.rcParams.update({"figure.dpi": 100, "axes.titlesize": 11, "axes.labelsize": 10})


def pca_solver(x: np.ndarray) -> str:
    """An exact scikit-learn PCA solver for x [N, D]: the D×D covariance when N ≫ D (60,000
    images: seconds instead of minutes for a full SVD), else the full SVD."""
    return "covariance_eigh" if x.shape[0] >= 10 * x.shape[1] else "full"


def class_names(dataset: str, num_classes: int) -> list[str]:
    """Human names of the classes of `dataset` ('0'..'9' when it has none)."""
    names = CLASS_NAMES.get(dataset)
    if names and len(names) == num_classes:
        return list(names)
    return [str(i) for i in range(num_classes)]


def class_color(label: int) -> tuple[float, float, float, float]:
    """The colour of class `label` in every scatter and bar chart (tab10, then tab20)."""
    cmap = plt.get_cmap("tab10" if label < 10 else "tab20")
    return cmap(label % cmap.N)


def show_image(ax, image: np.ndarray, title: str | None = None) -> None:
    """Draws one image [H, W, C] in [0, 1] (grey for C = 1) without ticks."""
    image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """images [rows·cols, H, W, C] → one mosaic [rows·(H+pad), cols·(W+pad), C], white gaps."""
    n, h, w, c = images.shape
    out = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, c), np.float32)
    for i in range(min(n, rows * cols)):
        r, q = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = images[i]
    return out


def save(fig, path: pathlib.Path) -> str:
    """Writes `fig` as PNG to `path` atomically, closes it and returns the file name."""

    def write(tmp: pathlib.Path) -> None:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", facecolor="white")

    try:
        files.replace_atomically(path, write)
    finally:
        plt.close(fig)
    return path.name
