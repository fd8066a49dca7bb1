"""The factorized entropy model (Ballé et al. 2018, appendix 6.1): one learned, non-parametric
cumulative density per latent channel.

Each channel c has a monotone function f_c: R -> R built from softplus-positive matrices, biases
and tanh gates; its CDF is sigmoid(f_c). The probability of the integer bin around y is
P(y) = CDF(y + 1/2) - CDF(y - 1/2), which is both the likelihood of the noisy latent in training
(the density of y + U(-1/2, 1/2) convolved with the bin) and the probability mass the coder's
tables are built from after rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LIKELIHOOD_BOUND = 1e-9  # keeps -log2 P finite for latents far outside the learned density


def softplus(x: jax.Array) -> jax.Array:
    """log(1 + e^x), stable, written out (jax.nn.softplus carries a custom JVP rule)."""
    return jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


class FactorizedDensity(nn.Module):
    """Learned per-channel bin probabilities of latents y [B, h, w, C].

    `filters` are the hidden widths of each channel's monotone network; `init_scale` the
    initial spread of the density (the scale of latents it expects before training).
    """

    channels: int
    filters: Sequence[int] = (3, 3, 3)
    init_scale: float = 10.0

    def setup(self) -> None:
        widths = (1, *self.filters, 1)
        scale = self.init_scale ** (1.0 / (len(widths) - 1))
        matrices, biases, factors = [], [], []
        for i in range(len(widths) - 1):
            fan_out, fan_in = widths[i + 1], widths[i]
            value = math.log(math.expm1(1.0 / scale / fan_out))  # softplus^-1: f(x) ~ x / scale

            def const(_, shape, value=value):
                return jnp.full(shape, value, jnp.float32)

            def uniform(key, shape):
                return jax.random.uniform(key, shape, jnp.float32, -0.5, 0.5)

            matrices.append(self.param(f"matrix_{i}", const, (self.channels, fan_out, fan_in)))
            biases.append(self.param(f"bias_{i}", uniform, (self.channels, fan_out, 1)))
            if i < len(widths) - 2:
                zeros = nn.initializers.zeros_init()
                factors.append(self.param(f"factor_{i}", zeros, (self.channels, fan_out, 1)))
        self.matrices, self.biases, self.factors = matrices, biases, factors

    def logits_cumulative(self, v: jax.Array) -> jax.Array:
        """f_c(v): v [C, N] -> [C, N], monotone increasing in v for every channel."""
        h = v[:, None, :]  # [C, 1, N]
        for i, (m, b) in enumerate(zip(self.matrices, self.biases, strict=True)):
            h = jnp.einsum("cij,cjn->cin", softplus(m), h) + b
            if i < len(self.factors):
                h = h + jnp.tanh(self.factors[i]) * jnp.tanh(h)
        return h[:, 0, :]

    def bin_probability(self, v: jax.Array) -> jax.Array:
        """P(v) = CDF(v + 1/2) - CDF(v - 1/2) per channel: v [C, N] -> [C, N], no lower bound.

        Computed on the side of the median where the two sigmoids are far from 1, so that
        tails keep their precision (the difference of two numbers near 1 would lose it).
        """
        lower = self.logits_cumulative(v - 0.5)
        upper = self.logits_cumulative(v + 0.5)
        sign = jax.lax.stop_gradient(-jnp.sign(lower + upper))
        return jnp.abs(jax.nn.sigmoid(sign * upper) - jax.nn.sigmoid(sign * lower))

    def __call__(self, y: jax.Array) -> jax.Array:
        """Bin probabilities of y [B, h, w, C] (noisy or rounded) -> [B, h, w, C], >= 1e-9."""
        b, h, w, c = y.shape
        v = jnp.moveaxis(y, -1, 0).reshape(c, b * h * w)
        p = self.bin_probability(v).reshape(c, b, h, w)
        return jnp.maximum(jnp.moveaxis(p, 0, -1), LIKELIHOOD_BOUND)


def bits(likelihoods: jax.Array) -> jax.Array:
    """-sum log2 P over each example: likelihoods [B, ...] -> [B] bits."""
    return -jnp.sum(jnp.log2(likelihoods).reshape(likelihoods.shape[0], -1), axis=-1)
