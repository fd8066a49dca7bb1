"""Time to the first step of `python train.py`, first run (empty compilation cache and program
store) against a second run of the same config (both filled), in pairs.

    python benchmarks/startup.py [--models conv_deep,deep_fc] [--repeats 3] [--steps 20]

Each repeat runs, per model, a first run with an empty XLA cache and then a second run into a
new workdir, both with `--config.profile_startup=True`, on Fashion-MNIST from the jaxae data
cache. The dataset files are linked into a private cache directory, so the user's own XLA cache
and program store are neither used nor touched. Prints, per model, the medians of the seconds
to the end of the first step, of the whole command, and the second/first ratios of the pairs.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def profile_seconds(stdout: str, label: str) -> float:
    """The seconds since the process started at `label` in train.py's start-up profile."""
    match = re.search(rf"^\s+([\d.]+)\s+\+\s*[\d.]+\s+{re.escape(label)} ", stdout, re.M)
    if match is None:
        raise RuntimeError(f"no {label!r} in the start-up profile:\n{stdout[-2000:]}")
    return float(match[1])


def one_run(model: str, cache: pathlib.Path, workdir: pathlib.Path, steps: int) -> dict:
    command = [sys.executable, str(ROOT / "train.py"), "--config", f"configs/{model}.py"]
    command += ["--workdir", str(workdir), f"--config.num_steps={steps}"]
    command += ["--config.progress=False", "--config.profile_startup=True"]
    env = {**os.environ, "JAXAE_CACHE_DIR": str(cache), "JAXAE_NO_DOWNLOAD": "1"}
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t
    if done.returncode:
        raise RuntimeError(f"{model}: train.py failed:\n{done.stderr[-2000:]}")
    first = profile_seconds(done.stdout, "first step compiled and run")
    compiled = re.search(r"first step compiled and run \[(\d+) compiled", done.stdout)[1]
    return {"first_step": first, "wall": wall, "compiled_in_first_step": int(compiled)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="conv_deep,deep_fc")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    from jaxae.runtime.startup import cache_root

    data = sorted(p for p in cache_root().glob("*") if p.name not in ("xla", "programs"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        cache = tmp / "cache"
        cache.mkdir()
        for p in data:
            (cache / p.name).symlink_to(p)
        results = {m: [] for m in args.models.split(",")}
        for r in range(args.repeats):
            for model in results:
                for kept in ("xla", "programs"):
                    subprocess.run(["rm", "-rf", str(cache / kept)], check=True)
                first = one_run(model, cache, tmp / f"{model}{r}a", args.steps)
                second = one_run(model, cache, tmp / f"{model}{r}b", args.steps)
                results[model].append((first, second))
                print(f"{model} repeat {r}: first {first}, second {second}", flush=True)
    print("| model | first step s: first run | second run | ratio | command s: first | second |")
    print("|---|---:|---:|---:|---:|---:|")
    for model, pairs in results.items():
        a = statistics.median(p[0]["first_step"] for p in pairs)
        b = statistics.median(p[1]["first_step"] for p in pairs)
        ratio = statistics.median(p[1]["first_step"] / p[0]["first_step"] for p in pairs)
        wa = statistics.median(p[0]["wall"] for p in pairs)
        wb = statistics.median(p[1]["wall"] for p in pairs)
        print(f"| {model} | {a:.1f} | {b:.1f} | {ratio:.2f} | {wa:.1f} | {wb:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
