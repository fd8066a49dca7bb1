"""Training curves: every term of metrics.jsonl against the step, train and eval."""

from __future__ import annotations

import math

import numpy as np

from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped
from jaxae.runtime.metrics import read as read_metrics

plt = figures.plt


def training_curves(ctx: Context) -> dict:
    """Every term logged in metrics.jsonl against the step, train and eval."""
    records = read_metrics(ctx.run.workdir / "metrics.jsonl")
    if not records:
        raise Skipped(f"{ctx.run.workdir / 'metrics.jsonl'} is missing or empty")
    terms = numeric_terms(records)
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


def numeric_terms(records: list[dict]) -> list[str]:
    """Sorted names of the numbers logged in metrics.jsonl records (not step, split or flags)."""
    return sorted(
        {
            k
            for r in records
            for k, v in r.items()
            if k not in ("step", "split") and isinstance(v, int | float) and not isinstance(v, bool)
        }
    )
