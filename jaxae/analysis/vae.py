"""VAE analyses: prior samples, a latent traversal, the importance-sampled NLL and ELBO, and what
the code carries (active units, KL per dimension, the KL split into I(x; z) and marginal KL)."""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
from scipy import special, stats

from jaxae import vae as vae_lib
from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped
from jaxae.analysis.load import Run
from jaxae.runtime.batching import map_over_batches

plt = figures.plt


def vae(ctx: Context) -> dict:
    """VAE only: samples from the prior, a 2-D latent traversal grid, NLL by importance sampling,
    and what the code carries: active units, KL per dimension, KL = I(x; z) + KL(q(z) ‖ p)."""
    run = ctx.run
    if not run.is_vae:
        raise Skipped(f"model {run.config.model.name!r} is not a VAE")
    key_prior, key_nll = jax.random.split(jax.random.fold_in(ctx.key, 7))
    prior_samples(ctx, key_prior)
    mu, logvar = ctx.batched(run.encode, ctx.x_eval)  # [N, k] each
    kl_per_dim = 0.5 * np.mean(np.exp(logvar) + mu**2 - 1.0 - logvar, axis=0)  # [k]
    dims, values = traversal(ctx, kl_per_dim)
    n_nll = min(ctx.limits.nll_examples, len(ctx.x_eval))
    log_w = log_weights(
        run,
        ctx.x_eval[:n_nll],
        key_nll,
        num_samples=ctx.limits.nll_samples,
        batch_size=ctx.batch_size,
    )
    nll = np.asarray(vae_lib.nll_from_log_weights(log_w))  # [n]
    nll_histogram(ctx, nll, log_w.shape[1])
    carried = code_usage(ctx, np.asarray(mu), np.asarray(logvar), jax.random.fold_in(ctx.key, 8))
    d = math.prod(run.image_shape)
    return {
        "likelihood": run.config.vae.likelihood,
        "nll_nats": float(nll.mean()),
        "nll_bits_per_dim": float(nll.mean() / (d * math.log(2))),
        "elbo_nats": float(np.mean(log_w)),  # same samples: E_q[log w] ≤ log p(x)
        "nll_examples": n_nll,
        "nll_samples": int(log_w.shape[1]),
        "kl_per_dim": kl_per_dim.tolist(),
        **carried,
        "traversal_dims": [int(d) for d in dims],
        "traversal_values": values.tolist(),
    }


def log_weights(
    run: Run, x: np.ndarray, key: jax.Array, *, num_samples: int, batch_size: int
) -> np.ndarray:
    """x [N, H, W, C] in [0, 1] → log importance weights [N, K] of `vae.log_importance_weights`.

    In padded batches of min(batch_size, N); the batch starting at `start` draws its samples from
    fold_in(key, start), as `vae.nll_of_images` does from its sample key.
    """
    cfg = run.config.vae
    fn = jax.jit(
        functools.partial(
            vae_lib.log_importance_weights,
            run.model,
            num_samples=num_samples,
            likelihood=cfg.likelihood,
            sigma=cfg.gaussian_sigma,
        )
    )
    return map_over_batches(lambda b, k: fn(run.variables, b, k), x, batch_size, key=key)


def prior_samples(ctx: Context, key: jax.Array) -> None:
    """Figure vae_prior_samples: 64 images decode(z), z ~ N(0, I) [64, k]."""
    z = np.asarray(jax.random.normal(key, (64, ctx.run.config.model.latent_dim)))
    samples = ctx.decode(z)
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    figures.show_image(ax, figures.tile(samples, 8, 8))
    ax.set_title("64 samples from the prior: decode(z), z ~ N(0, I)")
    ctx.save(fig, "vae_prior_samples")


