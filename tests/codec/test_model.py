"""The codec's pieces: GDN's reparameterization, the entropy model, rounding, the objective."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import config as config_lib
from jaxae import objectives, rng
from jaxae.codec import entropy, gdn
from jaxae.codec import objective as codec_objective

from .conftest import images, initial_params


def test_gdn_is_x_over_sqrt_of_beta_plus_gamma_x2_and_igdn_multiplies():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 3, 4))
    layer = gdn.GDN()
    params = layer.init(jax.random.PRNGKey(1), x)
    y = layer.apply(params, x)
    gamma = params["params"]["gamma"] ** 2  # stored as square roots: nonnegative
    np.testing.assert_allclose(gamma, 0.1 * jnp.eye(4), rtol=1e-6)
    expected = x / jnp.sqrt(1.0 + jnp.einsum("bhwj,ij->bhwi", x**2, gamma))
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    inv = gdn.GDN(inverse=True).apply(params, x)
    np.testing.assert_allclose(inv * y, x**2, rtol=1e-5)


def test_bin_probabilities_over_all_integers_sum_to_one():
    density = entropy.FactorizedDensity(channels=3)
    params = density.init(jax.random.PRNGKey(0), jnp.zeros((1, 1, 1, 3)))
    v = jnp.broadcast_to(jnp.arange(-200, 201, dtype=jnp.float32), (3, 401))
    p = density.apply(params, v, method=density.bin_probability)
    np.testing.assert_allclose(jnp.sum(p, axis=1), 1.0, atol=1e-5)
    logits = density.apply(params, v, method=density.logits_cumulative)
    assert jnp.all(jnp.diff(logits, axis=1) > 0)  # a CDF: monotone


def _codec_and_params():
    return initial_params()


def test_evaluation_rounds_and_training_adds_uniform_noise():
    model, params = _codec_and_params()
    x = jnp.asarray(images(4)) / 255.0
    _, aux = jax.jit(model.apply)({"params": params}, x)  # eval mode: __call__(train=False)
    np.testing.assert_array_equal(aux["z"], jnp.round(aux["y"]))
    code = jax.jit(functools.partial(model.apply, method=model.encode))({"params": params}, x)
    np.testing.assert_array_equal(code, aux["z"])  # encode gives the rounded code
    key = jax.random.PRNGKey(3)

    @functools.partial(jax.jit, static_argnames="straight_through")
    def train_forward(straight_through):
        return model.apply(
            {"params": params},
            x,
            key,
            train=True,
            straight_through=straight_through,
            method=model.forward,
        )[1]

    noisy = train_forward(False)
    offset = noisy["z"] - noisy["y"]
    assert jnp.all(jnp.abs(offset) <= 0.5) and float(jnp.std(offset)) > 0.2  # U(-1/2, 1/2)
    ste = train_forward(True)
    np.testing.assert_array_equal(ste["z"], jnp.round(ste["y"]))
    grad = jax.grad(lambda y: jnp.sum(y + jax.lax.stop_gradient(jnp.round(y) - y)))(aux["y"])
    np.testing.assert_array_equal(grad, jnp.ones_like(grad))  # straight through: identity


def test_objective_is_bpp_plus_lambda_distortion_with_named_terms():
    config = tiny_config("codec")
    config.codec.lmbda = 0.03
    model, params = _codec_and_params()
    objective = objectives.make_objective(config, model)
    x = jnp.asarray(images(4)) / 255.0
    run = jax.jit(functools.partial(objective, train=False))
    loss, (terms, _, logits) = run(params, {}, x, jax.random.PRNGKey(0))
    _, aux = jax.jit(model.apply)({"params": params}, x)
    bpp = entropy.bits(aux["likelihoods"]) / (28 * 28)
    np.testing.assert_allclose(terms["bpp"], bpp, rtol=1e-6)
    dist = 255.0**2 * jnp.mean((jax.nn.sigmoid(logits) - x) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(terms["distortion"], dist, rtol=1e-4)
    np.testing.assert_allclose(loss, jnp.mean(bpp + 0.03 * dist), rtol=1e-5)
    assert set(terms) == {"bpp", "distortion", "mse", "loss"}
    assert codec_objective.QUANTIZE_STREAM not in rng.STREAMS.values()


def test_codec_fields_on_another_model_are_refused():
    config = tiny_config("conv_deep")
    config.codec.lmbda = 0.1
    with pytest.raises(config_lib.ConfigError, match="learned codec only"):
        config_lib.validate(config)
    config = tiny_config("codec")
    config.sparse.l1 = 0.1
    with pytest.raises(config_lib.ConfigError, match="reset sparse.l1"):
        config_lib.validate(config)
    config = tiny_config("codec")
    config.codec.quantization = "round"
    with pytest.raises(config_lib.ConfigError, match="codec.quantization"):
        config_lib.validate(config)
