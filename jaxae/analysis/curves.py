"""Training curves: the loss and its terms (train and eval) apart from the run's dynamics
(learning rate, gradient and update norms, throughput), each number once, on one step axis."""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped

plt = figures.plt

# Numbers of metrics.jsonl that describe how training ran rather than how well the model does.
DYNAMICS = ("learning_rate", "grad_norm", "update_norm", "images_per_second")
LINEAR = ("psnr", "ssim", "ms_ssim")  # already on a log (dB) or bounded scale


def training_curves(ctx: Context) -> dict:
    """The loss and each distinct term against the step, train and eval (a term equal to the loss,
    e.g. mse for an mse model, is named in the loss panel instead of drawn twice); the learning
    rate, gradient and update norms and throughput in a second figure. Log scale where a curve
    spans more than 10×."""
    path = ctx.run.workdir / "metrics.jsonl"
    records, broken = read_records(path)
    if not records:
        raise Skipped(f"{path} is missing or empty")
    terms = numeric_terms(records)
    same = duplicates(records, terms)
    shown = [t for t in terms if t not in same]
    losses = sorted((t for t in shown if not is_dynamics(t)), key=lambda t: (t != "loss", t))
    dynamics = [t for t in DYNAMICS if t in shown] + [
        t for t in shown if is_dynamics(t) and t not in DYNAMICS
    ]
    last_step = max(r["step"] for r in records)
    final: dict[str, dict[str, float]] = {}
    titles = {t: " = ".join([t, *sorted(k for k, v in same.items() if v == t)]) for t in shown}
    name = ctx.run.workdir.name
    if losses:
        fig = _plot(records, losses, titles, last_step, final, f"training curves: {name}")
        ctx.save(fig, "training_curves")
    if dynamics:
        fig = _plot(records, dynamics, titles, last_step, final, f"training dynamics: {name}")
        ctx.save(fig, "training_dynamics")
    return {
        "terms": terms,
        "same_as": same,
        "records": len(records),
        "unreadable_lines": broken,
        "final": final,
    }


def read_records(path: pathlib.Path) -> tuple[list[dict], int]:
    """(records of metrics.jsonl, count of unreadable lines): a run killed mid-write can leave
    a partial last line, which is skipped rather than failing the analysis."""
    if not path.exists():
        return [], 0
    records, broken = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            broken += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int | float):
            records.append(record)
        else:
            broken += 1
    return records, broken


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


def is_dynamics(term: str) -> bool:
    """Whether `term` describes the run (rate, norm, time) rather than the model's quality."""
    return (
        term in DYNAMICS
        or term.endswith(("_per_second", "_norm", "_seconds"))
        or term
        in (
            "epoch",
            "elapsed",
        )
    )


def duplicates(records: list[dict], terms: list[str]) -> dict[str, str]:
    """{term: the earlier term (loss first) it equals in every record where either appears}."""
    order = sorted(terms, key=lambda t: (t != "loss", t))
    same: dict[str, str] = {}
    for i, term in enumerate(order):
        for first in order[:i]:
            if first in same:
                continue
            pairs = [(r.get(first), r.get(term)) for r in records if first in r or term in r]
            if pairs and all(
                isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b)
                for a, b in pairs
            ):
                same[term] = first
                break
    return same


def _plot(records, terms, titles, last_step, final, title):
    """A figure with one panel per term of `terms`: train line, eval markers (a lone point
    labelled with its value); records each curve's last value in `final`."""
    cols = min(4, len(terms))
    rows = math.ceil(len(terms) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, term in zip(axes.flat, terms, strict=False):
        spans = []
        for split in ("train", "eval"):
            pts = [(r["step"], r[term]) for r in records if r.get("split") == split and term in r]
            pts = [(s, v) for s, v in pts if isinstance(v, int | float) and math.isfinite(v)]
            if not pts:
                continue
            steps, values = np.array(pts, dtype=np.float64).T
            style = {"marker": "o", "ms": 4} if split == "eval" or len(pts) == 1 else {}
            ax.plot(steps, values, color=figures.KIND_COLORS[split], label=split, **style)
            if len(pts) == 1:
                ax.annotate(
                    f"{values[0]:.4g}",
                    (steps[0], values[0]),
                    textcoords="offset points",
                    xytext=(-6, 6),
                    ha="right",
                    fontsize=8,
                )
            final.setdefault(split, {})[term] = float(values[-1])
            spans.append(values)
        values = np.concatenate(spans) if spans else np.array([1.0])
        note = ""
        if len(values) > 1 and np.ptp(values) <= 1e-6 * np.abs(values).max():
            # a constant: centred in a range from 0, not blown up into made-up wiggles
            lo, hi = sorted((0.0, 2.0 * float(values[0])))
            if hi > lo:
                ax.set_ylim(lo, hi)
            note = f" (constant {values[0]:.4g})"
        elif term not in LINEAR and np.all(values > 0) and values.max() / values.min() > 10:
            ax.set_yscale("log")
            note = " (log scale)"
        ax.set_title(titles[term] + note)
        ax.set_xlim(0, last_step * 1.03)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    for ax in axes.flat[len(terms) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
