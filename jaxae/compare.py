"""`python -m jaxae.compare WORKDIR... --out DIR`: several runs side by side in one report.

DIR gets compare.json, report.html and PNGs: a table (config, params, code size and compression
ratio, steps, test MSE/PSNR/SSIM measured here on the same test images, ELBO/NLL of VAEs,
images/s), the same test images reconstructed by every run under the originals, the training
curves overlaid and the code maps side by side. Runs of different datasets or image shapes are
refused. `jaxae.study` reports its arms × seeds through `compare(..., arms=...)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import math
import pathlib
import sys

import jax
import numpy as np

from jaxae import data, errors
from jaxae.analysis import figures
from jaxae.analysis.context import image_metrics, one_per_class
from jaxae.analysis.load import Run, load
from jaxae.analysis.report import jsonable
from jaxae.runtime.batching import map_over_batches
from jaxae.runtime.metrics import read as read_metrics

plt = figures.plt
METRICS = ("mse", "psnr", "ssim")
SUMMARY_COLUMNS = ("elbo", "nll", "images_per_second")


class MismatchedRunsError(errors.UserError, ValueError):
    """The runs given to compare were trained on different datasets or image shapes."""


@dataclasses.dataclass
class Entry:
    """One run of the comparison: its name, the loaded Run, summary.json and its table row."""

    name: str
    run: Run
    summary: dict
    row: dict


def data_of(workdir: pathlib.Path) -> tuple[str, tuple[int, ...]] | None:
    """(dataset name, image shape) from workdir/config.json, or None when there is none."""
    path = pathlib.Path(workdir) / "config.json"
    if not path.is_file():
        return None
    c = json.loads(path.read_text())
    return c["dataset"]["name"], tuple(c["model"].get("image_shape", (28, 28, 1)))


def check_comparable(workdirs: list[pathlib.Path]) -> None:
    """Raises MismatchedRunsError (one line) unless all runs' config.json share dataset and
    image shape; checked before any checkpoint is read."""
    seen = [(w, d) for w in workdirs if (d := data_of(w)) is not None]
    for w, d in seen[1:]:
        if d != seen[0][1]:
            raise MismatchedRunsError(
                f"{w} is {d[0]} {d[1]} but {seen[0][0]} is {seen[0][1][0]} {seen[0][1][1]}; "
                f"compare runs of one dataset and image shape"
            )


def describe(run: Run) -> str:
    """A short config label: model, loss and the non-default objective parts."""
    c = run.config
    parts = [c.model.name, c.get("loss", "")]
    if c.denoise.kind != "none":
        parts.append(f"denoise={c.denoise.kind}")
    for field in ("features", "kernel_size", "downsample", "upsample", "skip"):
        if field in c.model:
            value = c.model[field]
            parts.append(
                f"{field}={'/'.join(map(str, value)) if isinstance(value, tuple | list) else value}"
            )
    return " ".join(str(p) for p in parts if p)


def measure(run: Run, x: np.ndarray, batch_size: int) -> dict:
    """The table row of `run` on test images x [N, H, W, C] (the same for every run)."""
    size = min(batch_size, len(x))
    fs = min(11, *run.image_shape[:2])
    per = map_over_batches(
        lambda b: image_metrics(run.logits(b), b, filter_size=fs), x, size
    )  # name → [N]
    code = np.asarray(run.code(x[:1]))
    code_size = int(math.prod(code.shape[1:]))
    params = sum(int(np.size(a)) for a in jax.tree.leaves(run.variables["params"]))
    row = {
        "config": describe(run),
        "params": params,
        "code_size": code_size,
        "compression_ratio": math.prod(run.image_shape) / code_size,
        "steps": run.step,
    }
    row.update({m: float(np.mean(per[m])) for m in METRICS})
    return row


def compare(
    workdirs: list[str | pathlib.Path],
    out: str | pathlib.Path,
    *,
    examples: int = 8,
    max_examples: int = 1000,
    batch_size: int = 250,
    arms: dict[str, str] | None = None,
    extra: dict[str, dict[str, float]] | None = None,
    title: str = "comparison",
    conclusion: str | None = None,
) -> dict:
    """Writes OUT/compare.json, report.html and figures for the runs in `workdirs`.

    arms: run name → arm label (then a mean ± std table per arm); extra: run name → more
    columns (e.g. a study's own measure); conclusion: a sentence shown above the tables.
    Returns compare.json's content.
    """
    out = pathlib.Path(out)
    check_comparable([pathlib.Path(w) for w in workdirs])
    runs = [load(w) for w in workdirs]
    ds = data.load_for_config(runs[0].config)
    n = min(max_examples, len(ds.test_images))
    x, y = data.to_float(ds.test_images[:n]), ds.test_labels[:n]
    names = unique_names([r.workdir for r in runs])
    entries = []
    for name, run in zip(names, runs, strict=True):
        summary_path = run.workdir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        row = measure(run, x, batch_size)
        row.update({k: summary[k] for k in SUMMARY_COLUMNS if k in summary})
        row.update((extra or {}).get(name, {}))
        entries.append(Entry(name, run, summary, row))
    out.mkdir(parents=True, exist_ok=True)
    shown = first_of_each_arm(entries, arms)  # the image figures: one run per arm
    figs = [
        reconstructions(shown, x, y, examples, out, ds),
        curves(entries, out, arms),
        code_maps(shown, x, y, out, batch_size, figures.class_names(ds.name, ds.num_classes)),
    ]
    result = {
        "title": title,
        "dataset": runs[0].config.dataset.name,
        "image_shape": list(runs[0].image_shape),
        "test_examples": n,
        "runs": {e.name: {"workdir": str(e.run.workdir), **e.row} for e in entries},
        "figures": figs,
    }
    if arms:
        result["arms"] = aggregate(entries, arms)
    if conclusion:
        result["conclusion"] = conclusion
    return write(result, out)


def write(result: dict, out: pathlib.Path) -> dict:
    """Writes OUT/compare.json and OUT/report.html of `result`; returns it as written (JSON)."""
    result = jsonable(result)
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.html").write_text(render(result))
    return result


def unique_names(workdirs: list[pathlib.Path]) -> list[str]:
    """The workdirs' base names, or parent/name where two base names collide."""
    base = [w.name for w in workdirs]
    return [f"{w.parent.name}/{w.name}" if base.count(w.name) > 1 else w.name for w in workdirs]


def aggregate(entries: list[Entry], arms: dict[str, str]) -> dict[str, dict]:
    """arm → {column: [mean, std over the arm's runs (ddof 1; 0 for one run)], 'runs': n}."""
    grouped: dict[str, list[dict]] = {}
    for e in entries:
        grouped.setdefault(arms[e.name], []).append(e.row)
    table = {}
    for arm, rows in grouped.items():
        cols = [k for k, v in rows[0].items() if isinstance(v, int | float)]
        stats = {}
        for col in cols:
            v = np.array([r[col] for r in rows if col in r], np.float64)
            # identical values (params, steps) get 0, not the rounding noise of their mean
            spread = len(v) > 1 and np.ptp(v) > 0
            stats[col] = [float(v.mean()), float(v.std(ddof=1)) if spread else 0.0]
        table[arm] = {"runs": len(rows), **stats}
    return table


def first_of_each_arm(entries: list[Entry], arms: dict[str, str] | None) -> list[Entry]:
    """Every entry without arms; with them, the first run of each arm (seeds look alike, and a
    row per seed makes the figures too long to read)."""
    if not arms:
        return entries
    seen: dict[str, Entry] = {}
    for e in entries:
        seen.setdefault(arms[e.name], e)
    return list(seen.values())


def reconstructions(entries, x, y, examples, out, ds) -> str:
    """Figure compare_reconstructions: originals on top, each run's reconstructions below."""
    idx = one_per_class(y, examples)
    cols, rows = len(idx), len(entries) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols + 1.5, 1.3 * rows), squeeze=False)
    class_names = figures.class_names(ds.name, ds.num_classes)
    for j, i in enumerate(idx):
        figures.show_image(axes[0, j], x[i], class_names[y[i]])
    for r, e in enumerate(entries, start=1):
        recon = np.asarray(e.run.reconstruct(x[idx]))
        for j in range(cols):
            figures.show_image(axes[r, j], recon[j])
    for r, label in enumerate(["original", *(e.name for e in entries)]):
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("the same test images reconstructed by every run")
    return figures.save(fig, out / "compare_reconstructions.png")


