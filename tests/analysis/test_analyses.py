"""The analyses one by one on the session's tiny runs: what they compute, through a Context."""

import dataclasses

import jax
import numpy as np
import pytest

from jaxae import data, measures
from jaxae.analysis import cli, curves, features, latent, parameters, reconstruction
from jaxae.analysis.context import Context, Skipped, one_per_class
from jaxae.analysis.load import load

from .conftest import LIMITS


def _context(workdir, outdir, limits=LIMITS):
    run = load(workdir)
    return Context(run, data.load_for_config(run.config), outdir, limits)


@pytest.fixture(scope="module")
def vae_ctx(vae_run, tmp_path_factory):
    return _context(vae_run[0], tmp_path_factory.mktemp("vae_figures"))


@pytest.fixture(scope="module")
def linear_ctx(linear_run, tmp_path_factory):
    return _context(linear_run[1], tmp_path_factory.mktemp("linear_figures"))


def test_batched_is_the_function_on_all_images_at_once(vae_ctx):
    ctx = dataclasses.replace(LIMITS, batch_size=10)  # 32 images: batches of 10, the last padded
    ctx = _context(vae_ctx.run.workdir, vae_ctx.outdir, ctx)
    x = ctx.x_eval
    np.testing.assert_allclose(ctx.codes(x), np.asarray(ctx.run.code(x)), rtol=1e-5, atol=1e-6)
    mu, logvar = ctx.batched(ctx.run.encode, x)
    assert mu.shape == logvar.shape == (32, 128)
    keys = ctx.batched(
        lambda b, k: np.broadcast_to(jax.random.key_data(k), (len(b), 2)), x, ctx.key
    )
    starts = [0, 10, 20, 30]
    want = [jax.random.key_data(jax.random.fold_in(ctx.key, s)) for s in starts]
    np.testing.assert_array_equal(keys[::10], np.stack(want))


def test_vae_reconstructions_decode_the_mean_code(vae_ctx):
    ctx = vae_ctx
    mu, _ = ctx.batched(ctx.run.encode, ctx.x_eval)
    np.testing.assert_array_equal(ctx.eval_codes, mu)
    from_mu = ctx.decode(mu)
    np.testing.assert_allclose(jax.nn.sigmoid(ctx.eval_logits), from_mu, rtol=1e-5, atol=1e-6)
    mse = np.mean((from_mu - ctx.x_eval) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(ctx.eval_metrics["mse"], mse, rtol=1e-4, atol=1e-7)


def test_reconstruction_figures_and_metrics(vae_ctx):
    ctx = vae_ctx
    ctx.figures = []
    numbers = reconstruction.reconstructions(ctx)
    assert ctx.figures == ["reconstructions.png"] and len(numbers["mse"]) == 10
    metrics = reconstruction.test_metrics(ctx)
    assert metrics["overall"]["mse"] == pytest.approx(float(ctx.eval_metrics["mse"].mean()))
    assert set(metrics["per_class"]) == set(ctx.names)
    recon = jax.nn.sigmoid(ctx.eval_logits)
    ratio = measures.sharpness_ratio(recon, ctx.x_eval)
    assert metrics["sharpness_ratio"] == ratio > 0
    assert ratio == pytest.approx(
        metrics["high_frequency_fraction"] / metrics["high_frequency_fraction_of_originals"]
    )
    assert all("sharpness_ratio" in m for m in metrics["per_class"].values())


def test_training_curves_and_parameters(vae_ctx):
    numbers = curves.training_curves(vae_ctx)
    assert set(numbers["terms"]) >= {"loss", "kl", "recon", "elbo", "grad_norm"}
    assert numbers["final"]["eval"]["loss"] > 0
    record = {"step": 1, "split": "train", "loss": 1.0, "skipped": True, "note": "x", "n": 2}
    assert curves.numeric_terms([record]) == ["loss", "n"]
    p = parameters.parameters(vae_ctx)
    assert p["code_size"] == 128 and p["input_size"] == 784
    assert p["params"] == sum(p["per_layer"].values())


def test_feature_maps_of_a_conv_encoder(vae_ctx):
    layers = features.encoder_layers(vae_ctx, vae_ctx.x_eval[:3])
    assert layers["enc_0"].shape == (3, 14, 14, 16) and layers["mu"].shape == (3, 128)
    stats = features.layer_stats(np.array([[0.0, 1.0], [0.0, 3.0]]))
    assert stats["dead_units"] == 1 and stats["zero_fraction"] == 0.5 and stats["shape"] == [2]


def test_code_maps_and_interpolation(vae_ctx):
    maps, numbers = latent.code_maps(vae_ctx.eval_codes_flat, 20, seed=0)
    assert maps["PCA"].shape == (32, 2) and maps["t-SNE"].shape == (20, 2)
    assert numbers["points"]["t-SNE"] == 20
    steps = latent.interpolation(vae_ctx)["mean_rms_change_per_step"]
    assert len(steps) == 4 and all(s >= 0 for s in steps)


def test_one_per_class():
    labels = np.array([3, 1, 1, 3, 0])
    assert one_per_class(labels, 10).tolist() == [4, 1, 0, 2, 3]  # classes 0, 1, 3, then the rest
    assert one_per_class(labels, 2).tolist() == [4, 1]


def test_analyses_that_do_not_apply_say_why(linear_ctx, vae_ctx):
    out = {name: cli.run_one(linear_ctx, name) for name in ("anomaly", "vae")}
    assert "exclude_class" in out["anomaly"]["skipped"]
    assert "not a VAE" in out["vae"]["skipped"]
    assert out["vae"]["figures"] == []
    with pytest.raises(Skipped, match="not the linear autoencoder"):
        parameters.pca_angles(vae_ctx)


def test_pca_angles_of_a_linear_run(linear_run, linear_ctx):
    _, _, summary = linear_run
    numbers = parameters.pca_angles(linear_ctx)
    angles = numbers["angles_degrees"]
    assert len(angles) == 8 and all(0 <= x <= 90 for x in angles)
    assert numbers["linear_ae_test_mse"] == pytest.approx(summary["mse"], rel=1e-5)


def test_pca_angles_are_zero_for_a_decoder_spanning_the_pca_subspace(linear_ctx):
    ds = linear_ctx.dataset
    x = data.to_float(ds.train_images).reshape(len(ds.train_images), -1)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    mix = np.random.default_rng(0).normal(size=(8, 8))  # any basis of the same span
    run = linear_ctx.run
    params = dict(run.variables["params"], dec_kernel=jax.numpy.asarray(mix @ vt[:8]))
    run = dataclasses.replace(run, variables={"params": params})
    ctx = Context(run, ds, linear_ctx.outdir, LIMITS)
    numbers = parameters.pca_angles(ctx)
    assert numbers["max_angle_degrees"] < 0.1
    assert numbers["pca_variance_in_decoder_span"] == pytest.approx(1.0, abs=1e-6)
