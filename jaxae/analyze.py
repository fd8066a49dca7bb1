"""`python -m jaxae.analyze --workdir DIR`: figures, analysis.json and report.html of a run."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import html
import importlib.util
import json
import math
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util
from scipy import linalg, stats
from sklearn import cluster, decomposition, linear_model, manifold, metrics, pipeline, preprocessing

from jaxae import config as config_lib
from jaxae import data, errors, figures, losses, models
from jaxae.loading import Run, load
from jaxae.runtime.metrics import read as read_metrics

plt = figures.plt


class Skipped(Exception):
    """An analysis that does not apply to this run; the message says why (goes to analysis.json)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """How much data each analysis uses (smaller in tests; the defaults suit a laptop CPU)."""

    eval_examples: int = 10000  # test images for metrics, codes and anomaly scores
    tsne_points: int = 1000
    probe_train: int = 5000  # training images for the linear probe and the PCA baselines
    probe_test: int = 2000
    pca_train: int = 60000  # training images for the PCA subspace of a linear run
    nll_examples: int = 500
    nll_samples: int = 100  # importance samples per image
    batch_size: int = 250


class Context:
    """The run, its data and cached forward passes shared by the analyses; figures go to outdir."""

    def __init__(self, run: Run, dataset: data.Dataset, outdir: pathlib.Path, limits: Limits):
        self.run, self.dataset, self.outdir, self.limits = run, dataset, outdir, limits
        n = min(limits.eval_examples, len(dataset.test_images))
        self.x_eval = data.to_float(dataset.test_images[:n])  # [N, H, W, C] float32
        self.y_eval = dataset.test_labels[:n]  # [N] int32
        self.batch_size = min(limits.batch_size, n)
        self.names = figures.class_names(dataset.name, dataset.num_classes)
        self.key = jax.random.PRNGKey(run.config.seed)
        self.figures: list[str] = []

    def batched(self, fn: Callable, x: np.ndarray) -> Any:
        """fn over x [N, ...] in batches of one fixed size (the last one padded): one compile."""
        outs, b = [], self.batch_size
        for start in range(0, len(x), b):
            chunk = np.asarray(x[start : start + b])
            m = len(chunk)
            if m < b:
                chunk = np.concatenate([chunk, np.zeros((b - m, *chunk.shape[1:]), chunk.dtype)])
            out = fn(jnp.asarray(chunk))
            outs.append(jax.tree.map(lambda a, m=m: np.asarray(a)[:m], out))
        return jax.tree.map(lambda *a: np.concatenate(a), *outs)

    def codes(self, x: np.ndarray) -> np.ndarray:
        """x [N, H, W, C] → codes [N, ...] as the decoder takes them (mu for VAEs)."""
        return self.batched(self.run.code, x)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """codes [N, ...] → images [N, H, W, C] in [0, 1]."""
        return self.batched(self.run.decode, z)

    @functools.cached_property
    def eval_logits(self) -> np.ndarray:  # [N, H, W, C]
        return self.batched(self.run.logits, self.x_eval)

    @functools.cached_property
    def eval_metrics(self) -> dict[str, np.ndarray]:
        """Per-example mse, bce, psnr, ssim of the eval set: name → [N]."""
        filter_size = min(11, *self.run.image_shape[:2])
        fn = functools.partial(_image_metrics, filter_size=filter_size)
        pairs = np.stack([self.eval_logits, self.x_eval], axis=1)  # [N, 2, H, W, C]
        return self.batched(lambda p: fn(p[:, 0], p[:, 1]), pairs)

    @functools.cached_property
    def eval_codes(self) -> np.ndarray:  # [N, ...]
        return self.codes(self.x_eval)

    @functools.cached_property
    def eval_codes_flat(self) -> np.ndarray:  # [N, K]
        return self.eval_codes.reshape(len(self.eval_codes), -1)

    def save(self, fig, name: str) -> None:
        self.figures.append(figures.save(fig, self.outdir / f"{name}.png"))


@functools.partial(jax.jit, static_argnames="filter_size")
def _image_metrics(logits: jax.Array, x: jax.Array, filter_size: int) -> dict[str, jax.Array]:
    """logits, x [B, H, W, C] → per-example mse, bce (mean over pixels), psnr (dB), ssim: [B]."""
    recon = jax.nn.sigmoid(logits)
    bce = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, x).reshape(len(x), -1), axis=-1)
    return {
        "mse": losses.mse(logits, x),
        "bce": bce,
        "psnr": losses.psnr(recon, x),
        "ssim": dm_pix.ssim(recon, x, filter_size=filter_size),
    }


# ---------------------------------------------------------------------------------- analyses


