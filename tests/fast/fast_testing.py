"""Helpers of the fast-ops tests."""

import jax
import jax.numpy as jnp

from jaxae import models


def train_mode_loss(name: str, batch: int = 4, *, fast: bool = True):
    """(loss(params, x), (params, x)) of models.create_model(NAME, fast=fast) in train mode
    (BatchNorm on batch statistics): the MSE of sigmoid(logits) on uniform 28×28×1 images."""
    model = models.create_model(name, fast=fast)
    x = jax.random.uniform(jax.random.PRNGKey(0), (batch, 28, 28, 1))
    variables = model.init(jax.random.PRNGKey(1), x, train=False)

    def loss(params, x):
        (logits, _), _ = model.apply(
            {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
        )
        return jnp.mean((jax.nn.sigmoid(logits) - x) ** 2)

    return loss, (variables["params"], x)
