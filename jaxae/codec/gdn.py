"""Generalized divisive normalization (Ballé et al. 2016), the codec's nonlinearity.

GDN:  y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2);  IGDN (the synthesis side) multiplies.
beta must stay positive and gamma nonnegative: they are stored as square roots, beta = beta_min
+ b^2 and gamma = g^2, which keeps them so with a gradient everywhere but b, g = 0. (Ballé's
own reparameterization adds a lower bound with a custom gradient so that b cannot cross zero;
crossing zero only flips the sign of b, not the value, so plain squares lose nothing but keep
the layer free of custom gradient rules.)
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

BETA_MIN = 1e-6


class GDN(nn.Module):
    """GDN over the channel axis of x [B, H, W, C] -> [B, H, W, C]; `inverse` gives IGDN.

    Initialised as beta = 1, gamma = 0.1 * I.
    """

    inverse: bool = False
    gamma_init: float = 0.1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        b = self.param("beta", lambda _, s: jnp.full(s, (1.0 - BETA_MIN) ** 0.5), (c,))
        g = self.param("gamma", lambda _, s: self.gamma_init**0.5 * jnp.eye(s[0]), (c, c))
        beta, gamma = BETA_MIN + b * b, g * g
        norm = jnp.einsum("bhwj,ij->bhwi", x * x, gamma) + beta  # [B, H, W, C]
        return x * jnp.sqrt(norm) if self.inverse else x * jax.lax.rsqrt(norm)
