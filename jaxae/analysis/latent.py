"""The code space: 2-D maps of the codes (PCA, t-SNE, UMAP) and interpolations between images."""

from __future__ import annotations

import importlib.util

import numpy as np
from sklearn import decomposition, manifold

from jaxae.analysis import figures
from jaxae.analysis.context import Context, one_per_class

plt = figures.plt


def latent_space(ctx: Context) -> dict:
    """2-D maps of the codes coloured by label: PCA, t-SNE, and UMAP when it is installed."""
    maps, result = code_maps(ctx.eval_codes_flat, ctx.limits.tsne_points, ctx.run.config.seed)
    labels = ctx.y_eval
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


def code_maps(codes: np.ndarray, tsne_points: int, seed: int) -> tuple[dict, dict]:
    """codes [N, K] → ({method: points [n, ≤2]}, numbers): PCA of all N, t-SNE (and UMAP when
    installed) of the first min(tsne_points, N)."""
    n_tsne = min(tsne_points, len(codes))
    pca = decomposition.PCA(n_components=min(2, codes.shape[1])).fit(codes)
    maps = {"PCA": pca.transform(codes)}
    tsne = manifold.TSNE(
        n_components=2, perplexity=min(30.0, (n_tsne - 1) / 3), init="pca", random_state=seed
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

        maps["UMAP"] = umap.UMAP(random_state=seed).fit_transform(codes[:n_tsne])
        result["points"]["UMAP"] = n_tsne
    else:
        result["umap"] = "not installed (pip install -e '.[umap]')"
    return maps, result


def interpolation(ctx: Context) -> dict:
    """Linear paths through the code between pairs of test images of different classes."""
    first = one_per_class(ctx.y_eval, 8)
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
