"""Inside the encoder: feature maps of conv layers and activation statistics of every layer."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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
    """x [n, H, W, C] → {submodule: its output as the encoder goes on with it} in eval mode:
    [n, h, w, C'] or [n, units], after the activation that follows the submodule (a Dense
    layer's ReLU included, so a unit that is always 0 shows as 0). A model without submodules
    (linear) gives its code as the one layer 'code'."""
    run = ctx.run

    def layer_outputs(variables, x):  # traced once: the identity checks of passed_on see tracers
        calls: list[tuple[str, Any, Any]] = []  # (name, input, output) of top-level submodules

        def record(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            path = context.module.scope.path if context.module.scope is not None else ()
            top_level_call = context.method_name == "__call__" and len(path) == 1 and args
            if top_level_call and isinstance(args[0], jax.Array) and isinstance(out, jax.Array):
                calls.append((path[0], args[0], out))
            return out

        with nn.intercept_methods(record):
            code = run.model.apply(variables, x, train=False, method=type(run.model).encode)
        return passed_on(calls, jax.tree.leaves(code))

    outputs = jax.jit(layer_outputs)(run.variables, jnp.asarray(x))
    layers = {name: np.asarray(v) for name, v in outputs.items()}
    if not layers:
        layers["code"] = ctx.eval_codes_flat[: len(x)]
    return layers


def passed_on(calls: list[tuple[str, Any, Any]], outputs: list[Any]) -> dict[str, Any]:
    """{name: value}: for each call (name, input, output) in call order, the value the forward
    pass went on with: the first later value of the output's shape that did not exist before
    the call (a later call's input, else one of the encoder's `outputs`), each taken once. So a
    Dense layer gives relu(its output) when a ReLU follows; a call whose output is reshaped
    before it is used (e.g. flattened) gives its own output."""
    seen: list[Any] = []  # values that existed before the current call: never its successor
    taken: list[Any] = []
    result = {}
    for i, (name, inp, out) in enumerate(calls):
        seen.append(inp)
        later = [c[1] for c in calls[i + 1 :]] + list(outputs)
        result[name] = out
        for value in later:
            fresh = not any(value is v for v in seen + taken)
            if fresh and value.shape == out.shape:
                result[name] = value
                taken.append(value)
                break
    return result


def layer_stats(v: np.ndarray) -> dict:
    """Shape, mean, std and fraction of zeros of v [n, ...]; its units (channels for maps)
    always 0, and dead: the same value for every image and position (always 0 after a ReLU, a
    constant after a BatchNorm that follows it), so they carry nothing about the input."""
    flat = _units(v)
    return {
        "shape": list(v.shape[1:]),
        "mean": float(v.mean()),
        "std": float(v.std()),
        "zero_fraction": float(np.mean(v == 0)),
        "units": int(flat.shape[1]),
        "zero_units": int(np.sum(np.all(flat == 0, axis=0))),
        "dead_units": int(np.sum(dead_mask(v))),
    }


def _units(v: np.ndarray) -> np.ndarray:
    """v [n, units] or maps [n, h, w, C] → [samples, units]: each channel a unit."""
    return v.reshape(len(v), -1) if v.ndim == 2 else v.reshape(-1, v.shape[-1])


def dead_mask(v: np.ndarray) -> np.ndarray:
    """[units] bool: the unit (channel) of v [n, ...] has the same value everywhere (to 1e-6)."""
    flat = _units(v)
    return np.ptp(flat, axis=0) <= 1e-6 * max(1.0, float(np.abs(flat).max()))


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
    """Figure activations: per layer [n, units], the histogram and the sorted mean per unit,
    dead units (the same value for every image) in red."""
    fig, axes = plt.subplots(2, len(acts), figsize=(3.6 * len(acts) + 0.5, 6), squeeze=False)
    last = list(acts)[-1]
    for j, (name, v) in enumerate(acts.items()):
        code = " = the code" if name == last else ""
        axes[0, j].hist(v.ravel(), bins=50, color="C0", log=True)
        axes[0, j].set_title(f"{name} ({v.shape[1]} units{code})")
        axes[0, j].set_xlabel("activation")
        axes[0, j].set_ylabel("count (log)")
        ax = axes[1, j]
        mean = v.mean(axis=0)
        order = np.argsort(-mean)
        ax.plot(mean[order], color="C0")
        at = np.flatnonzero(dead_mask(v)[order])
        ax.scatter(at, mean[order][at], color="C3", s=6, zorder=3, label="dead")
        dead = stats[name]["dead_units"]
        if dead:
            ax.legend(fontsize=8)
        ax.set_title(f"dead (same value on all {n} images): {dead}/{v.shape[1]}", fontsize=9)
        ax.set_xlabel("unit (sorted by mean)")
        ax.set_ylabel("mean activation")
    fig.suptitle(
        f"encoder layer outputs over {n} test images, after the activation that follows each layer"
    )
    fig.tight_layout()
    ctx.save(fig, "activations")
