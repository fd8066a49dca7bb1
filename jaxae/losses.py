"""Pure loss terms: each maps a batch to per-example values [B]."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax


def _flat(x: jax.Array) -> jax.Array:
    """[B, ...] -> [B, D]."""
    return x.reshape(x.shape[0], -1)


def mse(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Mean squared error of sigmoid(logits) against x, averaged over pixels: [B, ...] -> [B].

    The mean is a matrix-vector product with 1/D: as a reduction, where mse is only a metric
    (the VAEs' loss is BCE), XLA:CPU hands the sigmoid and the sum to a YNNPACK reduction
    that is 10x slower with the exp and divide inside (conv_vae: 2 ms per step, attempt 12 in
    benchmarks/ATTEMPTS.md).
    """
    sq = _flat(jax.nn.sigmoid(logits) - x) ** 2
    return sq @ jnp.full((sq.shape[-1],), 1.0 / sq.shape[-1], sq.dtype)


def l1(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Mean absolute error of sigmoid(logits) against x, averaged over pixels: -> [B]."""
    return jnp.mean(jnp.abs(_flat(jax.nn.sigmoid(logits) - x)), axis=-1)


def bce(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Binary cross-entropy from logits (numerically stable), averaged over pixels: -> [B]."""
    return jnp.mean(_flat(optax.sigmoid_binary_cross_entropy(logits, x)), axis=-1)


RECONSTRUCTION = {"mse": mse, "bce": bce, "l1": l1}


def bernoulli_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
    """-log p(x | logits) under independent Bernoullis, summed over pixels (nats): -> [B].

    For x in [0, 1] (not binarized) this is the usual continuous-Bernoulli-free BCE.
    """
    return jnp.sum(_flat(optax.sigmoid_binary_cross_entropy(logits, x)), axis=-1)


def gaussian_nll(logits: jax.Array, x: jax.Array, sigma: float) -> jax.Array:
    """-log N(x; sigmoid(logits), sigma² I), summed over pixels (nats): -> [B]."""
    d = _flat(x).shape[-1]
    sq = jnp.sum(_flat(jax.nn.sigmoid(logits) - x) ** 2, axis=-1)
    return 0.5 * sq / sigma**2 + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, summed over latents: [B, K] -> [B]."""
    return 0.5 * jnp.sum(_flat(jnp.exp(logvar) + mu**2 - 1.0 - logvar), axis=-1)


def psnr(recon: jax.Array, x: jax.Array) -> jax.Array:
    """Peak signal-to-noise ratio in dB for images in [0, 1]: -> [B]."""
    err = jnp.mean(_flat(recon - x) ** 2, axis=-1)
    return -10.0 * jnp.log10(jnp.maximum(err, 1e-10))


def code_l1(z: jax.Array) -> jax.Array:
    """Σ_j |z_j|, the L1 sparsity penalty on the code: z [B, ...] -> [B]."""
    return jnp.sum(jnp.abs(_flat(z)), axis=-1)


def bernoulli_kl(rho: float, rho_hat: jax.Array, eps: float = 1e-6) -> jax.Array:
    """KL(Bernoulli(ρ) ‖ Bernoulli(ρ̂)) elementwise; ρ̂ is clipped into (0, 1): [...] -> [...]."""
    rho_hat = jnp.clip(rho_hat, eps, 1.0 - eps)
    return rho * jnp.log(rho / rho_hat) + (1.0 - rho) * jnp.log((1.0 - rho) / (1.0 - rho_hat))


def sparsity_kl(z: jax.Array, rho: float) -> jax.Array:
    """Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the batch-mean activation of unit j of a code in (0, 1): [B, K] -> [B].

    ρ̂ is a batch statistic (Ng's sparse autoencoder), so every example gets the same value.
    """
    rho_hat = jnp.mean(_flat(z), axis=0)  # [K]
    return jnp.broadcast_to(jnp.sum(bernoulli_kl(rho, rho_hat)), z.shape[:1])


def mean_activation(z: jax.Array) -> jax.Array:
    """Mean code activation of each example: z [B, ...] -> [B]."""
    return jnp.mean(_flat(z), axis=-1)


def vq_terms(aux: dict[str, jax.Array], num_embeddings: int) -> dict[str, jax.Array]:
    """VQ-VAE terms from a vector-quantized model's aux (z_e, z_q [B, h, w, D], indices):
    codebook ‖sg(z_e) − z_q‖² (trains the codebook), commitment ‖z_e − sg(z_q)‖² (trains the
    encoder), each a mean over positions and dimensions, and the batch's perplexity and usage
    (batch statistics, the same for every example): name -> [B]."""
    from jaxae.models.vq import codebook_stats

    z_e, z_q = aux["z_e"], aux["z_q"]
    sg = jax.lax.stop_gradient
    perplexity, usage = codebook_stats(aux["indices"], num_embeddings)
    b = z_e.shape[:1]
    return {
        "codebook": jnp.mean(_flat(sg(z_e) - z_q) ** 2, axis=-1),
        "commitment": jnp.mean(_flat(z_e - sg(z_q)) ** 2, axis=-1),
        "perplexity": jnp.broadcast_to(perplexity, b),
        "codebook_usage": jnp.broadcast_to(usage, b),
    }