def reconstructions(ctx: Context) -> dict:
    """Originals above reconstructions, and per-pixel squared-error heatmaps."""
    idx = _one_per_class(ctx.y_eval, 10)
    x = ctx.x_eval[idx]
    recon = np.asarray(jax.nn.sigmoid(ctx.eval_logits[idx]))
    err = np.mean((recon - x) ** 2, axis=-1)  # [n, H, W]
    n = len(idx)
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n + 1.2, 5.2), squeeze=False)
    vmax = float(err.max()) or 1.0
    for j, i in enumerate(idx):
        label = ctx.names[ctx.y_eval[i]]
        figures.show_image(axes[0, j], x[j], label)
        figures.show_image(axes[1, j], recon[j], f"MSE {err[j].mean():.4f}")
        im = axes[2, j].imshow(err[j], cmap="magma", vmin=0.0, vmax=vmax)
        axes[2, j].set_xticks([])
        axes[2, j].set_yticks([])
    for row, name in enumerate(("original", "reconstruction", "squared error")):
        axes[row, 0].set_ylabel(name)
    fig.colorbar(im, ax=axes[2, :].tolist(), fraction=0.02, pad=0.01, label="(x̂ − x)²")
    fig.suptitle(f"{ctx.run.config.model.name}: test images and reconstructions")
    ctx.save(fig, "reconstructions")
    return {"indices": idx.tolist(), "mse": err.mean(axis=(1, 2)).tolist()}


def test_metrics(ctx: Context) -> dict:
    """MSE, BCE, PSNR and SSIM on the test images, overall and per class."""
    m = ctx.eval_metrics
    result = {"examples": len(ctx.y_eval), "overall": {k: float(v.mean()) for k, v in m.items()}}
    classes = np.unique(ctx.y_eval)
    per_class = {
        ctx.names[c]: {k: float(v[ctx.y_eval == c].mean()) for k, v in m.items()} for c in classes
    }
    result["per_class"] = per_class
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5))
    colors = [figures.class_color(int(c)) for c in classes]
    for ax, (name, unit) in zip(
        axes.flat, (("mse", ""), ("bce", ""), ("psnr", " (dB)"), ("ssim", "")), strict=True
    ):
        values = [per_class[ctx.names[c]][name] for c in classes]
        ax.bar(range(len(classes)), values, color=colors)
        ax.axhline(result["overall"][name], color="k", ls="--", lw=1, label="all classes")
        ax.set_xticks(range(len(classes)), [ctx.names[c] for c in classes], rotation=45, ha="right")
        ax.set_title(f"test {name.upper()} per class")
        ax.set_ylabel(name.upper() + unit)
        ax.legend(fontsize=8)
    fig.tight_layout()
    ctx.save(fig, "test_metrics")
    return result


