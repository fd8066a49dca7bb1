"""The weights: parameter counts against an FC baseline, and a linear run's angles to PCA."""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg
from sklearn import decomposition

from jaxae import data, models
from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped

plt = figures.plt


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
    x = data.to_float(ctx.dataset.train_images[: ctx.limits.pca_train])
    x = x.reshape(len(x), -1)  # [N, D]
    pca = decomposition.PCA(
        n_components=min(basis.shape[1], *x.shape), svd_solver=figures.pca_solver(x)
    )
    pca.fit(x)
    angles = np.sort(np.degrees(linalg.subspace_angles(basis, pca.components_.T)))
    x_test = ctx.x_eval.reshape(len(ctx.x_eval), -1)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2))
    q, _ = np.linalg.qr(basis)  # [D, k], orthonormal columns spanning the decoder's range
    # Share of the top-k PCA variance that lies in the decoder's span (1 = same subspace).
    captured = float(
        np.sum(pca.explained_variance_ * np.sum((pca.components_ @ q) ** 2, axis=1))
        / np.sum(pca.explained_variance_)
    )
    _plot_pca_angles(ctx, angles, pca.components_, q, captured)
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


def _plot_pca_angles(
    ctx: Context, angles: np.ndarray, components: np.ndarray, q: np.ndarray, captured: float
) -> None:
    """Figure pca_angles: the angles [k], and PCA directions (components [k, D]) above their
    projections onto the decoder's span (q [D, k])."""
    projected = (components @ q) @ q.T  # PCA directions projected onto the decoder's span
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
        for r, vec in enumerate((components[i], projected[i])):
            a = fig.add_subplot(sub[r, i])
            lim = np.abs(components[i]).max()
            a.imshow(vec.reshape(ctx.run.image_shape)[..., 0], cmap="RdBu_r", vmin=-lim, vmax=lim)
            a.set_xticks([])
            a.set_yticks([])
            if i == 0:
                a.set_ylabel("PCA" if r == 0 else "in decoder\nspan", fontsize=8)
            if r == 0:
                a.set_title(f"PC {i + 1}", fontsize=8)
    ctx.save(fig, "pca_angles")
