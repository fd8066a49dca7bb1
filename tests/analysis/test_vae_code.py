"""What a VAE's code carries: active units and the KL = I(x; z) + KL(q(z) ‖ p) estimator."""

import jax
import numpy as np
import pytest
from scipy import stats

from jaxae.analysis import vae as vae_analysis

KEY = jax.random.PRNGKey(0)


def test_active_units_count_dimensions_whose_mean_varies_with_x():
    rng = np.random.default_rng(0)
    mu = np.stack([rng.normal(0, 1, 500), rng.normal(0, 0.05, 500), np.full(500, 3.0)], axis=1)
    n, activity = vae_analysis.active_units(mu)
    assert n == 1  # variances ≈ 1, 0.0025 and 0
    np.testing.assert_allclose(activity, np.var(mu, axis=0))


def test_mixture_log_density_is_the_gaussian_density():
    rng = np.random.default_rng(1)
    z, mu, logvar = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    got = vae_analysis.log_gaussian_mixture(z, mu, logvar)
    want = [
        [
            stats.multivariate_normal(m, np.diag(np.exp(lv))).logpdf(zi)
            for m, lv in zip(mu, logvar, strict=True)
        ]
        for zi in z
    ]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_a_posterior_that_ignores_x_carries_no_information():
    """All posteriors equal: log q(z|x_n) = log q(z) for every sample, so I = 0 exactly and the
    whole KL is marginal KL."""
    n = 400
    mu = np.tile([0.5, -1.0, 2.0], (n, 1))
    logvar = np.tile([0.0, -1.0, 0.5], (n, 1))
    out = vae_analysis.kl_decomposition(mu, logvar, KEY, chunk=128)
    assert abs(out["mutual_information_nats"]) < 1e-9
    assert out["marginal_kl_nats"] == pytest.approx(out["mean_kl_nats"], rel=0.1)


def test_separated_shifted_priors_carry_log_n():
    """q(z|x_n) = N(mu_n, I), the prior shifted far apart: the mixture's components do not
    overlap, so I(x; z) = H(x) = log N, the bound; the rest of the KL is marginal."""
    n = 50
    mu = np.zeros((n, 2))
    mu[:, 0] = 40.0 * (np.arange(n) - n / 2)
    out = vae_analysis.kl_decomposition(mu, np.zeros((n, 2)), KEY)
    assert out["mutual_information_nats"] == pytest.approx(np.log(n), abs=1e-6)
    assert out["mean_kl_nats"] == pytest.approx(np.mean(np.sum(mu**2, 1)) / 2)
    total = out["mutual_information_nats"] + out["marginal_kl_nats"]
    assert total == pytest.approx(out["mean_kl_nats"], rel=0.01)  # Monte-Carlo KL ≈ closed form


def test_shifted_posteriors_whose_mixture_is_the_prior_carry_all_the_kl():
    """q(z|x_n) = N(mu_n, s²) with mu_n the N quantiles of N(0, 1 − s²): the aggregate posterior
    is the prior up to a finite-N error, so KL(q(z) ‖ p) ≈ 0 and I(x; z) ≈ the mean KL, which is
    −k/2 · log s² here."""
    n, k, s2 = 2000, 2, 0.5
    q = stats.norm.ppf((np.arange(n) + 0.5) / n) * np.sqrt(1 - s2)
    mu = np.stack([q, np.random.default_rng(0).permutation(q)], axis=1)
    out = vae_analysis.kl_decomposition(mu, np.full((n, k), np.log(s2)), KEY)
    assert out["mean_kl_nats"] == pytest.approx(-k / 2 * np.log(s2), rel=0.01)
    assert out["marginal_kl_nats"] == pytest.approx(0.0, abs=0.03)
    assert out["mutual_information_nats"] == pytest.approx(out["mean_kl_nats"], abs=0.05)


def test_the_information_estimate_never_exceeds_log_n():
    """Each term log q(z_n|x_n) − log((1/N) Σ_m q(z_n|x_m)) ≤ log N, since the sum holds m = n."""
    rng = np.random.default_rng(2)
    mu, logvar = 30 * rng.normal(size=(20, 4)), rng.normal(-4, 1, size=(20, 4))
    out = vae_analysis.kl_decomposition(mu, logvar, KEY)
    assert (
        out["mutual_information_nats"] <= np.log(20) + 1e-8
    )  # float64 rounding of the matmul form
    assert out["mutual_information_nats"] == pytest.approx(np.log(20), abs=1e-3)