def training_curves(ctx: Context) -> dict:
    """Every term logged in metrics.jsonl against the step, train and eval."""
    records = read_metrics(ctx.run.workdir / "metrics.jsonl")
    if not records:
        raise Skipped(f"{ctx.run.workdir / 'metrics.jsonl'} is missing or empty")
    terms = sorted(
        {
            k
            for r in records
            for k, v in r.items()
            if k not in ("step", "split") and isinstance(v, int | float) and not isinstance(v, bool)
        }
    )
    cols = min(4, len(terms))
    rows = math.ceil(len(terms) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    final: dict[str, dict[str, float]] = {}
    for ax, term in zip(axes.flat, terms, strict=False):
        for split in ("train", "eval"):
            pts = [(r["step"], r[term]) for r in records if r["split"] == split and term in r]
            if not pts:
                continue
            steps, values = np.array(pts, dtype=np.float64).T
            style = {"marker": "o", "ms": 3} if split == "eval" else {}
            ax.plot(steps, values, color=figures.KIND_COLORS[split], label=split, **style)
            final.setdefault(split, {})[term] = float(values[-1])
            if np.all(values > 0) and values.max() / values.min() > 20:
                ax.set_yscale("log")
        ax.set_title(term)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    for ax in axes.flat[len(terms) :]:
        ax.axis("off")
    fig.suptitle(f"training curves: {ctx.run.workdir.name}")
    fig.tight_layout()
    ctx.save(fig, "training_curves")
    return {"terms": terms, "records": len(records), "final": final}


def latent_space(ctx: Context) -> dict:
    """2-D maps of the codes coloured by label: PCA, t-SNE, and UMAP when it is installed."""
    codes, labels = ctx.eval_codes_flat, ctx.y_eval
    n_tsne = min(ctx.limits.tsne_points, len(codes))
    pca = decomposition.PCA(n_components=min(2, codes.shape[1])).fit(codes)
    maps = {"PCA": pca.transform(codes)}
    tsne = manifold.TSNE(
        n_components=2,
        perplexity=min(30.0, (n_tsne - 1) / 3),
        init="pca",
        random_state=ctx.run.config.seed,
    )
    maps["t-SNE"] = tsne.fit_transform(codes[:n_tsne])
    result = {
        "code_size": int(codes.shape[1]),
        "points": {"PCA": len(codes), "t-SNE": n_tsne},
        "pca_explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
        "tsne_kl_divergence": float(tsne.kl_divergence_),
    }
    if importlib.util.find_spec("umap") is not None:
        import umap

        maps["UMAP"] = umap.UMAP(random_state=ctx.run.config.seed).fit_transform(codes[:n_tsne])
        result["points"]["UMAP"] = n_tsne
    else:
        result["umap"] = "not installed (pip install -e '.[umap]')"
    fig, axes = plt.subplots(1, len(maps), figsize=(5.2 * len(maps) + 1.5, 5), squeeze=False)
    for ax, (name, xy) in zip(axes[0], maps.items(), strict=True):
        lab = labels[: len(xy)]
        if xy.shape[1] == 1:
            xy = np.concatenate([xy, np.zeros_like(xy)], axis=1)
        for c in np.unique(lab):
            sel = lab == c
            ax.scatter(*xy[sel].T, s=4, color=figures.class_color(int(c)), label=ctx.names[c])
        ax.set_title(f"codes by {name} ({len(xy)} test images)")
        ax.set_xlabel(f"{name} 1")
        ax.set_ylabel(f"{name} 2")
    axes[0, -1].legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    ctx.save(fig, "latent_space")
    return result


def interpolation(ctx: Context) -> dict:
    """Linear paths through the code between pairs of test images of different classes."""
    first = _one_per_class(ctx.y_eval, 8)
    if len(first) < 2:
        first = np.arange(min(8, len(ctx.y_eval)))
    pairs = [(first[i], first[i + 1]) for i in range(0, len(first) - 1, 2)][:4]
    alphas = np.linspace(0.0, 1.0, 9, dtype=np.float32)
    za = ctx.eval_codes[[a for a, _ in pairs]]
    zb = ctx.eval_codes[[b for _, b in pairs]]
    paths = np.stack([(1 - a) * za + a * zb for a in alphas], axis=1)  # [P, S, ...]
    frames = ctx.decode(paths.reshape(-1, *za.shape[1:])).reshape(len(pairs), len(alphas), -1)
    step_dist = np.sqrt(np.mean(np.diff(frames, axis=1) ** 2, axis=-1))  # [P, S-1]
    images = frames.reshape(len(pairs), len(alphas), *ctx.run.image_shape)
    cols = len(alphas) + 2
    fig, axes = plt.subplots(len(pairs), cols, figsize=(1.3 * cols, 1.5 * len(pairs) + 0.6))
    axes = np.atleast_2d(axes)
    for r, (a, b) in enumerate(pairs):
        figures.show_image(axes[r, 0], ctx.x_eval[a], ctx.names[ctx.y_eval[a]])
        for s, alpha in enumerate(alphas):
            figures.show_image(axes[r, s + 1], images[r, s], f"α={alpha:.2f}" if r == 0 else None)
        figures.show_image(axes[r, -1], ctx.x_eval[b], ctx.names[ctx.y_eval[b]])
    fig.suptitle(
        "interpolation through the code: test image, decoded (1−α)·z_a + α·z_b, test image"
    )
    fig.tight_layout()
    ctx.save(fig, "interpolation")
    return {
        "pairs": [[int(a), int(b)] for a, b in pairs],
        "alphas": alphas.tolist(),
        "mean_rms_change_per_step": step_dist.mean(axis=1).tolist(),
    }


def vae(ctx: Context) -> dict:
    """VAE only: samples from the prior, a 2-D latent traversal grid, NLL by importance sampling."""
    run = ctx.run
    if not run.is_vae:
        raise Skipped(f"model {run.config.model.name!r} is not a VAE")
    k = run.config.model.latent_dim
    key_prior, key_nll = jax.random.split(jax.random.fold_in(ctx.key, 7))
    z = np.asarray(jax.random.normal(key_prior, (64, k)))
    samples = ctx.decode(z)
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    figures.show_image(ax, figures.tile(samples, 8, 8))
    ax.set_title("64 samples from the prior: decode(z), z ~ N(0, I)")
    ctx.save(fig, "vae_prior_samples")

    mu, logvar = ctx.batched(lambda x: run.encode(x), ctx.x_eval)
    kl_per_dim = 0.5 * np.mean(np.exp(logvar) + mu**2 - 1.0 - logvar, axis=0)  # [k]
    dims = np.argsort(-kl_per_dim)[:2] if k >= 2 else np.array([0, 0])
    n = 9
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

    n_nll = min(ctx.limits.nll_examples, len(ctx.x_eval))
    nll_fn = _make_log_weights(run, ctx.limits.nll_samples)
    keys = jax.random.split(key_nll, math.ceil(n_nll / ctx.batch_size))
    it = iter(keys)
    log_w = ctx.batched(lambda x: nll_fn(run.variables, x, next(it)), ctx.x_eval[:n_nll])
    log_px = jax.nn.logsumexp(log_w, axis=1) - math.log(log_w.shape[1])  # [n]
    nll = -np.asarray(log_px)
    d = math.prod(run.image_shape)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(nll, bins=40, color="C0")
    ax.axvline(nll.mean(), color="k", ls="--", label=f"mean {nll.mean():.1f} nats")
    ax.set_xlabel("−log p(x) (nats), importance sampling")
    ax.set_ylabel("test images")
    ax.set_title(f"NLL on {n_nll} test images, {log_w.shape[1]} samples each")
    ax.legend()
    ctx.save(fig, "vae_nll")
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


def _make_log_weights(run: Run, num_samples: int):
    """log w_s = log p(x|z_s) + log p(z_s) − log q(z_s|x), z_s ~ q(z|x): x [B, ...] → [B, S]."""
    model, cfg = run.model, run.config.vae
    cls = type(model)

    @jax.jit
    def log_weights(variables, x, key):
        mu, logvar = model.apply(variables, x, train=False, method=cls.encode)
        std = jnp.exp(0.5 * logvar)

        def one(k):
            eps = jax.random.normal(k, mu.shape, mu.dtype)
            z = mu + std * eps
            logits = model.apply(variables, z, train=False, method=cls.decode)
            if cfg.likelihood == "bernoulli":
                log_px_z = -losses.bernoulli_nll(logits, x)
            else:
                log_px_z = -losses.gaussian_nll(logits, x, cfg.gaussian_sigma)
            log_pz = jnp.sum(jax.scipy.stats.norm.logpdf(z), axis=-1)
            log_qz = jnp.sum(jax.scipy.stats.norm.logpdf(eps) - 0.5 * logvar, axis=-1)
            return log_px_z + log_pz - log_qz

        return jax.lax.map(one, jax.random.split(key, num_samples)).T  # [B, S]

    return log_weights


def feature_maps(ctx: Context) -> dict:
    """Encoder feature maps for one test image (conv layers) and per-layer activations (FC)."""
    run = ctx.run
    x = jnp.asarray(ctx.x_eval[: min(256, len(ctx.x_eval))])
    _, state = run.model.apply(
        run.variables,
        x,
        train=False,
        method=type(run.model).encode,
        capture_intermediates=True,
        mutable=["intermediates"],
    )
    layers = {}
    for path, value in traverse_util.flatten_dict(state.get("intermediates", {})).items():
        if len(path) == 2 and path[1] == "__call__" and isinstance(value[0], jax.Array):
            layers[path[0]] = np.asarray(value[0])
    if not layers:  # a model without submodules (linear): its code is its only layer
        layers["code"] = ctx.eval_codes_flat[: len(x)]
    maps = {k: v for k, v in layers.items() if v.ndim == 4}
    acts = {k: v for k, v in layers.items() if v.ndim == 2}
    result: dict[str, Any] = {"layers": {}}
    for name, v in layers.items():
        flat = v.reshape(len(v), -1) if v.ndim == 2 else v.reshape(-1, v.shape[-1])
        result["layers"][name] = {
            "shape": list(v.shape[1:]),
            "mean": float(v.mean()),
            "std": float(v.std()),
            "zero_fraction": float(np.mean(v == 0)),
            "dead_units": int(np.sum(np.all(flat == 0, axis=0))),
        }
    if maps:
        cols = 8
        fig, axes = plt.subplots(len(maps), cols + 1, figsize=(1.5 * (cols + 1), 1.6 * len(maps)))
        axes = np.atleast_2d(axes)
        for r, (name, v) in enumerate(maps.items()):
            figures.show_image(axes[r, 0], ctx.x_eval[0], "input" if r == 0 else None)
            fmap = v[0]  # [h, w, C] for the first test image
            top = np.argsort(-np.abs(fmap).mean(axis=(0, 1)))[:cols]
            for c in range(cols):
                ax = axes[r, c + 1]
                ax.set_xticks([])
                ax.set_yticks([])
                if c < len(top):
                    ax.imshow(fmap[..., top[c]], cmap="viridis", interpolation="nearest")
                    ax.set_title(f"ch {top[c]}", fontsize=7)
                else:
                    ax.axis("off")
            axes[r, 0].set_ylabel(f"{name}\n{'×'.join(map(str, fmap.shape))}", fontsize=8)
        fig.suptitle("encoder feature maps of one test image (8 most active channels per layer)")
        fig.tight_layout()
        ctx.save(fig, "feature_maps")
    if acts:
        fig, axes = plt.subplots(2, len(acts), figsize=(3.6 * len(acts) + 0.5, 6), squeeze=False)
        for j, (name, v) in enumerate(acts.items()):
            stats_ = result["layers"][name]
            axes[0, j].hist(v.ravel(), bins=50, color="C0", log=True)
            axes[0, j].set_title(f"{name} ({v.shape[1]} units)")
            axes[0, j].set_xlabel("activation")
            axes[0, j].set_ylabel("count (log)")
            axes[1, j].plot(np.sort(v.mean(axis=0))[::-1], color="C0")
            axes[1, j].set_title(f"units always 0: {stats_['dead_units']}/{v.shape[1]}", fontsize=9)
            axes[1, j].set_xlabel("unit (sorted)")
            axes[1, j].set_ylabel("mean activation")
        fig.suptitle(
            f"encoder layer outputs over {len(x)} test images "
            "(each module's output: an activation applied after the module is not included)"
        )
        fig.tight_layout()
        ctx.save(fig, "activations")
    return result


def anomaly(ctx: Context) -> dict:
    """Reconstruction-error anomaly score for the class held out of training: ROC-AUC, histogram."""
    held_out = int(ctx.run.config.dataset.exclude_class)
    if held_out < 0:
        raise Skipped(
            "the run trained on every class (dataset.exclude_class=-1); train with "
            "--config.dataset.exclude_class=K to score class K as anomalies"
        )
    score = ctx.eval_metrics["mse"]
    is_anomaly = ctx.y_eval == held_out
    if is_anomaly.all() or not is_anomaly.any():
        raise Skipped(f"the test images evaluated do not contain both class {held_out} and others")
    auc = float(metrics.roc_auc_score(is_anomaly, score))
    fpr, tpr, _ = metrics.roc_curve(is_anomaly, score)
    name = ctx.names[held_out]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.5))
    bins = np.histogram_bin_edges(score, bins=50)
    ax0.hist(score[~is_anomaly], bins=bins, alpha=0.6, density=True, color="C0", label="trained")
    ax0.hist(score[is_anomaly], bins=bins, alpha=0.6, density=True, color="C3", label=name)
    ax0.set_xlabel("anomaly score: reconstruction MSE")
    ax0.set_ylabel("density")
    ax0.set_title(f"score of the held-out class {name!r} vs the trained classes")
    ax0.legend()
    ax1.plot(fpr, tpr, color="C3", label=f"ROC-AUC {auc:.3f}")
    ax1.plot([0, 1], [0, 1], color="gray", ls="--", label="chance")
    ax1.set_xlabel("false positive rate")
    ax1.set_ylabel("true positive rate")
    ax1.set_title("ROC of the reconstruction-error detector")
    ax1.legend()
    fig.tight_layout()
    ctx.save(fig, "anomaly")
    return {
        "held_out_class": held_out,
        "held_out_name": name,
        "roc_auc": auc,
        "average_precision": float(metrics.average_precision_score(is_anomaly, score)),
        "mean_score_held_out": float(score[is_anomaly].mean()),
        "mean_score_trained": float(score[~is_anomaly].mean()),
        "examples": {"held_out": int(is_anomaly.sum()), "trained": int((~is_anomaly).sum())},
    }


