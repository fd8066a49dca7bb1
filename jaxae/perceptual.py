"""Perceptual distortions: SSIM, MS-SSIM and feature-matching losses.

All take images in [0, 1] (logits for the losses), NHWC, and return one value per example.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

# Wang, Simoncelli & Bovik (2003): the exponents of the five scales, finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_FILTER = 5  # window of every scale (see ms_ssim)
MS_SSIM_SIGMA = 1.5 * MS_SSIM_FILTER / 11  # the 11-tap, sigma 1.5 window's shape at 5 taps


def ssim(a: jax.Array, b: jax.Array) -> jax.Array:
    """dm-pix's SSIM (Gaussian 11×11, sigma 1.5; smaller for images under 11 px): [B] each.

    The same window as the eval metric `ssim`, so the loss optimises what is reported.
    """
    import dm_pix  # here: importing it takes 0.2-1.7 s, and most runs never use this loss

    filter_size = min(11, a.shape[1], a.shape[2])
    return dm_pix.ssim(a, b, filter_size=filter_size)


def ssim_loss(logits: jax.Array, x: jax.Array) -> jax.Array:
    """1 − SSIM(sigmoid(logits), x): logits, x [B, H, W, C] -> [B], in [0, 2]."""
    return 1.0 - ssim(jax.nn.sigmoid(logits), x)


def _gaussian_window(size: int, sigma: float) -> jax.Array:
    t = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    w = jnp.exp(-0.5 * (t / sigma) ** 2)
    return w / jnp.sum(w)


def _blur(z: jax.Array, window: jax.Array) -> jax.Array:
    """Separable 'valid' Gaussian filter per channel: [B, H, W, C] -> [B, H-k+1, W-k+1, C]."""
    k = window.shape[0]
    c = z.shape[-1]
    kernel = (window[:, None] * window[None, :])[:, :, None, None]
    kernel = jnp.tile(kernel, (1, 1, 1, c)).astype(z.dtype)  # depthwise [k, k, 1, C]
    return jax.lax.conv_general_dilated(
        z,
        kernel,
        (1, 1),
        "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=c,
        precision=jax.lax.Precision.HIGHEST,
    ).reshape(z.shape[0], z.shape[1] - k + 1, z.shape[2] - k + 1, c)


def ssim_parts(a, b, window, k1=0.01, k2=0.03):
    """Mean SSIM and mean contrast-structure term: a, b [B, H, W, C] -> (ssim [B], cs [B]).

    MS-SSIM needs cs alone at the finer scales, which dm-pix does not return; the constants
    and window follow dm-pix (a test checks the SSIM equals dm-pix's).
    """
    c1, c2 = k1**2, k2**2
    mu_a, mu_b = _blur(a, window), _blur(b, window)
    var_a = jnp.maximum(_blur(a * a, window) - mu_a**2, 0.0)
    var_b = jnp.maximum(_blur(b * b, window) - mu_b**2, 0.0)
    cov = _blur(a * b, window) - mu_a * mu_b
    lum = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    axes = tuple(range(1, a.ndim))
    return jnp.mean(lum * cs, axis=axes), jnp.mean(cs, axis=axes)


def ms_ssim_scales(height: int, width: int, filter_size: int = MS_SSIM_FILTER) -> int:
    """How many dyadic scales fit: the coarsest must be at least one window wide; at most 5."""
    return max(1, min(5, 1 + int(math.floor(math.log2(min(height, width) / filter_size)))))


def ms_ssim(a: jax.Array, b: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Multi-scale SSIM for small images: a, b [B, H, W, C] in [0, 1] -> [B].

    The standard MS-SSIM (Wang et al. 2003) uses five scales with an 11×11 window, which needs
    images of at least 176 px. On 28×28 only 28 → 14 → 7 exist, and an 11-tap window does not
    fit the 7×7 scale, so: a 5×5 window (sigma 1.5·5/11, the standard window's shape) and as
    many 2×-average-pooled scales as the window fits (3 for 28×28 and 32×32, `ms_ssim_scales`),
    with the first exponents of Wang et al. renormalised to sum to 1. The three finest scales
    carry most of the standard weight (63%); dropping the two coarsest loses the 3×3 and
    1×1 structure that 28 px images do not have. cs and l are clipped at `eps` before the
    fractional powers (a negative value has no real power and would give NaN gradients).
    """
    scales = ms_ssim_scales(a.shape[1], a.shape[2])
    weights = jnp.asarray(MS_SSIM_WEIGHTS[:scales]) / sum(MS_SSIM_WEIGHTS[:scales])
    window = _gaussian_window(MS_SSIM_FILTER, MS_SSIM_SIGMA)
    value = jnp.ones(a.shape[0], a.dtype)
    for j in range(scales):
        full, cs = ssim_parts(a, b, window)
        if j == scales - 1:  # the coarsest scale: luminance too, i.e. SSIM itself
            value = value * jnp.maximum(full, eps) ** weights[j]
        else:
            value = value * jnp.maximum(cs, eps) ** weights[j]
            a, b = (_pool2(t) for t in (a, b))
    return value


def _pool2(z: jax.Array) -> jax.Array:
    """2×2 average pooling, odd sizes drop the last row/column: [B, H, W, C] -> [B, H/2, W/2, C]."""
    h, w = z.shape[1] // 2 * 2, z.shape[2] // 2 * 2
    z = z[:, :h, :w]
    return z.reshape(z.shape[0], h // 2, 2, w // 2, 2, z.shape[-1]).mean(axis=(2, 4))


def ms_ssim_loss(logits: jax.Array, x: jax.Array) -> jax.Array:
    """1 − MS-SSIM(sigmoid(logits), x): [B, H, W, C] -> [B], in [0, 1]."""
    return 1.0 - ms_ssim(jax.nn.sigmoid(logits), x)


def feature_distance(module, params, a: jax.Array, b: jax.Array) -> jax.Array:
    """Mean over the classifier's feature layers of the mean squared difference of their
    activations: a, b [B, H, W, C] in [0, 1] -> [B]. module is a jaxae.classifier.Classifier."""
    from jaxae.classifier import Classifier

    fa = module.apply({"params": params}, a, method=Classifier.features)
    fb = module.apply({"params": params}, b, method=Classifier.features)
    per_layer = [
        jnp.mean((u - v) ** 2, axis=tuple(range(1, u.ndim))) for u, v in zip(fa, fb, strict=True)
    ]
    return sum(per_layer) / len(per_layer)


def feature_loss(workdir: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The feature-matching loss of the classifier in `workdir` (python -m jaxae.classifier):
    (logits, x) [B, H, W, C] -> feature_distance(sigmoid(logits), x) [B].

    The parameters are read once, here, and closed over as constants: the loss never trains
    them, and a checkpoint of the autoencoder does not hold them (config.json keeps the path).
    """
    from jaxae import classifier

    module, params, _ = classifier.load(workdir)

    def loss(logits: jax.Array, x: jax.Array) -> jax.Array:
        return feature_distance(module, params, jax.nn.sigmoid(logits), x)

    return loss
