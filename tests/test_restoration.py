"""Restoration corruptions (blur, ×2 downsample) and the analysis that scores them."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import config as config_lib
from jaxae import corruption, data, losses, models
from jaxae.analysis.context import Context, Limits, Skipped
from jaxae.analysis.load import Run
from jaxae.analysis.restoration import restoration

KEY = jax.random.PRNGKey(0)


def _smooth(h=28):
    """A smooth image [1, h, h, 1] in [0, 1], zero near the border."""
    r = np.hypot(*np.meshgrid(np.arange(h) - h / 2 + 0.5, np.arange(h) - h / 2 + 0.5))
    return jnp.asarray(np.exp(-(r**2) / 40.0)[None, :, :, None], jnp.float32)


def test_blur_keeps_the_mass_and_removes_detail():
    x = jnp.zeros((1, 28, 28, 1)).at[0, 14, 14, 0].set(1.0)  # an impulse far from the border
    y = corruption.corrupt(x, KEY, "blur", sigma=1.0, p=0.0)
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-5)  # a normalised kernel
    assert float(y.max()) == pytest.approx(1 / (2 * np.pi), rel=0.05)  # the Gaussian's peak
    np.testing.assert_array_equal(corruption.blur(x, 0.0), x)


def test_downsample_keeps_only_the_low_resolution_image():
    x = _smooth()
    y = np.asarray(corruption.corrupt(x, KEY, "downsample", sigma=0.0, p=0.0))
    for di, dj in ((0, 1), (1, 0), (1, 1)):  # constant on 2×2 blocks
        np.testing.assert_array_equal(y[:, ::2, ::2], y[:, di::2, dj::2])
    low = np.asarray(corruption.low_resolution(x))
    assert low.shape == (1, 14, 14, 1)
    np.testing.assert_array_equal(y[:, ::2, ::2], low)


def test_bicubic_beats_pixel_replication_on_a_smooth_image():
    x = _smooth()
    nearest = losses.psnr(corruption.downsample(x), x)
    bicubic = losses.psnr(corruption.bicubic_upsample(x), x)
    assert float(bicubic[0]) > float(nearest[0]) + 3.0
    flat = jnp.full((1, 28, 28, 1), 0.4)
    np.testing.assert_allclose(corruption.bicubic_upsample(flat), flat, atol=1e-5)


def test_the_config_takes_the_new_kinds():
    for kind in ("blur", "downsample"):
        config_lib.validate(tiny_config("conv_simple", **{"denoise.kind": kind}))


def _ctx(tmp_path, kind):
    config = tiny_config("conv_simple", **{"denoise.kind": kind, "denoise.sigma": 1.0})
    model = models.create_model("conv_simple")
    variables = model.init(KEY, jnp.zeros((1, 28, 28, 1)), train=False)
    run = Run(model, dict(variables), config, step=0, workdir=pathlib.Path("."))
    limits = Limits(eval_examples=16, batch_size=16)
    return Context(run, data.load_for_config(config), tmp_path, limits)


@pytest.mark.slow  # compiles the model, SSIM and both corruptions
@pytest.mark.parametrize("kind", ["blur", "downsample"])
def test_restoration_scores_input_output_and_baseline(tmp_path, kind):
    ctx = _ctx(tmp_path, kind)
    out = restoration(ctx)
    x = jnp.asarray(ctx.x_eval)
    degraded = corruption.corrupt(x, None, kind, sigma=1.0, p=0.0)
    psnr = float(jnp.mean(losses.psnr(degraded, x)))
    assert out["degraded"]["psnr"] == pytest.approx(psnr, rel=1e-5)
    restored = float(jnp.mean(losses.psnr(ctx.run.reconstruct(degraded), x)))
    assert out["restored"]["psnr"] == pytest.approx(restored, rel=1e-5)
    assert out["psnr_gain_over_degraded"] == pytest.approx(restored - psnr, rel=1e-4)
    assert ("bicubic" in out) == (kind == "downsample")
    assert (tmp_path / "restoration.png").read_bytes()[:4] == b"\x89PNG"


def test_restoration_skips_runs_without_corruption(tmp_path):
    with pytest.raises(Skipped, match="not a denoising run"):
        restoration(_ctx(tmp_path, "none"))
