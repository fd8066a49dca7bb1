"""The training objective: a pure function of (params, batch_stats, x, rng) built from a config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxae import losses, models

# objective(params, batch_stats, x, rng, train=...) -> (loss, (terms, new_batch_stats, logits))
#   x: [B, H, W, C] float32 in [0, 1]; terms: name -> [B] per-example values.
Objective = Callable[..., tuple[jax.Array, tuple[dict[str, jax.Array], Any, jax.Array]]]


def _vae_forward(module: nn.Module, x: jax.Array, key: jax.Array, train: bool):
    """Encode, draw z = mu + sigma * eps with an explicit key, decode. Used as `apply(method=)`."""
    mu, logvar = module.encode(x, train=train)
    eps = jax.random.normal(key, mu.shape, mu.dtype)
    z = mu + jnp.exp(0.5 * logvar) * eps
    return module.decode(z, train=train), {"z": z, "mu": mu, "logvar": logvar}


def make_objective(config: ml_collections.ConfigDict, model: nn.Module) -> Objective:
    """Builds the loss for `model` from the config's `loss` and `vae` fields.

    Non-VAE models: mean over pixels of the reconstruction loss (`mse`, `bce` or `l1`).
    VAEs: negative ELBO in nats per image, recon + beta * KL, with the ELBO itself as a term.
    Every term is returned per example so the step can log it and evaluation can sum it.
    """
    is_vae = models.is_vae(model)
    recon_loss = losses.RECONSTRUCTION[config.loss]
    beta = float(config.vae.beta)
    likelihood = config.vae.likelihood
    sigma = float(config.vae.gaussian_sigma)

    def objective(params, batch_stats, x, rng, *, train: bool):
        variables = {"params": params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        dropout_key, sample_key = jax.random.split(rng)
        mutable = ["batch_stats"] if (train and batch_stats) else False
        if is_vae:
            args, kwargs = (x, sample_key, train), {"method": _vae_forward}
        else:
            args, kwargs = (x,), {"train": train}
        out = model.apply(
            variables, *args, rngs={"dropout": dropout_key}, mutable=mutable, **kwargs
        )
        (logits, aux), updates = out if mutable else (out, {})
        new_batch_stats = updates.get("batch_stats", batch_stats)

        if is_vae:
            if likelihood == "bernoulli":
                recon = losses.bernoulli_nll(logits, x)
            else:
                recon = losses.gaussian_nll(logits, x, sigma)
            kl = losses.gaussian_kl(aux["mu"], aux["logvar"])
            per_example = recon + beta * kl
            terms = {"recon": recon, "kl": kl, "elbo": -(recon + kl)}
        else:
            per_example = recon_loss(logits, x)
            terms = {config.loss: per_example}
        if "mse" not in terms:
            terms["mse"] = losses.mse(logits, x)
        terms["loss"] = per_example
        return jnp.mean(per_example), (terms, new_batch_stats, logits)

    return objective
