"""VAE analyses: prior samples, a latent traversal, and the importance-sampled NLL and ELBO."""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
from scipy import stats

from jaxae import vae as vae_lib
from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped
from jaxae.analysis.load import Run
from jaxae.runtime.batching import map_over_batches

plt = figures.plt


def vae(ctx: Context) -> dict:
    """VAE only: samples from the prior, a 2-D latent traversal grid, NLL by importance sampling."""
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
    d = math.prod(run.image_shape)
    return {
        "likelihood": run.config.vae.likelihood,
        "nll_nats": float(nll.mean()),
        "nll_bits_per_dim": float(nll.mean() / (d * math.log(2))),
        "elbo_nats": float(np.mean(log_w)),  # same samples: E_q[log w] ≤ log p(x)
        "nll_examples": n_nll,
        "nll_samples": int(log_w.shape[1]),
        "kl_per_dim": kl_per_dim.tolist(),
        "active_units": int(np.sum(np.var(mu, axis=0) > 0.01)),  # Burda et al. 2016
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
