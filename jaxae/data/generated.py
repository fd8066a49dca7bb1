"""Generated datasets: scikit-learn's 8×8 digits and procedural shapes ('synthetic'), by seed."""

from __future__ import annotations

import numpy as np

from jaxae.data.core import Dataset, LoadRequest

SYNTHETIC_NUM_CLASSES = 10
SYNTHETIC_DEFAULT_SIZES = (2048, 512)  # (train, test)


def load_digits(request: LoadRequest) -> Dataset:
    """The 'digits' loader: digits(seed); sizes are cut afterwards like real data's."""
    return digits(request.seed)


def load_synthetic(request: LoadRequest) -> Dataset:
    """The 'synthetic' loader: images at the requested shape (default 28×28×1), made only as many
    as max_train_examples / max_test_examples ask for (default SYNTHETIC_DEFAULT_SIZES)."""
    return synthetic(
        request.image_shape or (28, 28, 1),
        request.max_train_examples or SYNTHETIC_DEFAULT_SIZES[0],
        request.max_test_examples or SYNTHETIC_DEFAULT_SIZES[1],
        request.seed,
    )


def digits(seed: int) -> Dataset:
    """scikit-learn's bundled 1797 8×8 digits (values 0..16) -> uint8 [N, 8, 8, 1] in 0..255,
    split 80/20 into train/test by a permutation drawn from seed."""
    import sklearn.datasets  # lazy: importing scikit-learn is slow, and only digits needs it

    bunch = sklearn.datasets.load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(0.2 * len(images)))
    test, train = order[:n_test], order[n_test:]
    return Dataset(
        name="digits",
        train_images=images[train],
        train_labels=labels[train],
        test_images=images[test],
        test_labels=labels[test],
        num_classes=10,
        source="sklearn:load_digits",
    )


def synthetic(image_shape: tuple[int, int, int], n_train: int, n_test: int, seed: int) -> Dataset:
    """n_train / n_test procedural images [n, *image_shape] of 10 classes; train and test come from
    independent streams of seed, so one split's size does not change the other's images."""
    train = _synthetic_split(image_shape, n_train, np.random.default_rng([seed, 0]))
    test = _synthetic_split(image_shape, n_test, np.random.default_rng([seed, 1]))
    return Dataset(
        name="synthetic",
        train_images=train[0],
        train_labels=train[1],
        test_images=test[0],
        test_labels=test[1],
        num_classes=SYNTHETIC_NUM_CLASSES,
        source=f"synthetic:seed={seed}",
    )


def _step(x: np.ndarray) -> np.ndarray:
    """Smooth 0->1 step (logistic via tanh, which cannot overflow)."""
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _synthetic_split(
    image_shape: tuple[int, int, int], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n images [n, H, W, C] uint8 of 10 shape classes, balanced labels [n] int32.

    Classes: 0 horizontal bar, 1 vertical bar, 2 blob, 3 ring, 4 checker patch, 5 square,
    6 diagonal bar, 7 cross, 8 two blobs, 9 square frame; each with random centre, size,
    thickness, intensity (and colour when C > 1) on a dim noisy background.
    """
    h, w, c = image_shape
    labels = rng.permutation(np.arange(n) % SYNTHETIC_NUM_CLASSES).astype(np.int32)
    f32 = np.float32
    # Per-example parameters in coordinates where the image spans [0, 1]^2.
    cy, cx = (rng.uniform(0.3, 0.7, (2, n, 1, 1))).astype(f32)
    size = rng.uniform(0.15, 0.3, (n, 1, 1)).astype(f32)
    thick = (size * rng.uniform(0.25, 0.45, (n, 1, 1))).astype(f32)
    amp = rng.uniform(0.6, 1.0, (n, 1, 1)).astype(f32)
    colour = rng.uniform(0.35, 1.0, (n, c)).astype(f32) if c > 1 else np.ones((n, 1), f32)
    background = rng.uniform(0.0, 0.08, (n, 1, 1, 1)).astype(f32)

    yy = ((np.arange(h, dtype=f32) + 0.5) / h)[None, :, None]
    xx = ((np.arange(w, dtype=f32) + 0.5) / w)[None, None, :]
    sharp = f32(2.0 * max(h, w))  # edges about one pixel wide at any resolution
    pattern = np.empty((n, h, w), f32)

    def box(dx: np.ndarray, dy: np.ndarray, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
        return _step(sharp * (hx - np.abs(dx))) * _step(sharp * (hy - np.abs(dy)))

    for k in range(SYNTHETIC_NUM_CLASSES):
        idx = np.flatnonzero(labels == k)
        if idx.size == 0:
            continue
        dy, dx = yy - cy[idx], xx - cx[idx]
        s, t = size[idx], thick[idx]
        if k == 0:
            p = box(dx, dy, s, t / 2)
        elif k == 1:
            p = box(dx, dy, t / 2, s)
        elif k == 2:
            p = np.exp(-(dx**2 + dy**2) / (2 * (s / 2) ** 2))
        elif k == 3:
            sigma = np.maximum(t / 3, f32(0.6 / min(h, w)))
            p = np.exp(-((np.sqrt(dx**2 + dy**2) - s) ** 2) / (2 * sigma**2))
        elif k == 4:
            cell = s / 2
            sign = np.sin(np.pi * dx / cell) * np.sin(np.pi * dy / cell) > 0
            p = box(dx, dy, s, s) * np.where(sign, f32(1.0), f32(0.15))
        elif k == 5:
            p = box(dx, dy, s, s)
        elif k == 6:
            u, v = (dx + dy) / np.sqrt(f32(2)), (dx - dy) / np.sqrt(f32(2))
            p = box(u, v, s * 1.2, t / 2)
        elif k == 7:
            p = np.maximum(box(dx, dy, s, t / 2), box(dx, dy, t / 2, s))
        elif k == 8:
            sigma2 = 2 * (s / 3) ** 2
            p = np.maximum(
                np.exp(-((dx - 0.8 * s) ** 2 + dy**2) / sigma2),
                np.exp(-((dx + 0.8 * s) ** 2 + dy**2) / sigma2),
            )
        else:
            p = np.clip(box(dx, dy, s, s) - box(dx, dy, s - t, s - t), 0.0, 1.0)
        pattern[idx] = p

    # Work in 0..255 in place: this part dominates the time for large colour images.
    images = rng.standard_normal((n, h, w, c), dtype=f32)
    images *= f32(0.02 * 255)
    images += pattern[..., None] * (amp[..., None] * colour[:, None, None, :] * f32(255))
    images += background * f32(255) + f32(0.5)  # + 0.5: the uint8 cast below then rounds
    np.clip(images, 0.0, 255.0, out=images)
    return images.astype(np.uint8), labels
