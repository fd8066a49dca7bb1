"""Inside the encoder: feature maps of conv layers and activation statistics of every layer."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxae.analysis import figures
from jaxae.analysis.context import Context

plt = figures.plt


def feature_maps(ctx: Context) -> dict:
    """Encoder feature maps for one test image (conv layers) and per-layer activations (FC)."""
    n = min(256, len(ctx.x_eval))
    layers = encoder_layers(ctx, ctx.x_eval[:n])
    result: dict[str, Any] = {"layers": {name: layer_stats(v) for name, v in layers.items()}}
    maps = {k: v for k, v in layers.items() if v.ndim == 4}
    acts = {k: v for k, v in layers.items() if v.ndim == 2}
    if maps:
        _plot_maps(ctx, maps)
    if acts:
        _plot_activations(ctx, acts, result["layers"], n)
    return result


def encoder_layers(ctx: Context, x: np.ndarray) -> dict[str, np.ndarray]:
    """x [n, H, W, C] → {submodule: its output [n, h, w, C'] or [n, units]} of the encoder in
    eval mode; a model without submodules (linear) gives its code as the one layer 'code'."""
    run = ctx.run
    _, state = run.model.apply(
        run.variables,
        jnp.asarray(x),
        train=False,
        method=type(run.model).encode,
        capture_intermediates=True,
        mutable=["intermediates"],
    )
    layers = {}
    for path, value in traverse_util.flatten_dict(state.get("intermediates", {})).items():
        if len(path) == 2 and path[1] == "__call__" and isinstance(value[0], jax.Array):
            layers[path[0]] = np.asarray(value[0])
    if not layers:
        layers["code"] = ctx.eval_codes_flat[: len(x)]
    return layers


def layer_stats(v: np.ndarray) -> dict:
    """Shape, mean, std, fraction of zeros and units (channels for maps) always 0 of v [n, ...]."""
    flat = v.reshape(len(v), -1) if v.ndim == 2 else v.reshape(-1, v.shape[-1])
    return {
        "shape": list(v.shape[1:]),
        "mean": float(v.mean()),
        "std": float(v.std()),
        "zero_fraction": float(np.mean(v == 0)),
        "dead_units": int(np.sum(np.all(flat == 0, axis=0))),
    }


def _plot_maps(ctx: Context, maps: dict[str, np.ndarray]) -> None:
    """Figure feature_maps: the 8 most active channels of each map [n, h, w, C] for image 0."""
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


def _plot_activations(ctx: Context, acts: dict[str, np.ndarray], stats: dict, n: int) -> None:
    """Figure activations: per layer [n, units], the histogram and the sorted mean per unit."""
    fig, axes = plt.subplots(2, len(acts), figsize=(3.6 * len(acts) + 0.5, 6), squeeze=False)
    for j, (name, v) in enumerate(acts.items()):
        axes[0, j].hist(v.ravel(), bins=50, color="C0", log=True)
        axes[0, j].set_title(f"{name} ({v.shape[1]} units)")
        axes[0, j].set_xlabel("activation")
        axes[0, j].set_ylabel("count (log)")
        axes[1, j].plot(np.sort(v.mean(axis=0))[::-1], color="C0")
        dead = stats[name]["dead_units"]
        axes[1, j].set_title(f"units always 0: {dead}/{v.shape[1]}", fontsize=9)
        axes[1, j].set_xlabel("unit (sorted)")
        axes[1, j].set_ylabel("mean activation")
    fig.suptitle(
        f"encoder layer outputs over {n} test images "
        "(each module's output: an activation applied after the module is not included)"
    )
    fig.tight_layout()
    ctx.save(fig, "activations")
