"""Mathematical identities of the loss terms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ynn_fusion_bodies

from jaxae import losses


def test_kl_closed_form_matches_monte_carlo():
    key_mu, key_lv, key_eps = jax.random.split(jax.random.PRNGKey(0), 3)
    mu = jax.random.normal(key_mu, (3, 4))
    logvar = 0.5 * jax.random.normal(key_lv, (3, 4))
    n = 400_000
    eps = jax.random.normal(key_eps, (n, 3, 4))
    z = mu + jnp.exp(0.5 * logvar) * eps
    log_q = -0.5 * (eps**2 + logvar + jnp.log(2 * jnp.pi))
    log_p = -0.5 * (z**2 + jnp.log(2 * jnp.pi))
    monte_carlo = jnp.mean(jnp.sum(log_q - log_p, axis=-1), axis=0)
    closed = losses.gaussian_kl(mu, logvar)
    np.testing.assert_allclose(monte_carlo, closed, rtol=0.02, atol=0.01)


def test_kl_is_zero_at_the_prior():
    assert float(jnp.max(jnp.abs(losses.gaussian_kl(jnp.zeros((2, 5)), jnp.zeros((2, 5)))))) == 0


def test_bce_from_logits_is_stable_and_matches_the_naive_formula():
    logits = jnp.array([[-3.0, 0.0, 2.5, 7.0]])
    x = jnp.array([[0.0, 0.3, 1.0, 0.9]])
    p = jax.nn.sigmoid(logits)
    naive = -(x * jnp.log(p) + (1 - x) * jnp.log(1 - p))
    np.testing.assert_allclose(losses.bce(logits, x), naive.mean(-1), rtol=1e-5)
    extreme = losses.bce(jnp.array([[500.0, -500.0]]), jnp.array([[0.0, 1.0]]))
    assert np.isfinite(extreme).all() and float(extreme[0]) == 500.0


def test_per_example_shapes_and_values():
    x = jnp.full((2, 4, 4, 1), 0.5)
    logits = jnp.zeros((2, 4, 4, 1))  # sigmoid(0) = 0.5: perfect reconstruction
    for fn in (losses.mse, losses.l1):
        assert fn(logits, x).shape == (2,) and float(jnp.max(fn(logits, x))) == 0.0
    np.testing.assert_allclose(losses.bernoulli_nll(logits, x), 16 * np.log(2), rtol=1e-6)
    assert float(losses.psnr(jnp.full((1, 4), 0.4), jnp.full((1, 4), 0.5))[0]) == pytest.approx(
        20, rel=1e-5
    )


def test_gaussian_nll_is_the_normal_log_density():
    x = jnp.array([[0.2, 0.7]])
    logits = jnp.array([[0.1, -0.3]])
    sigma = 0.3
    mean = jax.nn.sigmoid(logits)
    expected = -jnp.sum(jax.scipy.stats.norm.logpdf(x, mean, sigma), axis=-1)
    np.testing.assert_allclose(losses.gaussian_nll(logits, x, sigma), expected, rtol=1e-5)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's YNNPACK fusions")
def test_mse_keeps_the_sigmoid_out_of_cpu_library_reductions():
    """mse as a metric alone (the VAEs') must not compile into a YNNPACK fusion with the
    sigmoid's exp and divide inside: 10x slower than XLA's own loops (benchmarks/ATTEMPTS.md)."""
    from jaxae.fast import process as tuning

    logits = jax.random.normal(jax.random.PRNGKey(0), (128, 28, 28, 1))
    x = jax.random.uniform(jax.random.PRNGKey(1), (128, 28, 28, 1))
    mse = jax.jit(losses.mse, compiler_options=tuning.step_compiler_options())
    bodies = ynn_fusion_bodies(mse.lower(logits, x).compile().as_text())
    assert not [b for b in bodies if "exponential(" in b or "divide(" in b]
    want = np.mean((1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64))) - x) ** 2, (1, 2, 3))
    np.testing.assert_allclose(mse(logits, x), want, rtol=1e-5)
