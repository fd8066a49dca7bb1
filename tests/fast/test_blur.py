"""jaxae.fast.blur: dm-pix's SSIM with the band-matrix window equals dm-pix's own (values, maps,
gradients), compiles without convolutions, and the eval step uses it with the fast ops only."""

import functools

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import steps
from jaxae.fast.blur import band_matrix, gaussian_window, valid_gaussian_blur

# (image shape [B, H, W, C], filter size): Fashion-MNIST, CIFAR-sized colour, the small and
# even windows image_metrics picks for images under 11 pixels
CASES = [((4, 28, 28, 1), 11), ((2, 32, 32, 3), 11), ((3, 7, 9, 2), 7), ((2, 10, 12, 1), 4)]


def pair(shape):
    a = jax.random.uniform(jax.random.PRNGKey(0), shape)
    noise = 0.1 * jax.random.normal(jax.random.PRNGKey(1), shape)
    return a, jnp.clip(a + noise, 0.0, 1.0)


def test_band_matrix_is_a_valid_convolution():
    window = jnp.array([0.1, 0.5, 0.2, 0.2])  # not symmetric: catches an unflipped window
    z = jnp.arange(9.0) ** 1.5
    np.testing.assert_allclose(
        band_matrix(9, window) @ z, jnp.convolve(z, window, mode="valid"), rtol=1e-6
    )
    assert float(jnp.sum(gaussian_window(11, 1.5))) == pytest.approx(1.0)


@pytest.mark.parametrize("shape, size", CASES)
def test_ssim_with_the_band_blur_equals_dm_pix(shape, size):
    a, b = pair(shape)

    @functools.partial(jax.jit, static_argnums=0)
    def ssim(fast, a):
        """(mean SSIM [B], SSIM map, d sum(SSIM) / d a) with dm-pix's window or the band one."""
        blur = valid_gaussian_blur(size) if fast else None

        def total(a):
            return jnp.sum(dm_pix.ssim(a, b, filter_size=size, filter_fn=blur))

        ssim_map = dm_pix.ssim(a, b, filter_size=size, filter_fn=blur, return_map=True)
        return dm_pix.ssim(a, b, filter_size=size, filter_fn=blur), ssim_map, jax.grad(total)(a)

    (fast, fast_map, fast_grad), (plain, plain_map, plain_grad) = ssim(True, a), ssim(False, a)
    # float32: the window's two forms round differently, and differently again on CPUs with
    # AVX-512 (1.25e-6 apart there); the mean can be no further apart than the map
    np.testing.assert_allclose(fast, plain, atol=1e-5)
    assert fast_map.shape == plain_map.shape
    np.testing.assert_allclose(fast_map, plain_map, atol=1e-5)
    np.testing.assert_allclose(fast_grad, plain_grad, atol=1e-5)


def test_band_blur_compiles_to_dots_not_convolutions():
    a, b = pair((8, 28, 28, 1))

    def hlo(blur):
        ssim = jax.jit(lambda a, b: dm_pix.ssim(a, b, filter_fn=blur))
        return ssim.lower(a, b).compile().as_text()

    assert " convolution(" in hlo(None)  # dm-pix's own window: jnp.convolve per row
    text = hlo(valid_gaussian_blur(11))
    assert " convolution(" not in text and " dot(" in text


def test_eval_step_uses_the_band_blur_with_the_fast_ops_only():
    logits = jax.random.normal(jax.random.PRNGKey(2), (4, 28, 28, 1))
    x = jax.nn.sigmoid(logits + 0.3)

    def hlo(fast):
        return jax.jit(lambda y, x: steps.image_metrics(y, x, fast)).lower(logits, x).as_text()

    assert "convolution" in hlo(False) and "convolution" not in hlo(True)
    plain, fast = steps.image_metrics(logits, x), steps.image_metrics(logits, x, fast=True)
    np.testing.assert_allclose(fast["ssim"], plain["ssim"], atol=1e-6)
    np.testing.assert_array_equal(fast["mse"], plain["mse"])
