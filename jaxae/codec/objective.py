"""The codec's training objective: rate (bits per pixel) + λ · distortion (MSE on 0..255)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxae import losses
from jaxae.codec import entropy

# The stream of the quantization noise; a number no other stream in jaxae.rng uses.
QUANTIZE_STREAM = 21


def distortion(logits: jax.Array, x: jax.Array) -> jax.Array:
    """MSE of sigmoid(logits) against x on the 0..255 scale (CompressAI's λ convention): [B]."""
    return 255.0**2 * losses.mse(logits, x)


def make_objective(config: ml_collections.ConfigDict, model):
    """objective(params, batch_stats, x, rng, *, train, step=None) -> (loss, (terms, {}, logits)).

    loss = bpp + codec.lmbda · distortion per example, with bpp = -log2 P(ŷ) / (H·W) (per pixel,
    not per subpixel). Training uses the noisy ŷ (and `codec.quantization='ste'`: rounded ŷ
    with a straight-through gradient for the synthesis); evaluation rounds, so its bpp is the
    entropy model's estimate of the real file's payload. Terms: bpp, distortion, mse, loss.
    """
    lmbda = float(config.codec.lmbda)
    straight_through = config.codec.quantization == "ste"

    def objective(params, batch_stats, x, rng, *, train: bool, step=None):
        del step
        key = jax.random.fold_in(rng, QUANTIZE_STREAM)
        logits, aux = model.apply(
            {"params": params},
            x,
            key,
            train=train,
            straight_through=straight_through,
            method=type(model).forward,
        )
        bpp = entropy.bits(aux["likelihoods"]) / (x.shape[1] * x.shape[2])
        dist = distortion(logits, x)
        per_example = bpp + lmbda * dist
        terms = {"bpp": bpp, "distortion": dist, "mse": losses.mse(logits, x)}
        terms["loss"] = per_example
        return jnp.mean(per_example), (terms, batch_stats, logits)

    return objective
