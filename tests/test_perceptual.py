"""SSIM, MS-SSIM and feature losses by their math, the blur measure on known images, the
objective terms."""

import json

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import classifier, losses, measures, models, objectives, perceptual, train
from jaxae import config as config_lib


def _pair(shape=(3, 28, 28, 1), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, shape)
    logits = rng.normal(0, 1.5, shape)
    return logits, x


def _assert_gradient_matches_central_difference(f, t, *, eps, rtol, seed):
    """grad f(t) · d equals (f(t + eps d) - f(t - eps d)) / 2 eps along a random direction d,
    and the gradient is not zero (float64 expected)."""
    direction = jnp.asarray(np.random.default_rng(seed).normal(size=t.shape))
    grad = jax.jit(jax.grad(f))(t)
    f = jax.jit(f)
    fd = (f(t + eps * direction) - f(t - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(jnp.vdot(grad, direction), fd, rtol=rtol)
    assert float(jnp.abs(grad).max()) > 0


@pytest.mark.parametrize("loss", [perceptual.ssim_loss, perceptual.ms_ssim_loss])
def test_loss_gradient_matches_a_central_finite_difference(loss):
    with jax.enable_x64(True):
        logits, x = (jnp.asarray(a, jnp.float64) for a in _pair((2, 16, 16, 1)))
        _assert_gradient_matches_central_difference(
            lambda t: jnp.sum(loss(t, x)), logits, eps=1e-5, rtol=1e-6, seed=1
        )


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


def test_high_frequency_fraction_of_known_images():
    h = w = 8
    checker = (np.indices((h, w)).sum(0) % 2).astype(np.float64)[None, :, :, None]
    # a ±1 checkerboard is the Nyquist frequency in both axes: all its energy is high
    assert measures.high_frequency_fraction(checker) == pytest.approx(1.0)
    t = np.arange(w) / w
    wave = np.cos(2 * np.pi * t)[None, None, :, None] * np.ones((1, h, w, 1))
    # one cycle per image: 1/8 cycles per pixel, below half the Nyquist frequency (1/4)
    assert measures.high_frequency_fraction(wave) == pytest.approx(0.0, abs=1e-12)
    # energy per pixel: the half-height checkerboard (±1/4)² = 1/16, the cosine 1/2
    assert measures.high_frequency_fraction(0.5 * checker + wave) == pytest.approx(1 / 9)


def test_sharpness_ratio_is_one_for_the_data_below_for_blur_above_for_noise():
    from jaxae.data import generated

    x = generated.synthetic((28, 28, 1), 64, 1, seed=0).train_images.astype(np.float32) / 255
    blurred = np.asarray(dm_pix.gaussian_blur(jnp.asarray(x), sigma=1.0, kernel_size=7))
    noise = np.random.default_rng(0).normal(0, 0.1, x.shape)
    assert measures.sharpness_ratio(x, x) == 1.0
    assert measures.sharpness_ratio(blurred, x) < 0.5
    assert measures.sharpness_ratio(np.clip(x + noise, 0, 1), x) > 1.2
    assert np.isnan(measures.sharpness_ratio(x, np.full_like(x, 0.3)))  # no energy to compare


@pytest.fixture(scope="module")
def feature_workdir(tmp_path_factory):
    """A classifier of 28×28×1 images, a few steps on synthetic shapes: a workdir as the
    `jaxae.classifier` command writes it."""
    workdir = tmp_path_factory.mktemp("features") / "cls"
    classifier.main(
        [
            f"--workdir={workdir}",
            "--config.dataset.name=synthetic",
            "--config.dataset.max_train_examples=256",
            "--config.dataset.max_test_examples=64",
            "--config.num_steps=20",
        ]
    )
    return workdir


def test_feature_loss_is_zero_for_the_target_and_grows_with_the_difference(feature_workdir):
    loss = jax.jit(perceptual.feature_loss(str(feature_workdir)))
    x = jnp.asarray(_pair(seed=5)[1], jnp.float32)
    logits = jnp.log(x) - jnp.log1p(-x)  # sigmoid(logits) = x
    np.testing.assert_allclose(loss(logits, x), 0.0, atol=1e-8)
    noise = jax.random.normal(jax.random.PRNGKey(0), x.shape)
    values = [float(loss(logits + s * noise, x).mean()) for s in (0.1, 0.5, 2.0)]
    assert 0 < values[0] < values[1] < values[2]


def test_feature_loss_gradient_matches_a_central_finite_difference(feature_workdir):
    module, params, _ = classifier.load(feature_workdir)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), params)
        logits, x = (jnp.asarray(a, jnp.float64) for a in _pair((2, 12, 12, 1), seed=6))

        def f(t):
            return jnp.sum(perceptual.feature_distance(module, params, jax.nn.sigmoid(t), x))

        # a small step: a ReLU whose input changes sign inside it would bend the difference
        _assert_gradient_matches_central_difference(f, logits, eps=1e-7, rtol=1e-5, seed=7)


def test_perceptual_config_trains_and_logs_feature_loss(tmp_path, feature_workdir):
    config = tiny_config("perceptual", num_steps=4, eval_every=4)
    config.perceptual.feature_workdir = str(feature_workdir)
    summary = train.train_and_evaluate(config, tmp_path / "run")
    assert summary["feature_loss"] > 0
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert any("feature_loss" in line for line in lines if line.get("split") == "train")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["perceptual"]["feature_workdir"] == str(feature_workdir)


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
