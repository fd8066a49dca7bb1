"""VAE training aids: KL warm-up, binarization of the data, and the importance-sampled test NLL."""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm

from jaxae import data, losses
from jaxae.runtime.batching import mean_over_batches


def kl_weight(beta: float, warmup_steps: int, step: jax.Array | None) -> jax.Array:
    """β · min(1, step / warmup_steps); β itself when warm-up is off or no step is given (eval)."""
    if not warmup_steps or step is None:
        return jnp.asarray(beta, jnp.float32)
    return beta * jnp.minimum(1.0, step.astype(jnp.float32) / warmup_steps)


def binarize(x: jax.Array, kind: str, key: jax.Array) -> jax.Array:
    """Binary images for a Bernoulli likelihood: x [B, ...] in [0, 1] -> {0, 1}, same shape.

    'static': x > 0.5, the same every epoch; 'dynamic': a fresh Bernoulli(x) draw from `key`
    (every step gets its own key, so every epoch sees new samples); 'none': x unchanged.
    """
    if kind == "none":
        return x
    if kind == "static":
        return (x > 0.5).astype(x.dtype)
    return jax.random.bernoulli(key, x).astype(x.dtype)


def log_likelihood(logits: jax.Array, x: jax.Array, likelihood: str, sigma: float) -> jax.Array:
    """log p(x | z) of the decoder output `logits`, summed over pixels: [B, ...] -> [B]."""
    if likelihood == "bernoulli":
        return -losses.bernoulli_nll(logits, x)
    return -losses.gaussian_nll(logits, x, sigma)


def log_importance_weights(
    model: nn.Module,
    variables: dict,
    x: jax.Array,
    key: jax.Array,
    *,
    num_samples: int,
    likelihood: str = "bernoulli",
    sigma: float = 0.1,
) -> jax.Array:
    """log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x), z_k ~ q(z|x): x [B, ...] -> [B, K].

    The one importance-sampling path: the NLL (`nll_from_log_weights`), summary.json's test NLL
    (`nll_of_images`) and the analysis's NLL and ELBO all come from these weights. Sample k uses
    split(key, K)[k]; samples are processed 10 at a time (vmapped), bounding memory at 10·B·D.
    """
    mu, logvar = model.apply(variables, x, train=False, method=model.encode)
    std = jnp.exp(0.5 * logvar)

    def log_weight(k: jax.Array) -> jax.Array:  # one sample z_k for every example -> [B]
        z = mu + std * jax.random.normal(k, mu.shape, mu.dtype)
        logits = model.apply(variables, z, train=False, method=model.decode)
        log_px_z = log_likelihood(logits, x, likelihood, sigma)
        log_pz = jnp.sum(norm.logpdf(z), axis=-1)
        log_qz = jnp.sum(norm.logpdf(z, mu, std), axis=-1)
        return log_px_z + log_pz - log_qz

    log_w = jax.lax.map(log_weight, jax.random.split(key, num_samples), batch_size=10)  # [K, B]
    return log_w.T


def nll_from_log_weights(log_w: jax.Array) -> jax.Array:
    """-log (1/K) Σ_k w_k from log weights [B, K] -> [B] nats (mean over k of log w: the ELBO)."""
    return -(logsumexp(log_w, axis=-1) - math.log(log_w.shape[-1]))


def importance_sampled_nll(
    model: nn.Module,
    variables: dict,
    x: jax.Array,
    key: jax.Array,
    *,
    num_samples: int,
    likelihood: str = "bernoulli",
    sigma: float = 0.1,
) -> jax.Array:
    """-log p(x) ≈ -log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x): x [B, ...] -> [B] nats.

    The estimate of log p(x) is a lower bound whose expectation rises to log p(x) as K grows;
    K = 1 is the ELBO with a sampled KL.
    """
    log_w = log_importance_weights(
        model, variables, x, key, num_samples=num_samples, likelihood=likelihood, sigma=sigma
    )
    return nll_from_log_weights(log_w)


def nll_of_images(
    model: nn.Module,
    variables: dict,
    images: np.ndarray,
    key: jax.Array,
    *,
    num_samples: int,
    binarization: str,
    likelihood: str,
    sigma: float,
    chunk: int = 100,
    compiler_options: dict | None = None,
) -> float:
    """Mean importance-sampled NLL (nats per image) of uint8 `images` [N, H, W, C].

    With bin_key, sample_key = split(key): the images are binarized as in training ('dynamic':
    one fixed draw from bin_key), then scored in padded batches of `chunk`, the batch starting
    at `start` with importance samples from fold_in(sample_key, start). `compiler_options`: as
    the eval step's (the fast ops' XLA convolutions decode 100 samples an image faster).
    """
    bin_key, sample_key = jax.random.split(key)
    x = np.asarray(binarize(jnp.asarray(data.to_float(images)), binarization, bin_key))

    @functools.partial(jax.jit, compiler_options=compiler_options)
    def sums(variables, batch, mask, k):
        nll = importance_sampled_nll(
            model, variables, batch, k, num_samples=num_samples, likelihood=likelihood, sigma=sigma
        )
        return {"nll": jnp.sum(nll * mask)}

    return mean_over_batches(functools.partial(sums, variables), x, chunk, sample_key)["nll"]
