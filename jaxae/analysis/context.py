"""What every analysis shares: the run, its data and cached forward passes (Context), Limits."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxae import data, losses
from jaxae.analysis import figures
from jaxae.analysis.load import Run
from jaxae.runtime.batching import map_over_batches


class Skipped(Exception):
    """An analysis that does not apply to this run; the message says why (goes to analysis.json)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """How much data each analysis uses (smaller in tests; the defaults suit a laptop CPU)."""

    eval_examples: int = 10000  # test images for metrics, codes and anomaly scores
    tsne_points: int = 1000
    probe_train: int = 5000  # training images for the linear probe and the PCA baselines
    probe_test: int = 2000
    pca_train: int = 60000  # training images for the PCA subspace of a linear run
    nll_examples: int = 500
    nll_samples: int = 100  # importance samples per image
    batch_size: int = 250


class Context:
    """The run, its data and cached forward passes shared by the analyses; figures go to outdir.

    Every reconstruction here is the model in eval mode: VAEs decode the mean code mu.
    """

    def __init__(self, run: Run, dataset: data.Dataset, outdir: pathlib.Path, limits: Limits):
        self.run, self.dataset, self.outdir, self.limits = run, dataset, outdir, limits
        n = min(limits.eval_examples, len(dataset.test_images))
        self.x_eval = data.to_float(dataset.test_images[:n])  # [N, H, W, C] float32
        self.y_eval = dataset.test_labels[:n]  # [N] int32
        self.batch_size = min(limits.batch_size, n)
        self.names = list(dataset.class_names) or figures.class_names(
            dataset.name, dataset.num_classes
        )
        self.key = jax.random.PRNGKey(run.config.seed)
        self.figures: list[str] = []

    def batched(self, fn: Callable, x: np.ndarray, key: jax.Array | None = None) -> Any:
        """fn over x [N, ...] in padded batches of one size: one compile; outputs [N, ...].

        With `key`, fn(batch, key_i) gets fold_in(key, start) for the batch starting at start.
        """
        return map_over_batches(fn, x, self.batch_size, key=key)

    def codes(self, x: np.ndarray) -> np.ndarray:
        """x [N, H, W, C] → codes [N, ...] as the decoder takes them (mu for VAEs)."""
        return self.batched(self.run.code, x)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """codes [N, ...] → images [N, H, W, C] in [0, 1]."""
        return self.batched(self.run.decode, z)

    @functools.cached_property
    def eval_logits(self) -> np.ndarray:
        """Decoder logits [N, H, W, C] of the eval images, from the mean code for VAEs."""
        return self.batched(self.run.logits, self.x_eval)

    @functools.cached_property
    def eval_metrics(self) -> dict[str, np.ndarray]:
        """Per-example mse, bce, psnr, ssim of the eval set: name → [N]."""
        filter_size = min(11, *self.run.image_shape[:2])
        fn = functools.partial(image_metrics, filter_size=filter_size)
        pairs = np.stack([self.eval_logits, self.x_eval], axis=1)  # [N, 2, H, W, C]
        return self.batched(lambda p: fn(p[:, 0], p[:, 1]), pairs)

    @functools.cached_property
    def eval_codes(self) -> np.ndarray:
        """Codes [N, ...] of the eval images (mu for VAEs)."""
        return self.codes(self.x_eval)

    @functools.cached_property
    def eval_codes_flat(self) -> np.ndarray:
        """Codes of the eval images, flattened: [N, K]."""
        return self.eval_codes.reshape(len(self.eval_codes), -1)

    def save(self, fig, name: str) -> None:
        """Writes `fig` as outdir/NAME.png and records it as a figure of the current analysis."""
        self.figures.append(figures.save(fig, self.outdir / f"{name}.png"))


@functools.partial(jax.jit, static_argnames="filter_size")
def image_metrics(logits: jax.Array, x: jax.Array, filter_size: int) -> dict[str, jax.Array]:
    """logits, x [B, H, W, C] → per-example mse, bce (mean over pixels), psnr (dB), ssim: [B]."""
    recon = jax.nn.sigmoid(logits)
    bce = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, x).reshape(len(x), -1), axis=-1)
    return {
        "mse": losses.mse(logits, x),
        "bce": bce,
        "psnr": losses.psnr(recon, x),
        "ssim": _ssim(recon, x, filter_size=filter_size),
    }


def one_per_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first example of each class (sorted by class), at most n; else the first n.

    labels [N] → indices [≤ n].
    """
    classes = np.unique(labels)
    idx = np.array([int(np.argmax(labels == c)) for c in classes][:n])
    if len(idx) < min(n, len(labels)):
        rest = [i for i in range(len(labels)) if i not in set(idx.tolist())]
        idx = np.concatenate([idx, rest[: n - len(idx)]]).astype(int)
    return idx


def _ssim(recon, x, *, filter_size):
    """dm-pix's SSIM, imported on first use so that `jaxae.load` starts without it."""
    import dm_pix

    return dm_pix.ssim(recon, x, filter_size=filter_size)
