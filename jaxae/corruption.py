"""Input corruptions of denoising autoencoders, drawn on the device from an explicit PRNG key.

`blur` and `downsample` are deterministic degradations (image restoration as denoising): the
model learns to deblur or to super-resolve ×2, scored against the clean image.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

KINDS = ("none", "gaussian", "masking", "salt_pepper", "blur", "downsample")
FACTOR = 2  # the downsample kind's scale factor (×2 super-resolution)


def gaussian(x: jax.Array, key: jax.Array, sigma: float) -> jax.Array:
    """x + N(0, σ²) per pixel, clipped to [0, 1]: x [B, ...] -> same shape."""
    return jnp.clip(x + sigma * jax.random.normal(key, x.shape, x.dtype), 0.0, 1.0)


def masking(x: jax.Array, key: jax.Array, p: float) -> jax.Array:
    """Each pixel set to 0 with probability p (Vincent et al. 2008): x [B, ...] -> same shape."""
    return jnp.where(jax.random.bernoulli(key, p, x.shape), 0.0, x).astype(x.dtype)


def salt_pepper(x: jax.Array, key: jax.Array, p: float) -> jax.Array:
    """Each pixel replaced with probability p by 0 or 1, equally likely: x [B, ...] -> same."""
    hit_key, salt_key = jax.random.split(key)
    hit = jax.random.bernoulli(hit_key, p, x.shape)
    salt = jax.random.bernoulli(salt_key, 0.5, x.shape).astype(x.dtype)
    return jnp.where(hit, salt, x)


def blur(x: jax.Array, sigma: float) -> jax.Array:
    """Gaussian blur of std `sigma` pixels (kernel 2·ceil(3σ)+1, zero padding): x [B, H, W, C]
    -> same shape. σ = 0 returns x."""
    if sigma <= 0:
        return x
    import dm_pix  # here: its import takes 0.2-1.7 s and most runs never blur

    return dm_pix.gaussian_blur(x, sigma, kernel_size=2 * math.ceil(3 * sigma) + 1)


def low_resolution(x: jax.Array, factor: int = FACTOR) -> jax.Array:
    """Bicubic, antialiased downsampling: x [B, H, W, C] -> [B, H//factor, W//factor, C]."""
    b, h, w, c = x.shape
    small = jax.image.resize(x, (b, h // factor, w // factor, c), "cubic", antialias=True)
    return jnp.clip(small, 0.0, 1.0)


def downsample(x: jax.Array, factor: int = FACTOR) -> jax.Array:
    """The low-resolution image shown at full size by pixel replication (nearest), so the model
    sees exactly the low-resolution information: x [B, H, W, C] -> same shape."""
    return jax.image.resize(low_resolution(x, factor), x.shape, "nearest")


def bicubic_upsample(x: jax.Array, factor: int = FACTOR) -> jax.Array:
    """The classical super-resolution baseline: bicubic upsampling of low_resolution(x), clipped
    to [0, 1]: x [B, H, W, C] (the clean image) -> same shape."""
    return jnp.clip(jax.image.resize(low_resolution(x, factor), x.shape, "cubic"), 0.0, 1.0)


def corrupt(x: jax.Array, key: jax.Array, kind: str, *, sigma: float, p: float) -> jax.Array:
    """The corruption `kind` ('none' returns x): x [B, H, W, C] in [0, 1] -> same shape."""
    if kind == "none":
        return x
    if kind == "gaussian":
        return gaussian(x, key, sigma)
    if kind == "masking":
        return masking(x, key, p)
    if kind == "salt_pepper":
        return salt_pepper(x, key, p)
    if kind == "blur":  # sigma: the kernel's std in pixels
        return blur(x, sigma)
    if kind == "downsample":
        return downsample(x)
    raise ValueError(f"corruption kind must be one of {', '.join(KINDS)}; got {kind!r}")
