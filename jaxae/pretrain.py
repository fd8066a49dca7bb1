"""Greedy layer-wise pretraining of the stacked `hinton` autoencoder (Hinton & Salakhutdinov)."""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxae import data, losses, models

Params = dict[str, Any]


def layer_pairs(model: models.Hinton) -> list[tuple[str, str]]:
    """The shallow autoencoders, outermost first: pair i = (enc_i, dec_{n-i}), n = len(hidden)."""
    n = len(model.hidden)
    return [(f"enc_{i}", f"dec_{n - i}") for i in range(n + 1)]


def layer_loss(
    model: models.Hinton, index: int, pair: Params, params: Params, x: jax.Array
) -> jax.Array:
    """Reconstruction loss of pair `index` on h_index = encode_to(x, index): x [B, H, W, C] -> [].

    Pair 0 reconstructs the image (sigmoid of its logits); pair i > 0 reconstructs the code of
    the layers below, h_i [B, D_i], through the model's activation. Only `pair` is trained.
    """
    variables = {"params": {**params, **pair}}
    h = jax.lax.stop_gradient(model.apply(variables, x, index, method=model.encode_to))
    pre = model.apply(variables, h, index, method=model.reconstruct_layer)  # [B, D_index]
    if index == 0 or model.activation == "sigmoid":
        return jnp.mean(losses.mse(pre, h))
    return jnp.mean((models.ACTIVATIONS[model.activation](pre) - h) ** 2)


def train_layer(
    model: models.Hinton,
    index: int,
    params: Params,
    images: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    log_every: int,
    log: Any,
) -> Params:
    """Adam on pair `index` alone for `steps` batches of uint8 `images` [N, H, W, C].

    Batches come from a permutation that is a pure function of (seed, index). `log(values)` gets
    {layer, layer_step, loss} every `log_every` steps. Returns params with the pair updated.
    """
    enc, dec = layer_pairs(model)[index]
    pair = {enc: params[enc], dec: params[dec]}
    tx = optax.adam(learning_rate)

    @jax.jit
    def step(pair, opt_state, params, batch):
        loss, grads = jax.value_and_grad(functools.partial(layer_loss, model, index))(
            pair, params, data.to_float(batch)
        )
        updates, opt_state = tx.update(grads, opt_state, pair)
        return optax.apply_updates(pair, updates), opt_state, loss

    opt_state = tx.init(pair)
    rng = np.random.default_rng([seed, 1000 + index])
    per_epoch = len(images) // batch_size
    perm = rng.permutation(len(images))
    losses_window = []
    for s in range(steps):
        i = s % per_epoch
        if s and i == 0:
            perm = rng.permutation(len(images))
        batch = images[np.sort(perm[i * batch_size : (i + 1) * batch_size])]
        pair, opt_state, loss = step(pair, opt_state, params, batch)
        losses_window.append(loss)
        if (s + 1) % log_every == 0 or s + 1 == steps:
            mean = float(np.mean(jax.device_get(losses_window)))
            log({"layer": index, "layer_step": s + 1, "loss": mean})
            losses_window = []
    return {**params, **jax.device_get(pair)}


def pretrain_params(
    model: nn.Module,
    params: Params,
    images: np.ndarray,
    config: ml_collections.ConfigDict,
    log: Any = lambda values: None,
) -> Params:
    """Trains each layer pair in turn, outermost first, on the codes of the pairs before it."""
    if not isinstance(model, models.Hinton):
        raise ValueError(f"greedy pretraining needs the hinton model, got {type(model).__name__}")
    params = jax.device_get(params)
    for index in range(len(layer_pairs(model))):
        params = train_layer(
            model,
            index,
            params,
            images,
            steps=config.pretrain.steps_per_layer,
            batch_size=config.batch_size,
            learning_rate=config.pretrain.learning_rate,
            seed=config.seed,
            log_every=config.log_every,
            log=log,
        )
    return params


def pretrain_state(
    config: ml_collections.ConfigDict,
    model: nn.Module,
    state: Any,
    tx: optax.GradientTransformation,
    images: np.ndarray,
    writer: Any,
) -> Any:
    """The TrainState `state` with pretrained params and a fresh optimizer state.

    images: uint8 [N, H, W, C]. Progress goes to `writer` (a MetricWriter) as split 'pretrain'
    at step 0, before the first update of fine-tuning.
    """
    params = pretrain_params(
        model, state.params, images, config, log=lambda v: writer.write(0, "pretrain", v)
    )
    params = jax.device_put(params, jax.tree.leaves(state.params)[0].sharding)
    return state.replace(params=params, opt_state=jax.jit(tx.init)(params))
