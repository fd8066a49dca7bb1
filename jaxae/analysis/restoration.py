"""Image restoration by denoising runs: the model's output against the degraded input and a
classical baseline (bicubic upsampling for ×2 super-resolution); PSNR and SSIM to the clean."""

from __future__ import annotations

import functools

import dm_pix
import jax
import numpy as np

from jaxae import corruption, losses
from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped, one_per_class

plt = figures.plt


@functools.partial(jax.jit, static_argnames="filter_size")
def quality(images: jax.Array, clean: jax.Array, filter_size: int) -> dict[str, jax.Array]:
    """images, clean [B, H, W, C] in [0, 1] → per-example psnr (dB) and ssim: [B] each."""
    return {
        "psnr": losses.psnr(images, clean),
        "ssim": dm_pix.ssim(images, clean, filter_size=filter_size),
    }


def restoration(ctx: Context) -> dict:
    """Denoising runs: PSNR/SSIM of the corrupted test inputs, of the model's restorations and,
    for downsample (×2 super-resolution), of bicubic upsampling; the model's gains over both."""
    cfg = ctx.run.config.denoise
    if cfg.kind == "none":
        raise Skipped("not a denoising run (denoise.kind is 'none')")
    x = ctx.x_eval
    degrade = functools.partial(
        corruption.corrupt, kind=cfg.kind, sigma=float(cfg.sigma), p=float(cfg.p)
    )
    outputs = {"degraded": ctx.batched(degrade, x, key=jax.random.fold_in(ctx.key, 9))}
    outputs["restored"] = ctx.batched(ctx.run.reconstruct, outputs["degraded"])
    if cfg.kind == "downsample":
        outputs["bicubic"] = ctx.batched(corruption.bicubic_upsample, x)
    fs = min(11, *ctx.run.image_shape[:2])
    pairs = {name: np.stack([out, x], axis=1) for name, out in outputs.items()}  # [N, 2, ...]
    scores = {
        name: {
            m: float(np.mean(v))
            for m, v in ctx.batched(lambda p: quality(p[:, 0], p[:, 1], fs), pair).items()
        }
        for name, pair in pairs.items()
    }
    restored = scores["restored"]
    gains = {
        f"{m}_gain_over_{base}": restored[m] - scores[base][m]
        for base in scores
        if base != "restored"
        for m in ("psnr", "ssim")
    }
    figure(ctx, x, outputs, scores)
    return {"kind": cfg.kind, "examples": len(x), **scores, **gains}


def figure(ctx: Context, x: np.ndarray, outputs: dict, scores: dict) -> None:
    """Figure restoration: clean test images, then each of `outputs` [N, H, W, C] in rows."""
    idx = one_per_class(ctx.y_eval, 8)
    rows = {"clean": x, **outputs}
    fig, axes = plt.subplots(len(rows), len(idx), figsize=(1.2 * len(idx) + 1.6, 1.3 * len(rows)))
    axes = np.atleast_2d(axes)
    for r, (name, images) in enumerate(rows.items()):
        for c, i in enumerate(idx):
            figures.show_image(axes[r, c], images[i])
        s = scores.get(name)
        label = name if s is None else f"{name}\n{s['psnr']:.2f} dB\nSSIM {s['ssim']:.3f}"
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"restoration of '{ctx.run.config.denoise.kind}' (means over {len(x)} images)")
    ctx.save(fig, "restoration")
