"""Analyses of vector (table) runs: the reconstruction error of each feature."""

from __future__ import annotations

import jax
import numpy as np

from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped

plt = figures.plt


def feature_errors(ctx: Context) -> dict:
    """Mean squared reconstruction error of every feature on the test rows (on the scale the
    model trained on), split into normal and anomalous rows when the table marks anomalies."""
    ds = ctx.dataset
    if ds.kind != "vectors":
        raise Skipped("per-feature errors are for feature vectors (tables); this run has images")
    recon = np.asarray(jax.nn.sigmoid(ctx.eval_logits)).reshape(len(ctx.x_eval), -1)
    sq = (recon - ctx.x_eval.reshape(len(ctx.x_eval), -1)) ** 2  # [N, D]
    names = list(ds.feature_names) or [f"x{i}" for i in range(sq.shape[1])]
    flags = None if ds.test_anomaly is None else ds.test_anomaly[: len(sq)]
    groups = {"all": np.ones(len(sq), bool)}
    if flags is not None and flags.any() and not flags.all():
        groups = {"normal": ~flags, "anomalies": flags}
    per = {g: sq[rows].mean(axis=0) for g, rows in groups.items()}  # name -> [D]
    order = np.argsort(-per[list(per)[-1]])  # worst features of the last group first
    _plot(ctx, names, per, order)
    return {
        "features": len(names),
        "rows": {g: int(rows.sum()) for g, rows in groups.items()},
        "mse": {g: dict(zip(names, v.tolist(), strict=True)) for g, v in per.items()},
        "worst": [names[i] for i in order[:10]],
    }


def _plot(ctx: Context, names: list[str], per: dict, order: np.ndarray) -> None:
    """Figure feature_errors: bars of each feature's MSE [D] per group, worst first."""
    shown = order[:40]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(shown) + 2), 4.5))
    width = 0.8 / len(per)
    for g, (group, values) in enumerate(per.items()):
        x = np.arange(len(shown)) + g * width
        ax.bar(x, values[shown], width, label=group, color=f"C{3 * g}")
    ax.set_xticks(np.arange(len(shown)) + 0.4 - width / 2)
    ax.set_xticklabels([names[i] for i in shown], rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("test MSE (scaled units)")
    ax.set_title(f"{ctx.run.config.model.name}: reconstruction error per feature")
    ax.legend()
    fig.tight_layout()
    ctx.save(fig, "feature_errors")
