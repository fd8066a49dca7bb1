"""Input corruptions of denoising autoencoders, drawn on the device from an explicit PRNG key."""

from __future__ import annotations

import jax
import jax.numpy as jnp

KINDS = ("none", "gaussian", "masking", "salt_pepper")


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
    raise ValueError(f"corruption kind must be one of {', '.join(KINDS)}; got {kind!r}")
