"""Reconstruction quality: originals beside reconstructions, test metrics per class."""

from __future__ import annotations

import jax
import numpy as np

from jaxae import measures
from jaxae.analysis import figures
from jaxae.analysis.context import Context, one_per_class

plt = figures.plt


def reconstructions(ctx: Context) -> dict:
    """Originals above reconstructions, and per-pixel squared-error heatmaps."""
    idx = one_per_class(ctx.y_eval, 10)
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
    """MSE, BCE, PSNR and SSIM on the test images, overall and per class, and the sharpness ratio
    of the reconstructions (measures.sharpness_ratio: 1 as sharp as the data, < 1 blurrier)."""
    m = ctx.eval_metrics
    result = {"examples": len(ctx.y_eval), "overall": {k: float(v.mean()) for k, v in m.items()}}
    classes = np.unique(ctx.y_eval)
    per_class = {
        ctx.names[c]: {k: float(v[ctx.y_eval == c].mean()) for k, v in m.items()} for c in classes
    }
    if ctx.dataset.kind == "images":  # vectors [N, 1, 1, D] have no spatial frequencies
        recon = np.asarray(jax.nn.sigmoid(ctx.eval_logits))
        result["sharpness_ratio"] = measures.sharpness_ratio(recon, ctx.x_eval)
        result["high_frequency_fraction"] = measures.high_frequency_fraction(recon)
        result["high_frequency_fraction_of_originals"] = measures.high_frequency_fraction(
            ctx.x_eval
        )
        for c in classes:
            at = ctx.y_eval == c
            per_class[ctx.names[c]]["sharpness_ratio"] = measures.sharpness_ratio(
                recon[at], ctx.x_eval[at]
            )
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
