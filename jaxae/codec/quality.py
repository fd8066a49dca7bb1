"""Image quality of decoded uint8 images: PSNR and MS-SSIM (with as many scales as fit).

MS-SSIM (Wang et al. 2003) uses 5 scales and an 11-tap Gaussian window, which needs images of
at least 176 px. A 28×28 image has room for 3 scales (28, 14, 7 px) with a 7-tap window of the
standard σ = 1.5 (±2σ): at 7 px that window fits once. The weights are the first three of
Wang's five, renormalized to sum to one, so that the coarsest scale kept carries the luminance
term as in the full method.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

WANG_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW, SIGMA = 7, 1.5


def psnr(decoded: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB of uint8 images [N, H, W, C] (peak 255); inf where identical."""
    err = (decoded.astype(np.float64) - original.astype(np.float64)) ** 2
    mse = err.reshape(len(err), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(255.0**2 / mse)


def num_scales(height: int, width: int) -> int:
    """Scales whose image still holds one window: 28×28 -> 3 (28, 14, 7), up to Wang's 5."""
    n, size = 0, min(height, width)
    while n < len(WANG_WEIGHTS) and size >= WINDOW:
        n, size = n + 1, size // 2
    return n


@functools.partial(jax.jit, static_argnames="scales")
def _ms_ssim(a: jax.Array, b: jax.Array, scales: int) -> jax.Array:
    """a, b [N, H, W] float in 0..255 -> MS-SSIM [N]."""
    t = jnp.arange(WINDOW, dtype=jnp.float32) - (WINDOW - 1) / 2
    g = jnp.exp(-(t**2) / (2 * SIGMA**2))
    g = (g / g.sum()).astype(jnp.float32)
    kernel = (g[:, None] * g[None, :])[:, :, None, None]  # [7, 7, 1, 1] HWIO

    def blur(x):  # [N, H, W] -> [N, H - 6, W - 6]
        y = jax.lax.conv_general_dilated(
            x[..., None], kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return y[..., 0]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    weights = jnp.array(WANG_WEIGHTS[:scales]) / sum(WANG_WEIGHTS[:scales])
    result = jnp.ones(a.shape[0])
    for s in range(scales):
        mu_a, mu_b = blur(a), blur(b)
        var_a = blur(a * a) - mu_a**2
        var_b = blur(b * b) - mu_b**2
        cov = blur(a * b) - mu_a * mu_b
        cs = jnp.mean((2 * cov + c2) / (var_a + var_b + c2), axis=(1, 2))
        value = cs
        if s == scales - 1:  # the coarsest scale adds the luminance term
            lum = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
            value = jnp.mean(lum * (2 * cov + c2) / (var_a + var_b + c2), axis=(1, 2))
        result = result * jnp.maximum(value, 0.0) ** weights[s]
        if s < scales - 1:  # 2×2 average pooling (odd edges dropped)
            h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
            a = a[:, :h, :w].reshape(a.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
            b = b[:, :h, :w].reshape(b.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    return result


def ms_ssim(decoded: np.ndarray, original: np.ndarray, scales: int | None = None) -> np.ndarray:
    """Per-image MS-SSIM of uint8 images [N, H, W, C] (mean over channels): [N]."""
    n, h, w, c = original.shape
    scales = scales or num_scales(h, w)
    to_planes = lambda x: np.moveaxis(x, -1, 1).reshape(n * c, h, w).astype(np.float32)  # noqa: E731
    out = np.asarray(_ms_ssim(to_planes(decoded), to_planes(original), scales))
    return out.reshape(n, c).mean(axis=1)
