"""The pure steps: VAE evaluation scores the mean code; every random stream has its own key."""

import jax
import jax.numpy as jnp
import numpy as np
from conftest import tiny_config

from jaxae import data, losses, models, objectives, optim, rng, steps


def _vae_state(name="vae"):
    config = tiny_config(name)
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)
    tx, _ = optim.make_optimizer(config, 10)
    state = steps.init_state(model, tx, (28, 28, 1), seed=0)
    return config, model, state


def test_vae_eval_mse_is_the_mean_code_reconstruction():
    config, model, state = _vae_state()
    objective = objectives.make_objective(config, model)
    eval_step = jax.jit(steps.make_eval_step(objective, model))
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    mask = np.ones(8, np.float32)
    sums = eval_step(state, images, mask, jax.random.PRNGKey(3))

    x = data.to_float(images)
    variables = {"params": state.params}
    mu, _ = model.apply(variables, x, method=model.encode)
    logits = model.apply(variables, mu, method=model.decode)
    expected = jnp.mean((jax.nn.sigmoid(logits) - x) ** 2)
    np.testing.assert_allclose(sums["mse"] / 8, expected, rtol=1e-5)
    # the ELBO still comes from a sampled code: another key, another value
    other = eval_step(state, images, mask, jax.random.PRNGKey(4))
    assert float(other["elbo"]) != float(sums["elbo"])
    np.testing.assert_allclose(other["mse"], sums["mse"], rtol=1e-6)
    psnr = jnp.sum(losses.psnr(jax.nn.sigmoid(logits), x))
    np.testing.assert_allclose(sums["psnr"], psnr, rtol=1e-5)


def test_eval_step_masks_padding():
    config, model, state = _vae_state("vanilla")
    objective = objectives.make_objective(config, model)
    eval_step = jax.jit(steps.make_eval_step(objective, model))
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    full = eval_step(state, images, np.ones(4, np.float32), jax.random.PRNGKey(0))
    half = eval_step(state, images, np.array([1, 1, 0, 0], np.float32), jax.random.PRNGKey(0))
    head = eval_step(state, images[:2], np.ones(2, np.float32), jax.random.PRNGKey(0))
    np.testing.assert_allclose(half["mse"], head["mse"], rtol=1e-6)
    assert float(full["mse"]) > float(half["mse"])


def test_random_streams_are_distinct():
    assert len(set(rng.STREAMS.values())) == len(rng.STREAMS)
    keys = [np.asarray(jax.random.key_data(rng.run_key(0, name))) for name in rng.STREAMS]
    assert len({k.tobytes() for k in keys}) == len(keys)
    step_key = jax.random.fold_in(rng.run_key(0, "train"), 7)
    sub = {name: rng.stream(step_key, name).tobytes() for name in ("dropout", "sample", "noise")}
    assert len(set(sub.values())) == 3
