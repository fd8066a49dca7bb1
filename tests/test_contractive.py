"""The contractive penalty: exact equals an independent Jacobian; closed form, Hutchinson agree."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

import jaxae
from jaxae import contractive, models, objectives, optim, train


def _independent_penalty(encode_fn, x):
    """‖J‖²_F per example from one jacrev of the whole batch, J [B, K, B, ...]: diagonal blocks."""
    jac = jax.jacrev(lambda v: encode_fn(v).reshape(x.shape[0], -1))(x)
    b = x.shape[0]
    jac = jac.reshape(b, -1, b, int(np.prod(x.shape[1:])))
    blocks = jac[np.arange(b), :, np.arange(b), :]  # [B, K, D]
    return jnp.sum(blocks**2, axis=(1, 2))


def _mlp_encoder(key, d_in, widths):
    """A random tanh/softplus MLP x [B, 4, 4, 1] -> [B, K] the library has never seen."""
    keys = jax.random.split(key, len(widths))
    dims = [d_in, *widths]
    ws = [
        jax.random.normal(k, (a, b)) / np.sqrt(a)
        for k, a, b in zip(keys, dims[:-1], dims[1:], strict=True)
    ]

    def encode(x):
        h = x.reshape(x.shape[0], -1)
        for i, w in enumerate(ws):
            h = h @ w + 0.1 * i
            h = jnp.tanh(h) if i % 2 == 0 else jax.nn.softplus(h)
        return h

    return encode


class _ConvEncoder(nn.Module):
    """Conv 3×3 (stride 2) → ReLU-free gelu → conv → flatten → Dense: an unseen conv encoder."""

    @nn.compact
    def __call__(self, x):
        x = nn.gelu(nn.Conv(4, (3, 3), strides=(2, 2))(x))
        x = jnp.tanh(nn.Conv(3, (3, 3))(x))
        return nn.Dense(5)(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize("widths", [(7, 3), (40, 60)])  # K < D (jacrev) and K > D (jacfwd)
def test_exact_penalty_equals_independent_jacobian_on_an_mlp(widths):
    encode = _mlp_encoder(jax.random.PRNGKey(1), 16, widths)
    x = jax.random.uniform(jax.random.PRNGKey(2), (3, 4, 4, 1))
    got = jaxae.contractive_penalty(encode, x, method="exact")
    assert got.shape == (3,)
    np.testing.assert_allclose(got, _independent_penalty(encode, x), rtol=1e-5)


def test_exact_penalty_equals_independent_jacobian_on_a_conv_encoder():
    x = jax.random.uniform(jax.random.PRNGKey(3), (3, 6, 6, 2))
    module = _ConvEncoder()
    variables = module.init(jax.random.PRNGKey(4), x)
    encode = lambda v: module.apply(variables, v)
    got = jaxae.contractive_penalty(encode, x, method="exact")
    np.testing.assert_allclose(got, _independent_penalty(encode, x), rtol=1e-5)
    assert np.all(np.asarray(got) > 0)


def test_closed_form_equals_exact_on_a_sigmoid_layer():
    key_w, key_b, key_x = jax.random.split(jax.random.PRNGKey(5), 3)
    w = jax.random.normal(key_w, (16, 6))
    b = jax.random.normal(key_b, (6,))
    encode = lambda v: jax.nn.sigmoid(v.reshape(v.shape[0], -1) @ w + b)
    x = jax.random.uniform(key_x, (4, 4, 4, 1))
    closed = jaxae.contractive_penalty(encode, x, method="closed_form", kernel=w)
    exact = jaxae.contractive_penalty(encode, x, method="exact")
    np.testing.assert_allclose(closed, exact, rtol=1e-5)


def test_closed_form_on_the_models_single_sigmoid_layer_equals_exact():
    model = models.create_model(
        "vanilla", hidden=(), latent_dim=5, code_activation="sigmoid", image_shape=(4, 4, 1)
    )
    x = jax.random.uniform(jax.random.PRNGKey(6), (3, 4, 4, 1))
    variables = model.init(jax.random.PRNGKey(7), x)
    encode = lambda v: model.apply(variables, v, method=model.encode)
    kernel = variables["params"]["enc_0"]["kernel"]
    np.testing.assert_allclose(
        jaxae.contractive_penalty(encode, x, method="closed_form", kernel=kernel),
        jaxae.contractive_penalty(encode, x, method="exact"),
        rtol=1e-5,
    )


def test_hutchinson_mean_over_many_probes_is_within_two_percent_of_exact():
    encode = _mlp_encoder(jax.random.PRNGKey(8), 16, (12, 4))
    x = jax.random.uniform(jax.random.PRNGKey(9), (3, 4, 4, 1))
    exact = jaxae.contractive_penalty(encode, x, method="exact")
    estimate = jaxae.contractive_penalty(
        encode, x, method="hutchinson", num_probes=20_000, key=jax.random.PRNGKey(10)
    )
    np.testing.assert_allclose(estimate, exact, rtol=0.02)
    one_probe = jaxae.contractive_penalty(
        encode, x, method="hutchinson", num_probes=1, key=jax.random.PRNGKey(11)
    )
    assert not np.allclose(one_probe, exact, rtol=0.02)  # a single probe is noisy, not exact


def test_examples_are_independent_and_errors_are_one_line():
    encode = _mlp_encoder(jax.random.PRNGKey(12), 16, (5,))
    x = jax.random.uniform(jax.random.PRNGKey(13), (4, 4, 4, 1))
    whole = jaxae.contractive_penalty(encode, x, method="exact")
    np.testing.assert_allclose(whole[1:2], contractive.exact_penalty(encode, x[1:2]), rtol=1e-6)
    with pytest.raises(ValueError, match="needs key="):
        jaxae.contractive_penalty(encode, x, method="hutchinson")
    with pytest.raises(ValueError, match="needs kernel="):
        jaxae.contractive_penalty(encode, x, method="closed_form")
    with pytest.raises(ValueError, match="method must be one of exact, hutchinson"):
        jaxae.contractive_penalty(encode, x, method="svd")


def _train_sigmoid_ae(weight: float, images: jax.Array, steps: int = 150):
    """A 64→16 sigmoid AE trained on `images` with contractive weight λ; returns its ‖J‖² [B]."""
    config = tiny_config("contractive")
    config.model.latent_dim = 16
    config.model.image_shape = (8, 8, 1)
    config.contractive.weight = weight
    config.learning_rate = 3e-3
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)
    tx, schedule = optim.make_optimizer(config, steps)
    state = train.init_state(model, tx, (8, 8, 1), seed=0)
    step = jax.jit(train.make_train_step(objectives.make_objective(config, model), tx, schedule))
    for _ in range(steps):
        state, _ = step(state, images, jax.random.PRNGKey(0))
    x = images.astype(jnp.float32) / 255.0
    encode = lambda v: model.apply({"params": state.params}, v, method=model.encode)
    return jaxae.contractive_penalty(encode, x, method="exact")


@pytest.mark.slow
def test_contractive_training_shrinks_the_jacobian_versus_lambda_zero():
    images = jax.random.randint(jax.random.PRNGKey(14), (32, 8, 8, 1), 0, 256).astype(jnp.uint8)
    plain = float(jnp.mean(_train_sigmoid_ae(0.0, images)))
    penalized = float(jnp.mean(_train_sigmoid_ae(0.05, images)))
    assert penalized < 0.5 * plain, (plain, penalized)
