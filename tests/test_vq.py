"""VQ-VAE: nearest-code quantization, straight-through gradient, its two losses, codebook stats."""

import jax
import jax.numpy as jnp
import numpy as np
from conftest import tiny_config

from jaxae import losses, models, objectives, optim, steps
from jaxae.models import vq


def _codes(seed=0, shape=(2, 3, 3, 4), k=5):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=shape), jnp.float32), jnp.asarray(
        rng.normal(size=(k, shape[-1])), jnp.float32
    )


def test_quantize_picks_the_nearest_codebook_vector():
    z_e, codebook = _codes()
    z, z_q, idx = jax.jit(vq.quantize)(z_e, codebook)
    dist = np.linalg.norm(np.asarray(z_e)[..., None, :] - np.asarray(codebook), axis=-1)
    np.testing.assert_array_equal(idx, dist.argmin(-1))
    np.testing.assert_allclose(z_q, np.asarray(codebook)[np.asarray(idx)], rtol=1e-6)
    np.testing.assert_allclose(z, z_q, rtol=1e-6, atol=1e-6)


def test_straight_through_gradient_is_the_identity_on_the_encoder_output():
    z_e, codebook = _codes(1)
    cotangent = jax.random.normal(jax.random.PRNGKey(0), z_e.shape)

    @jax.jit
    def pullbacks(e, c, g):
        _, vjp = jax.vjp(lambda e, c: vq.quantize(e, c)[0], e, c)
        return vjp(g)

    to_encoder, to_codebook = pullbacks(z_e, codebook, cotangent)
    np.testing.assert_array_equal(to_encoder, cotangent)
    # and nothing of the decoder's gradient reaches the codebook through z
    np.testing.assert_array_equal(to_codebook, 0.0)


def test_codebook_loss_trains_the_codebook_and_commitment_the_encoder():
    z_e, codebook = _codes(2)

    def term(name, e, c):
        _, z_q, idx = vq.quantize(e, c)
        return jnp.sum(losses.vq_terms({"z_e": e, "z_q": z_q, "indices": idx}, 5)[name])

    grad = jax.jit(jax.grad(term, argnums=(1, 2)), static_argnums=0)
    g_e, g_c = grad("codebook", z_e, codebook)
    assert float(jnp.abs(g_e).max()) == 0 and float(jnp.abs(g_c).max()) > 0
    g_e, g_c = grad("commitment", z_e, codebook)
    assert float(jnp.abs(g_c).max()) == 0
    _, z_q, _ = vq.quantize(z_e, codebook)  # d/dz_e mean ||z_e - sg(z_q)||^2 = 2 (z_e - z_q) / D'
    np.testing.assert_allclose(g_e, 2 * (z_e - z_q) / (3 * 3 * 4), rtol=1e-5)


def test_perplexity_and_usage_of_known_code_distributions():
    stats = jax.jit(vq.codebook_stats, static_argnums=1)
    perplexity, usage = stats(jnp.arange(8).reshape(2, 4), 8)
    np.testing.assert_allclose([perplexity, usage], [8.0, 1.0], rtol=1e-6)
    perplexity, usage = stats(jnp.zeros((2, 4), jnp.int32), 8)
    np.testing.assert_allclose([perplexity, usage], [1.0, 1 / 8], rtol=1e-6)
    perplexity, _ = stats(jnp.array([0, 0, 1, 1]), 8)
    np.testing.assert_allclose(perplexity, 2.0, rtol=1e-6)


def test_vqvae_step_logs_its_terms_and_lowers_the_loss():
    config = tiny_config("vqvae", **{"model.image_shape": (8, 8, 1), "learning_rate": 3e-3})
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)
    tx, schedule = optim.make_optimizer(config, 20)
    state = steps.init_state(model, tx, (8, 8, 1), seed=0)
    step = jax.jit(steps.make_train_step(objectives.make_objective(config, model), tx, schedule))
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 1), dtype=np.uint8)
    history = []
    for _ in range(20):
        state, metrics = step(state, images, jax.random.PRNGKey(0))
        history.append(jax.device_get(metrics))
    first, last = history[0], history[-1]
    want = first["mse"] + first["codebook"] + 0.25 * first["commitment"]
    np.testing.assert_allclose(first["loss"], want, rtol=1e-5)
    assert 1 <= last["perplexity"] <= 64 and 0 < last["codebook_usage"] <= 1
    assert last["loss"] < first["loss"]  # learning 10x is test_families' (slow) overfit test