def downstream(ctx: Context) -> dict:
    """Linear-probe accuracy and k-means NMI: codes vs raw pixels vs PCA codes of equal size."""
    ds, lim = ctx.dataset, ctx.limits
    x_train = data.to_float(ds.train_images[: lim.probe_train])
    y_train = ds.train_labels[: lim.probe_train]
    n_test = min(lim.probe_test, len(ctx.x_eval))
    y_test = ctx.y_eval[:n_test]
    if len(np.unique(y_train)) < 2 or len(np.unique(y_test)) < 2:
        raise Skipped("the probe needs at least two classes in the train and test images")
    raw_train, raw_test = x_train.reshape(len(x_train), -1), ctx.x_eval[:n_test].reshape(n_test, -1)
    code_train = ctx.codes(x_train).reshape(len(x_train), -1)
    k = code_train.shape[1]
    k_pca = min(k, *raw_train.shape)
    pca = decomposition.PCA(n_components=k_pca, svd_solver=figures.pca_solver(raw_train))
    pca.fit(raw_train)
    features = {
        "codes": (code_train, ctx.eval_codes_flat[:n_test]),
        "raw pixels": (raw_train, raw_test),
        "PCA": (pca.transform(raw_train), pca.transform(raw_test)),
    }
    n_clusters = len(np.unique(y_test))
    result: dict[str, Any] = {
        "train_examples": len(x_train),
        "test_examples": n_test,
        "code_size": k,
        "pca_components": k_pca,
        "chance_accuracy": float(np.max(np.bincount(y_test)) / n_test),
    }
    for name, (f_train, f_test) in features.items():
        probe = pipeline.make_pipeline(
            preprocessing.StandardScaler(), linear_model.LogisticRegression(max_iter=500)
        ).fit(f_train, y_train)
        clusters = cluster.KMeans(
            n_clusters=n_clusters, n_init=4, random_state=ctx.run.config.seed
        ).fit_predict(f_test)
        result[name] = {
            "dim": int(f_train.shape[1]),
            "linear_probe_accuracy": float(probe.score(f_test, y_test)),
            "kmeans_nmi": float(metrics.normalized_mutual_info_score(y_test, clusters)),
        }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = list(features)
    for ax, (key, title) in zip(
        axes,
        (("linear_probe_accuracy", "linear-probe accuracy"), ("kmeans_nmi", "k-means NMI")),
        strict=True,
    ):
        vals = [result[n][key] for n in names]
        bars = ax.bar(names, vals, color=[figures.KIND_COLORS[n] for n in names])
        ax.bar_label(bars, fmt="%.3f")
        if key == "linear_probe_accuracy":
            ax.axhline(result["chance_accuracy"], color="gray", ls="--", label="majority class")
            ax.legend(fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel(title)
        ax.set_title(f"{title} on {n_test} test images")
        ax.set_xticks(range(len(names)), [f"{n}\n({result[n]['dim']} dims)" for n in names])
    fig.tight_layout()
    ctx.save(fig, "downstream")
    return result


def parameters(ctx: Context) -> dict:
    """Parameter count per layer and code size, against a one-hidden-layer FC AE D→k→D."""
    params = ctx.run.variables["params"]
    per_layer = {name: models.count_params(sub) for name, sub in params.items()}
    total = models.count_params(params)
    d = math.prod(ctx.run.image_shape)
    k = int(ctx.eval_codes_flat.shape[1])
    fc = 2 * d * k + d + k  # Dense D→k and Dense k→D with biases
    fig, (ax0, ax1) = plt.subplots(
        1, 2, figsize=(11, max(3.0, 0.3 * len(per_layer) + 1)), width_ratios=(2, 1)
    )
    ax0.barh(list(per_layer)[::-1], list(per_layer.values())[::-1], color="C0")
    ax0.set_xlabel("trainable parameters")
    ax0.set_title(f"{ctx.run.config.model.name}: {total:,} parameters by layer")
    bars = ax1.bar(["this model", f"FC {d}→{k}→{d}"], [total, fc], color=["C0", "C1"])
    ax1.bar_label(bars, fmt="{:,.0f}")
    ax1.margins(y=0.15)
    ax0.xaxis.set_major_formatter(figures.THOUSANDS)
    ax1.yaxis.set_major_formatter(figures.THOUSANDS)
    ax1.set_ylabel("trainable parameters")
    ax1.set_title(f"same code size k={k} (compression {d / k:.1f}×)")
    fig.tight_layout()
    ctx.save(fig, "parameters")
    return {
        "params": total,
        "per_layer": per_layer,
        "input_size": d,
        "code_size": k,
        "compression_ratio": d / k,
        "fc_equivalent": f"Dense {d}→{k}, Dense {k}→{d}",
        "fc_equivalent_params": fc,
        "params_vs_fc": total / fc,
    }


def pca_angles(ctx: Context) -> dict:
    """Linear runs: principal angles between the decoder's column space and the top-k PCA space."""
    run = ctx.run
    if run.config.model.name != "linear":
        raise Skipped(f"model {run.config.model.name!r} is not the linear autoencoder")
    p = run.variables["params"]
    basis = np.asarray(p["enc_kernel"] if run.config.model.tied else p["dec_kernel"].T)  # [D, k]
    k = basis.shape[1]
    x = data.to_float(ctx.dataset.train_images[: ctx.limits.pca_train])
    x = x.reshape(len(x), -1)
    pca = decomposition.PCA(n_components=min(k, *x.shape), svd_solver=figures.pca_solver(x))
    pca.fit(x)
    angles = np.sort(np.degrees(linalg.subspace_angles(basis, pca.components_.T)))
    x_test = ctx.x_eval.reshape(len(ctx.x_eval), -1)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2))
    q, _ = np.linalg.qr(basis)
    projected = (pca.components_ @ q) @ q.T  # PCA directions projected onto the decoder's span
    # Share of the top-k PCA variance that lies in the decoder's span (1 = same subspace).
    captured = float(
        np.sum(pca.explained_variance_ * np.sum((pca.components_ @ q) ** 2, axis=1))
        / np.sum(pca.explained_variance_)
    )
    n_show = min(8, len(projected))
    fig = plt.figure(figsize=(14, 4.5))
    ax = fig.add_subplot(1, 3, 1)
    ax.bar(np.arange(1, len(angles) + 1), angles, color="C0")
    ax.set_xlabel("principal angle index (ascending)")
    ax.set_ylabel("angle (degrees)")
    ax.set_title(
        f"decoder span vs top-{len(angles)} PCA subspace\n"
        f"mean {angles.mean():.1f}°, PCA variance in span {captured:.1%}"
    )
    sub = fig.add_gridspec(2, n_show, left=0.4, right=0.98, top=0.8, bottom=0.2, hspace=0.15)
    for i in range(n_show):
        for r, vec in enumerate((pca.components_[i], projected[i])):
            a = fig.add_subplot(sub[r, i])
            lim = np.abs(pca.components_[i]).max()
            a.imshow(vec.reshape(run.image_shape)[..., 0], cmap="RdBu_r", vmin=-lim, vmax=lim)
            a.set_xticks([])
            a.set_yticks([])
            if i == 0:
                a.set_ylabel("PCA" if r == 0 else "in decoder\nspan", fontsize=8)
            if r == 0:
                a.set_title(f"PC {i + 1}", fontsize=8)
    ctx.save(fig, "pca_angles")
    return {
        "angles_degrees": angles.tolist(),
        "max_angle_degrees": float(angles.max()),
        "mean_angle_degrees": float(angles.mean()),
        "pca_variance_in_decoder_span": captured,
        # The loss scores sigmoid(logits): the optimum is near, not exactly, the PCA subspace.
        "output": "sigmoid(z @ W_dec + b)",
        "pca_train_examples": len(x),
        "pca_test_mse": pca_mse,
        "linear_ae_test_mse": float(ctx.eval_metrics["mse"].mean()),
    }


