"""One importance-sampled NLL: summary.json's test NLL and the analysis's NLL and ELBO agree."""

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import data, models
from jaxae import vae as vae_lib
from jaxae.analysis import vae as vae_analysis
from jaxae.analysis.context import Context
from jaxae.analysis.load import Run

from .conftest import LIMITS


@pytest.fixture(scope="module")
def vae_model():
    """(Run, dataset) of an untrained FC VAE with k = 4 on the tiny synthetic data (no training)."""
    config = tiny_config("vae", **{"model.latent_dim": 4})
    model = models.create_model("vae", latent_dim=4)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)), train=False)
    run = Run(model, dict(variables), config, step=0, workdir=pathlib.Path("."))
    return run, data.load_for_config(config)


def test_the_nll_is_the_log_mean_of_the_importance_weights(vae_model):
    run, ds = vae_model
    x = jnp.asarray(data.to_float(ds.test_images[:5]))
    key, k = jax.random.PRNGKey(1), 6
    log_w = vae_lib.log_importance_weights(run.model, run.variables, x, key, num_samples=k)
    assert log_w.shape == (5, k)
    nll = vae_lib.importance_sampled_nll(run.model, run.variables, x, key, num_samples=k)
    np.testing.assert_array_equal(nll, vae_lib.nll_from_log_weights(log_w))
    by_hand = -np.log(np.mean(np.exp(np.asarray(log_w, np.float64)), axis=1))
    np.testing.assert_allclose(nll, by_hand, rtol=1e-5)
    assert np.all(np.asarray(nll) <= -np.mean(np.asarray(log_w), axis=1) + 1e-4)  # Jensen


def test_summary_nll_and_the_analysis_use_the_same_weights(vae_model):
    """vae.nll_of_images (training's summary.json) == the analysis's log weights → NLL."""
    run, ds = vae_model
    images, key, k, chunk = ds.test_images[:13], jax.random.PRNGKey(2), 5, 4  # 4 batches, 1 padded
    cfg = run.config.vae
    summary_nll = vae_lib.nll_of_images(
        run.model,
        run.variables,
        images,
        key,
        num_samples=k,
        binarization="none",
        likelihood=cfg.likelihood,
        sigma=cfg.gaussian_sigma,
        chunk=chunk,
    )
    _, sample_key = jax.random.split(key)  # nll_of_images: bin_key, sample_key = split(key)
    log_w = vae_analysis.log_weights(
        run, data.to_float(images), sample_key, num_samples=k, batch_size=chunk
    )
    assert log_w.shape == (13, k)
    analysis_nll = float(np.mean(vae_lib.nll_from_log_weights(log_w)))
    assert summary_nll == pytest.approx(analysis_nll, rel=1e-6)


def test_the_vae_analysis_reports_that_nll_and_elbo(vae_model, tmp_path):
    run, ds = vae_model
    ctx = Context(run, ds, tmp_path, LIMITS)
    numbers = vae_analysis.vae(ctx)
    key_nll = jax.random.split(jax.random.fold_in(ctx.key, 7))[1]
    x = ctx.x_eval[: LIMITS.nll_examples]
    log_w = vae_lib.log_importance_weights(
        run.model, run.variables, x, jax.random.fold_in(key_nll, 0), num_samples=4
    )  # 8 images: one batch, starting at 0
    nll = vae_lib.nll_from_log_weights(log_w)
    assert numbers["nll_nats"] == pytest.approx(float(jnp.mean(nll)), rel=1e-5)
    assert numbers["elbo_nats"] == pytest.approx(float(jnp.mean(log_w)), rel=1e-5)
    d = math.prod(run.image_shape)
    assert numbers["nll_bits_per_dim"] == pytest.approx(numbers["nll_nats"] / (d * math.log(2)))
    assert ctx.figures == [
        "vae_prior_samples.png",
        "vae_traversal.png",
        "vae_nll.png",
        "vae_kl_per_dim.png",
    ]


def test_the_summary_nll_with_the_fast_compile_options_is_the_same_nll(vae_model):
    """Training scores summary.json's NLL with the eval step's XLA options (on CPU: XLA's own
    convolutions): other kernels, the same estimate."""
    from jaxae.fast import process

    _, ds = vae_model
    model = models.create_model("conv_vae", fast=True, latent_dim=4)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)), train=False)
    options = process.step_compiler_options(True)

    def nll(compiler_options):
        return vae_lib.nll_of_images(
            model,
            variables,
            ds.test_images[:6],
            jax.random.PRNGKey(3),
            num_samples=3,
            binarization="dynamic",
            likelihood="bernoulli",
            sigma=0.1,
            chunk=4,
            compiler_options=compiler_options,
        )

    assert nll(options) == pytest.approx(nll(None), rel=1e-5)
