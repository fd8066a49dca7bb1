"""`python -m jaxae.analyze --workdir DIR`: figures, analysis.json and report.html of a run."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Callable

from jaxae import config as config_lib
from jaxae import data, errors
from jaxae.analysis import files, table
from jaxae.analysis.context import Context, Limits, Skipped
from jaxae.analysis.curves import training_curves
from jaxae.analysis.downstream import anomaly, downstream
from jaxae.analysis.features import feature_maps
from jaxae.analysis.hashing import hashing
from jaxae.analysis.latent import interpolation, latent_space
from jaxae.analysis.load import load
from jaxae.analysis.parameters import parameters, pca_angles
from jaxae.analysis.rate_distortion import rate_distortion
from jaxae.analysis.reconstruction import reconstructions, test_metrics
from jaxae.analysis.report import jsonable, write_report
from jaxae.analysis.restoration import restoration
from jaxae.analysis.tables import feature_errors
from jaxae.analysis.vae import vae

# Every analysis, in the order they run and appear in analysis.json and the report.
ANALYSES: dict[str, Callable[[Context], dict]] = {
    "training_curves": training_curves,
    "test_metrics": test_metrics,
    "reconstructions": reconstructions,
    "restoration": restoration,
    "latent_space": latent_space,
    "interpolation": interpolation,
    "vae": vae,
    "feature_maps": feature_maps,
    "anomaly": anomaly,
    "feature_errors": feature_errors,
    "downstream": downstream,
    "hashing": hashing,
    "parameters": parameters,
    "pca_angles": pca_angles,
    "rate_distortion": rate_distortion,
}

DEFAULT_LIMITS = Limits()
# Analyses that draw or compare images; on vector (table) runs they skip with this reason.
IMAGE_ONLY = (
    "reconstructions",
    "restoration",
    "interpolation",
    "vae",
    "feature_maps",
    "parameters",
)


def parse_only(only: str | None) -> list[str]:
    """'a,b' → ['a', 'b'] in ANALYSES order; unknown names raise a one-line ConfigError."""
    if not only:
        return list(ANALYSES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ANALYSES]
    if unknown or not names:
        raise config_lib.ConfigError(
            f"--only {only!r} names no analysis {unknown or ''}; choose from {', '.join(ANALYSES)}"
        )
    return [n for n in ANALYSES if n in names]


def analyze(
    workdir: str | pathlib.Path,
    *,
    only: list[str] | None = None,
    step: int | str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    out: str | pathlib.Path | None = None,
) -> dict:
    """Runs the analyses on the run in `workdir`; writes `out` (default workdir/analysis/):
    figures, analysis.json and report.html, each replaced atomically; returns the JSON.

    analysis.json keeps the results of analyses not run this time (e.g. with `only`) when they
    belong to the same checkpoint step, so the report always shows everything computed. Nothing
    is written into `workdir` when `out` lies elsewhere (e.g. for a read-only workdir).
    """
    run = load(workdir, step)
    outdir = pathlib.Path(out) if out is not None else run.workdir / "analysis"
    with files.writing_into(outdir):
        files.remove_stale_temporaries(outdir)
        ctx = Context(run, data.load_for_config(run.config, run.scaling), outdir, limits)
        path = outdir / "analysis.json"
        previous = files.read_previous(path)
        results = previous.get("analyses", {}) if previous.get("step") == run.step else {}
        for name in only or list(ANALYSES):
            results[name] = run_one(ctx, name)
        result = {
            "workdir": str(run.workdir.absolute()),
            "step": run.step,
            "model": run.config.model.name,
            "dataset": run.config.dataset.name,
            "code": table.code_size(run),
            "analyses": {n: results[n] for n in ANALYSES if n in results},
        }
        result = jsonable(result)
        files.write_text(path, json.dumps(result, indent=2) + "\n")
        docs = {n: (fn.__doc__ or "").strip() for n, fn in ANALYSES.items()}
        write_report(run, result, outdir / "report.html", docs)
    return result


def run_one(ctx: Context, name: str) -> dict:
    """Runs ANALYSES[name] → {'figures', 'numbers'} or {'figures': [], 'skipped': why}."""
    ctx.figures = []
    start = time.perf_counter()
    try:
        if name in IMAGE_ONLY and ctx.dataset.kind == "vectors":
            raise Skipped("it draws images; this run trained on feature vectors (a table)")
        entry = {"figures": ctx.figures, "numbers": ANALYSES[name](ctx)}
        done = f"{', '.join(ctx.figures) or 'no figure'}"
    except Skipped as why:
        entry = {"figures": [], "skipped": str(why)}
        done = f"skipped: {why}"
    print(f"{name}: {done} ({time.perf_counter() - start:.1f} s)", flush=True)
    return entry


def parse_step(text: str | None) -> int | str | None:
    """--step: None, 'latest', 'best' or an int; anything else is a one-line ConfigError."""
    if text is None or text in ("latest", "best"):
        return text
    try:
        return int(text)
    except ValueError:
        raise config_lib.ConfigError(
            f"--step {text!r} is not a step; give an int, 'latest' or 'best'"
        ) from None


def main(argv: list[str]) -> None:
    """The command line of `python -m jaxae.analyze`; user errors exit 2 with one line."""
    parser = argparse.ArgumentParser(prog="python -m jaxae.analyze", description=__doc__)
    parser.add_argument("--workdir", required=True, help="a workdir written by train.py")
    parser.add_argument("--only", default=None, help=f"comma list of: {', '.join(ANALYSES)}")
    parser.add_argument("--step", default=None, help="checkpoint: an int, latest or best")
    parser.add_argument(
        "--out", default=None, help="write the analysis here (default: WORKDIR/analysis)"
    )
    parser.add_argument("--max_examples", type=int, default=Limits.eval_examples)
    parser.add_argument("--tsne_points", type=int, default=Limits.tsne_points)
    parser.add_argument("--nll_samples", type=int, default=Limits.nll_samples)
    args = parser.parse_args(argv)
    with errors.one_line_errors():
        only = parse_only(args.only)
        limits = Limits(
            eval_examples=args.max_examples,
            tsne_points=args.tsne_points,
            nll_samples=args.nll_samples,
        )
        analyze(args.workdir, only=only, step=parse_step(args.step), limits=limits, out=args.out)
    outdir = pathlib.Path(args.out) if args.out else pathlib.Path(args.workdir) / "analysis"
    print(f"wrote {outdir / 'report.html'}")


if __name__ == "__main__":
    main(sys.argv[1:])