ANALYSES: dict[str, Callable[[Context], dict]] = {
    "training_curves": training_curves,
    "test_metrics": test_metrics,
    "reconstructions": reconstructions,
    "latent_space": latent_space,
    "interpolation": interpolation,
    "vae": vae,
    "feature_maps": feature_maps,
    "anomaly": anomaly,
    "downstream": downstream,
    "parameters": parameters,
    "pca_angles": pca_angles,
}


def _one_per_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first example of each class (sorted by class), at most n; else the first n."""
    classes = np.unique(labels)
    idx = np.array([int(np.argmax(labels == c)) for c in classes][:n])
    if len(idx) < min(n, len(labels)):
        rest = [i for i in range(len(labels)) if i not in set(idx.tolist())]
        idx = np.concatenate([idx, rest[: n - len(idx)]]).astype(int)
    return idx


# ---------------------------------------------------------------------------------- driver


def _jsonable(x: Any) -> Any:
    """numpy → Python; NaN/inf → strings (JSON has none)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else str(float(x))
    return x


def parse_only(only: str | None) -> list[str]:
    """'a,b' → ['a', 'b'] in ANALYSES order; unknown names raise a one-line ConfigError."""
    if not only:
        return list(ANALYSES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ANALYSES]
    if unknown or not names:
        raise config_lib.ConfigError(
            f"--only {only!r} names no analysis {unknown or ''}; choose from {', '.join(ANALYSES)}"
        )
    return [n for n in ANALYSES if n in names]


