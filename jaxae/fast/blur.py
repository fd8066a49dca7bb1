"""SSIM's Gaussian window as two matrix products: a `filter_fn` for `dm_pix.ssim`.

dm-pix blurs with a vmapped 1D `jnp.convolve` along each axis, which XLA:CPU runs as thousands
of tiny convolutions: 51 of the 67 ms of deep_fc's eval step at batch 500, a second per pass
over Fashion-MNIST's test set (benchmarks/ATTEMPTS.md, attempt 21). The same valid,
separable blur is a product with a band matrix on each side, which XLA runs as two dots.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def gaussian_window(size: int, sigma: float) -> jax.Array:
    """dm-pix's 1D SSIM window of `size` taps (normalised to sum 1): [size]."""
    half = size // 2
    shift = (2 * half - size + 1) / 2
    taps = jnp.exp(-0.5 * ((jnp.arange(size) - half + shift) / sigma) ** 2)
    return taps / jnp.sum(taps)


def band_matrix(n: int, window: jax.Array) -> jax.Array:
    """[n - k + 1, n] with row j holding the flipped window at columns j..j+k-1: B @ z is
    `jnp.convolve(z, window, mode="valid")` for a signal z [n]."""
    k = window.shape[0]
    rows = jnp.arange(n - k + 1)[:, None]
    cols = jnp.arange(n)[None, :]
    tap = cols - rows  # which tap of the flipped window meets column `cols` in output `rows`
    inside = (tap >= 0) & (tap < k)
    return jnp.where(inside, window[::-1][jnp.clip(tap, 0, k - 1)], 0.0)


def valid_gaussian_blur(
    filter_size: int = 11, filter_sigma: float = 1.5
) -> Callable[[jax.Array], jax.Array]:
    """`filter_fn(z)` for `dm_pix.ssim`: z [..., H, W, C] → [..., H - f + 1, W - f + 1, C], the
    blur dm-pix applies with the same `filter_size` and `filter_sigma` (to float rounding)."""
    window = gaussian_window(filter_size, filter_sigma)

    def blur(z: jax.Array) -> jax.Array:
        rows = band_matrix(z.shape[-3], window).astype(z.dtype)
        cols = band_matrix(z.shape[-2], window).astype(z.dtype)
        return jnp.einsum(
            "yh,...hwc,xw->...yxc", rows, z, cols, precision=jax.lax.Precision.HIGHEST
        )

    return blur