def curves(entries, out, arms: dict[str, str] | None = None) -> str:
    """Figure compare_curves: train and eval MSE of every run against the step (the objectives
    differ between runs, MSE is logged by all; a run without it shows its loss). With arms, one
    colour and one legend entry per arm (its seeds share them)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    groups = list(dict.fromkeys(arms[e.name] for e in entries)) if arms else []
    for k, e in enumerate(entries):
        records = read_metrics(e.run.workdir / "metrics.jsonl")
        colour = groups.index(arms[e.name]) if arms else k
        first = not arms or next(f for f in entries if arms[f.name] == arms[e.name]) is e
        for ax, split in zip(axes, ("train", "eval"), strict=True):
            rec = [r for r in records if r["split"] == split]
            term = "mse" if rec and all("mse" in r for r in rec) else "loss"
            pts = [(r["step"], r[term]) for r in rec if term in r]
            if pts:
                s, v = np.array(pts, np.float64).T
                label = (arms[e.name] if arms else e.name) + ("" if term == "mse" else " (loss)")
                style = {"marker": "o", "ms": 3} if split == "eval" else {}
                ax.plot(s, v, color=f"C{colour % 10}", label=label if first else None, **style)
    for ax, split in zip(axes, ("train", "eval"), strict=True):
        ax.set_title(f"{split} MSE" + (" (each arm's seeds in one colour)" if arms else ""))
        ax.set_xlabel("step")
        ax.set_ylabel("MSE (log scale)")
        ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return figures.save(fig, out / "compare_curves.png")


def code_maps(entries, x, y, out, batch_size, names: list[str]) -> str:
    """Figure compare_latent: each run's codes of the test images by PCA to 2-D, coloured by
    class (names[c] in the legend)."""
    from sklearn import decomposition  # the analysis extras; not imported by `import jaxae`

    cols = min(4, len(entries))  # more panels in one row would be too small to read
    rows = -(-len(entries) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(entries) :]:
        ax.axis("off")
    for ax, e in zip(axes.flat, entries, strict=False):
        codes = map_over_batches(e.run.code, x, min(batch_size, len(x)))
        y = np.asarray(y)
        codes = np.asarray(codes).reshape(len(x), -1)
        xy = decomposition.PCA(n_components=min(2, codes.shape[1])).fit_transform(codes)
        if xy.shape[1] == 1:
            xy = np.concatenate([xy, np.zeros_like(xy)], axis=1)
        for c in np.unique(y):
            ax.scatter(*xy[y == c].T, s=3, color=figures.class_color(int(c)), label=names[c])
        ax.set_title(e.name, fontsize=9)  # the rest is in the suptitle: long names overlapped
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"codes of {len(x)} test images by PCA to 2-D, coloured by class")
    axes[0, cols - 1].legend(
        markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5)
    )
    fig.tight_layout()
    return figures.save(fig, out / "compare_latent.png")


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse}td,th{padding:.2em .7em;border-bottom:1px solid #eee;"
    "text-align:right}img{max-width:100%}.c{font-weight:bold}"
)


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, list) and len(v) == 2:  # [mean, std]; std 0 (identical runs): the value
        return f"{_cell(v[0])} ± {_cell(v[1])}" if v[1] else _cell(v[0])
    return html.escape(f"{v:,}" if isinstance(v, int) else str(v))


def _html_table(rows: dict[str, dict], first: str) -> str:
    cols = list(dict.fromkeys(k for r in rows.values() for k in r if k != "workdir"))
    # spaces, not underscores, so that long names wrap and every column fits the page
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in [first, *cols])
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in cols)
        + "</tr>"
        for name, r in rows.items()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render(result: dict) -> str:
    """report.html of compare.json's content."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(result['title'])}"
        f"</title><style>{_CSS}</style></head><body><h1>{html.escape(result['title'])}</h1>",
        f"<p>{html.escape(result['dataset'])} {result['image_shape']}; test metrics measured "
        f"here on the first {result['test_examples']} test images; ELBO, NLL and images/s from "
        "each run's summary.json. Numbers in <a href='compare.json'>compare.json</a>.</p>",
    ]
    if "study" in result:
        st = result["study"]
        holds = "holds" if st["claim_holds"] else f"FAILS: {st.get('claim_failure')}"
        parts.append(
            f"<p>{html.escape(st['doc'])}. Parameter counts: {html.escape(st['claim'])} "
            f"({html.escape(holds)}).</p>"
        )
    if "conclusion" in result:
        parts.append(f"<p class='c'>{html.escape(result['conclusion'])}</p>")
    if "arms" in result:
        parts += ["<h2>arms (mean ± std over seeds)</h2>", _html_table(result["arms"], "arm")]
    parts += ["<h2>runs</h2>", _html_table(result["runs"], "run")]
    for fig in result["figures"]:
        parts.append(f"<h2>{html.escape(fig[:-4].replace('_', ' '))}</h2><img src='{fig}'>")
    return "\n".join([*parts, "</body></html>"]) + "\n"


def main(argv: list[str]) -> None:
    """The command line; user errors (missing or mismatched runs) exit 2 with one line."""
    parser = argparse.ArgumentParser(prog="python -m jaxae.compare", description=__doc__)
    parser.add_argument("workdirs", nargs="+", help="workdirs written by train.py")
    parser.add_argument("--out", default="compare", help="output directory (default ./compare)")
    parser.add_argument("--examples", type=int, default=8, help="test images in the figure")
    parser.add_argument("--max_examples", type=int, default=1000, help="test images scored")
    args = parser.parse_args(argv)
    with errors.one_line_errors():
        compare(args.workdirs, args.out, examples=args.examples, max_examples=args.max_examples)
    print(f"wrote {pathlib.Path(args.out) / 'report.html'}")


if __name__ == "__main__":
    main(sys.argv[1:])
