"""SSIM and MS-SSIM losses by their math, the blur measure on known images, the objective terms."""

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import config as config_lib
from jaxae import losses, models, objectives, perceptual


def _pair(shape=(3, 28, 28, 1), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, shape)
    logits = rng.normal(0, 1.5, shape)
    return logits, x


@pytest.mark.parametrize("loss", [perceptual.ssim_loss, perceptual.ms_ssim_loss])
def test_loss_gradient_matches_a_central_finite_difference(loss):
    with jax.enable_x64(True):
        logits, x = (jnp.asarray(a, jnp.float64) for a in _pair((2, 16, 16, 1)))
        direction = jnp.asarray(np.random.default_rng(1).normal(size=logits.shape))
        f = lambda t: jnp.sum(loss(t, x))  # noqa: E731
        grad = jax.jit(jax.grad(f))(logits)
        eps = 1e-5
        f = jax.jit(f)
        fd = (f(logits + eps * direction) - f(logits - eps * direction)) / (2 * eps)
        np.testing.assert_allclose(jnp.vdot(grad, direction), fd, rtol=1e-6)
        assert float(jnp.abs(grad).max()) > 0


def test_ssim_parts_gives_dm_pix_ssim_and_equal_images_score_one():
    logits, x = _pair((2, 16, 16, 1), seed=2)
    recon = jax.nn.sigmoid(jnp.asarray(logits, jnp.float32))
    x = jnp.asarray(x, jnp.float32)
    window = perceptual._gaussian_window(7, 1.2)
    full, _ = jax.jit(perceptual.ssim_parts)(recon, x, window)
    want = jax.jit(lambda a, b: dm_pix.ssim(a, b, filter_size=7, filter_sigma=1.2))(recon, x)
    np.testing.assert_allclose(full, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.jit(perceptual.ms_ssim)(x, x), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        jax.jit(perceptual.ssim_loss)(jnp.full_like(x, 30.0), jnp.ones_like(x)), 0, atol=1e-6
    )


def test_ms_ssim_uses_the_scales_a_5_pixel_window_fits_and_falls_with_noise():
    assert [perceptual.ms_ssim_scales(s, s) for s in (8, 28, 32, 64, 176, 512)] == [
        1,
        3,
        3,
        4,
        5,
        5,
    ]
    x = jnp.asarray(_pair(seed=3)[1], jnp.float32)
    noise = jax.random.normal(jax.random.PRNGKey(0), x.shape)
    ms_ssim = jax.jit(perceptual.ms_ssim)
    values = [ms_ssim(x, jnp.clip(x + s * noise, 0, 1)) for s in (0.05, 0.2, 0.5)]
    assert np.all(np.diff(np.stack(values), axis=0) < 0)


def test_high_frequency_energy_of_known_images():
    h = w = 6
    checker = (np.indices((h, w)).sum(0) % 2).astype(np.float32)[None, :, :, None]
    # every inner pixel's 4 neighbours are its opposite: Laplacian ±4, energy 16 per inner pixel
    assert float(perceptual.high_frequency_energy(checker)[0]) == 16 * (h - 2) * (w - 2)
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, None, :, None] * np.ones((1, h, w, 1))
    assert float(perceptual.high_frequency_energy(ramp)[0]) == pytest.approx(0, abs=1e-10)
    blurred = np.full_like(checker, 0.5) + 0.25 * (checker - 0.5)
    assert perceptual.sharpness_ratio(blurred, checker) == pytest.approx(0.0625)
    assert perceptual.sharpness_ratio(checker, checker) == 1.0


@pytest.mark.parametrize(
    "field,term", [("ssim_weight", "ssim_loss"), ("ms_ssim_weight", "ms_ssim_loss")]
)
def test_objective_adds_the_weighted_term_and_logs_it(field, term):
    config = tiny_config("conv_simple")
    config.perceptual[field] = 0.5
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)
    x = jnp.asarray(_pair(seed=4)[1], jnp.float32)
    variables = model.init(jax.random.PRNGKey(0), x)
    objective = jax.jit(objectives.make_objective(config, model), static_argnames="train")
    loss, (terms, _, logits) = objective(
        variables["params"], {}, x, jax.random.PRNGKey(1), train=True
    )
    distortion = {"ssim_loss": perceptual.ssim_loss, "ms_ssim_loss": perceptual.ms_ssim_loss}[term]
    np.testing.assert_allclose(terms[term], distortion(logits, x), rtol=1e-5)
    want = jnp.mean(losses.mse(logits, x) + 0.5 * distortion(logits, x))
    np.testing.assert_allclose(loss, want, rtol=1e-5)


def test_negative_perceptual_weight_is_one_clear_error():
    config = tiny_config("ssim")
    config.perceptual.ssim_weight = -1.0
    with pytest.raises(config_lib.ConfigError, match="perceptual.ssim_weight"):
        config_lib.validate(config)