def analyze(
    workdir: str | pathlib.Path,
    *,
    only: list[str] | None = None,
    step: int | str | None = None,
    limits: Limits = Limits(),
) -> dict:
    """Runs the analyses on the run in `workdir`; writes workdir/analysis/ and returns its JSON.

    analysis.json keeps the results of analyses not run this time (e.g. with `only`) when they
    belong to the same checkpoint step, so the report always shows everything computed.
    """
    run = load(workdir, step)
    outdir = run.workdir / "analysis"
    outdir.mkdir(exist_ok=True)
    cfg = run.config
    dataset = data.load_for_config(cfg)
    ctx = Context(run, dataset, outdir, limits)
    path = outdir / "analysis.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    results = previous.get("analyses", {}) if previous.get("step") == run.step else {}
    for name in only or list(ANALYSES):
        ctx.figures = []
        start = time.perf_counter()
        try:
            numbers = ANALYSES[name](ctx)
            results[name] = {"figures": ctx.figures, "numbers": numbers}
            done = f"{', '.join(ctx.figures) or 'no figure'}"
        except Skipped as why:
            results[name] = {"figures": [], "skipped": str(why)}
            done = f"skipped: {why}"
        print(f"{name}: {done} ({time.perf_counter() - start:.1f} s)", flush=True)
    out = {
        "workdir": str(run.workdir.absolute()),
        "step": run.step,
        "model": cfg.model.name,
        "dataset": cfg.dataset.name,
        "analyses": {n: results[n] for n in ANALYSES if n in results},
    }
    out = _jsonable(out)
    path.write_text(json.dumps(out, indent=2) + "\n")
    write_report(run, out, outdir / "report.html")
    return out


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0} pre{background:#f6f6f6;padding:.8em;
overflow-x:auto;font-size:.85em} table{border-collapse:collapse} td,th{padding:.2em .8em;
border-bottom:1px solid #eee;text-align:left} .skip{color:#888;font-style:italic}
nav{display:flex;flex-wrap:wrap;gap:.3em 1em}
"""


def _table(d: dict) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in d.items()
        if not isinstance(v, dict | list)
    )
    return f"<table>{rows}</table>" if rows else ""


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def write_report(run: Run, out: dict, path: pathlib.Path) -> None:
    """report.html: every figure (relative paths), the numbers, config.json and summary.json."""
    summary_path = run.workdir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>jaxae analysis: "
        f"{html.escape(run.workdir.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(out['model'])} on {html.escape(out['dataset'])}: analysis of "
        f"{html.escape(run.workdir.name)}</h1>",
        f"<p>Workdir <code>{html.escape(out['workdir'])}</code>, checkpoint step {out['step']}. "
        "Every number is also in <a href='analysis.json'>analysis.json</a>.</p>",
        "<nav>"
        + "".join(f"<a href='#{n}'>{n}</a>" for n in ["summary", "config", *out["analyses"]])
        + "</nav>",
        "<h2 id='summary'>Summary (summary.json)</h2>",
        _table(summary) if summary else "<p class='skip'>no summary.json: training unfinished</p>",
        "<h2 id='config'>Config</h2><details><summary>config of the checkpoint</summary><pre>"
        + html.escape(config_lib.to_json(run.config))
        + "</pre></details>",
    ]
    for name, entry in out["analyses"].items():
        doc = (ANALYSES[name].__doc__ or "").strip()
        parts.append(f"<h2 id='{name}'>{name.replace('_', ' ')}</h2><p>{html.escape(doc)}</p>")
        if "skipped" in entry:
            parts.append(f"<p class='skip'>skipped: {html.escape(entry['skipped'])}</p>")
            continue
        for fig in entry["figures"]:
            parts.append(f"<img src='{html.escape(fig)}' alt='{html.escape(fig)}'>")
        numbers = entry["numbers"]
        parts.append(_table(numbers))
        parts.append(
            "<details><summary>all numbers</summary><pre>"
            + html.escape(json.dumps(numbers, indent=2))
            + "</pre></details>"
        )
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n")


def _parse_step(text: str | None) -> int | str | None:
    if text is None or text in ("latest", "best"):
        return text
    try:
        return int(text)
    except ValueError:
        raise config_lib.ConfigError(
            f"--step {text!r} is not a step; give an int, 'latest' or 'best'"
        ) from None


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True, help="a workdir written by train.py")
    parser.add_argument("--only", default=None, help=f"comma list of: {', '.join(ANALYSES)}")
    parser.add_argument("--step", default=None, help="checkpoint: an int, latest or best")
    parser.add_argument("--max_examples", type=int, default=Limits.eval_examples)
    parser.add_argument("--tsne_points", type=int, default=Limits.tsne_points)
    parser.add_argument("--nll_samples", type=int, default=Limits.nll_samples)
    args = parser.parse_args(argv)
    with errors.one_line_errors():
        only = parse_only(args.only)
        limits = Limits(
            eval_examples=args.max_examples,
            tsne_points=args.tsne_points,
            nll_samples=args.nll_samples,
        )
        out = analyze(args.workdir, only=only, step=_parse_step(args.step), limits=limits)
    report = pathlib.Path(out["workdir"]) / "analysis" / "report.html"
    print(f"wrote {report}")


if __name__ == "__main__":
    main(sys.argv[1:])
