"""jaxae's training rate on two JAX installs, side by side: does a newer XLA:CPU move the rows?

    python benchmarks/jax_versions.py --other /path/to/venv/bin/python [--models conv_deep]
                                      [--rounds 3] [--out benchmarks/results/FILE.json]

Each side is `benchmarks/throughput.py --jaxae-only` in a subprocess of its interpreter (this
one, and `--other`, e.g. a Python 3.13 venv with the newest JAX and jaxae installed with
`pip install -e .`): the same step, batch and repetitions, warm-up excluded. The two sides
alternate round by round, so each pair sees the same machine; a row gives each side's median
images/s over rounds and the median of the per-round ratios other/this (> 1: the other JAX is
faster), with their range.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
MODELS = ("vanilla", "deep_fc", "conv_simple", "conv_deep", "conv_vae", "contractive")


def side(python: str, model: str, reps: int) -> dict:
    """One subprocess of throughput.py --jaxae-only for `model` under `python`."""
    command = [python, str(HERE / "throughput.py"), "--jaxae-only", "--models", model]
    out = subprocess.run(
        [*command, "--reps", str(reps)], capture_output=True, text=True, cwd=HERE.parent
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        sys.exit(f"error: {python} failed on {model}:\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="the other interpreter")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per subprocess")
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args(argv)
    rows = []
    for model in args.models.split(","):
        this, other = [], []
        for _ in range(args.rounds):
            this.append(side(sys.executable, model, args.reps))
            other.append(side(args.other, model, args.reps))
        ratios = sorted(
            o["images_per_second"] / t["images_per_second"]
            for t, o in zip(this, other, strict=True)
        )
        rows.append(
            {
                "model": model,
                "jax_this": this[0]["jax"],
                "jax_other": other[0]["jax"],
                "this": statistics.median(r["images_per_second"] for r in this),
                "other": statistics.median(r["images_per_second"] for r in other),
                "ratio": statistics.median(ratios),
                "ratio_range": [ratios[0], ratios[-1]],
                "scan": [this[0]["scan"], other[0]["scan"]],
            }
        )
        r = rows[-1]
        print(
            f"{model:<12} jax {r['jax_this']}: {r['this']:>8.0f} img/s  jax {r['jax_other']}: "
            f"{r['other']:>8.0f} img/s  ratio {r['ratio']:.2f}x "
            f"({ratios[0]:.2f}-{ratios[-1]:.2f})  scan {r['scan']}",
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