def traversal(ctx: Context, kl_per_dim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Figure vae_traversal: a 9×9 grid over the two dimensions of largest KL (kl_per_dim [k]),
    the others at 0. Returns (the two dims [2], the prior quantiles used [9])."""
    run, k, n = ctx.run, len(kl_per_dim), 9
    dims = np.argsort(-kl_per_dim)[:2] if k >= 2 else np.array([0, 0])
    values = stats.norm.ppf(np.linspace(0.05, 0.95, n)).astype(np.float32)
    grid = np.zeros((n, n, k), np.float32)
    for i, vy in enumerate(values[::-1]):
        for j, vx in enumerate(values):
            grid[i, j, dims[0]] = vx
            grid[i, j, dims[1]] = vy
    images = ctx.decode(grid.reshape(n * n, k))
    h, w = run.image_shape[:2]
    fig, ax = plt.subplots(figsize=(7, 7))
    figures.show_image(ax, figures.tile(images, n, n))
    ax.set_xticks([(w + 1) * j + w / 2 for j in range(n)], [f"{v:.1f}" for v in values])
    ax.set_yticks([(h + 1) * i + h / 2 for i in range(n)], [f"{v:.1f}" for v in values[::-1]])
    ax.set_xlabel(f"z[{dims[0]}] (largest KL)")
    ax.set_ylabel(f"z[{dims[1]}] (second largest KL)")
    ax.set_title("latent traversal, other dimensions at 0 (prior quantiles 5%..95%)")
    ctx.save(fig, "vae_traversal")
    return dims, values


def nll_histogram(ctx: Context, nll: np.ndarray, num_samples: int) -> None:
    """Figure vae_nll: the histogram of the per-image NLL [n] in nats."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(nll, bins=40, color="C0")
    ax.axvline(nll.mean(), color="k", ls="--", label=f"mean {nll.mean():.1f} nats")
    ax.set_xlabel("−log p(x) (nats), importance sampling")
    ax.set_ylabel("test images")
    ax.set_title(f"NLL on {len(nll)} test images, {num_samples} samples each")
    ax.legend()
    ctx.save(fig, "vae_nll")


ACTIVE_THRESHOLD = 0.01  # Burda et al.'s threshold on Cov_x(E_q[z_u])


def active_units(mu: np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> tuple[int, np.ndarray]:
    """Burda et al.'s activity A_u = Var_x(E_q(z|x)[z_u]) of each dimension from the posterior
    means mu [N, k]: (number of units with A_u > threshold, A [k])."""
    activity = np.var(np.asarray(mu, np.float64), axis=0)
    return int(np.sum(activity > threshold)), activity


def log_gaussian_mixture(z: np.ndarray, mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """log N(z_i; mu_m, diag exp(logvar_m)) for every sample z_i [B, k] and component m of
    mu, logvar [N, k]: [B, N], in float64 through matmuls (B·N·k without a [B, N, k] array)."""
    inv = np.exp(-logvar)  # [N, k]
    const = np.sum(mu**2 * inv + logvar, axis=1) + mu.shape[1] * np.log(2 * np.pi)  # [N]
    quad = (z**2) @ inv.T - 2.0 * z @ (mu * inv).T  # [B, N]
    return -0.5 * (quad + const[None, :])


def kl_decomposition(
    mu: np.ndarray, logvar: np.ndarray, key: jax.Array, *, chunk: int = 1000
) -> dict[str, float]:
    """E_n KL(q(z|x_n) ‖ p) = I(x; z) + KL(q(z) ‖ p) (Hoffman & Johnson 2016) on N posteriors.

    mu, logvar [N, k] are the Gaussian posteriors of N images; the aggregate posterior is their
    uniform mixture q(z) = (1/N) Σ_m q(z|x_m) and x is uniform over the N images. One sample
    z_n ~ q(z|x_n) per image gives the Monte-Carlo estimates
      I(x; z)        ≈ (1/N) Σ_n [log q(z_n|x_n) − log q(z_n)]   (0 ≤ each term's mean; ≤ log N)
      KL(q(z) ‖ p)   ≈ (1/N) Σ_n [log q(z_n) − log p(z_n)],
    whose sum is the Monte-Carlo estimate of the mean KL (reported next to its closed form).
    """
    mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    n, k = mu.shape
    eps = np.asarray(jax.random.normal(key, (n, k)), np.float64)
    z = mu + np.exp(0.5 * logvar) * eps  # [N, k]
    own = -0.5 * np.sum(eps**2 + logvar + np.log(2 * np.pi), axis=1)  # log q(z_n|x_n) [N]
    prior = -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=1)  # log p(z_n) [N]
    agg = np.concatenate(
        [
            special.logsumexp(log_gaussian_mixture(z[i : i + chunk], mu, logvar), axis=1)
            for i in range(0, n, chunk)
        ]
    ) - np.log(n)  # log q(z_n) [N]
    kl = 0.5 * np.sum(np.exp(logvar) + mu**2 - 1.0 - logvar, axis=1)  # [N]
    return {
        "mean_kl_nats": float(kl.mean()),
        "mutual_information_nats": float(np.mean(own - agg)),
        "marginal_kl_nats": float(np.mean(agg - prior)),
        "mutual_information_bound_nats": float(np.log(n)),  # I ≤ H(x) = log N
        "decomposition_examples": n,
    }


def code_usage(ctx: Context, mu: np.ndarray, logvar: np.ndarray, key: jax.Array) -> dict:
    """Figure vae_kl_per_dim: each dimension's mean KL (sorted) and its activity; the numbers of
    active units and of the KL = I(x; z) + marginal KL split on the eval images."""
    n_active, activity = active_units(mu)
    kl_dims = 0.5 * np.mean(np.exp(logvar) + mu**2 - 1.0 - logvar, axis=0)  # [k]
    split = kl_decomposition(mu, logvar, key)
    order = np.argsort(-kl_dims)
    active = activity[order] > ACTIVE_THRESHOLD
    fig, ax = plt.subplots(figsize=(max(6.0, 0.12 * len(order)), 4))
    ax.bar(np.arange(len(order)), kl_dims[order], color=np.where(active, "C0", "C7"))
    ax.set_xticks(np.arange(len(order)), [str(d) for d in order], fontsize=6, rotation=90)
    ax.set_xlabel("latent dimension (sorted by KL); grey: inactive, Var_x(E[z]) ≤ 0.01")
    ax.set_ylabel("mean KL(q(z_d|x) ‖ N(0, 1)) (nats)")
    ax.set_title(
        f"{n_active}/{len(order)} active units; KL {split['mean_kl_nats']:.2f} = "
        f"I(x;z) {split['mutual_information_nats']:.2f} + "
        f"KL(q(z)‖p) {split['marginal_kl_nats']:.2f} nats"
    )
    ctx.save(fig, "vae_kl_per_dim")
    return {
        "active_units": n_active,
        "active_threshold": ACTIVE_THRESHOLD,
        "unit_activity": activity.tolist(),
        **split,
        "decomposition_estimator": "one sample per posterior; q(z) = mixture of the N posteriors",
    }
