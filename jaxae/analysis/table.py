"""Code size and compression of a run, and a Markdown results table over workdirs.

    python -m jaxae.analysis.table runs/vanilla runs/conv_deep ...

prints one row per workdir: model, parameters, code shape and size, compression (input numbers
per code number), steps, the final test metrics of summary.json and, once `python -m
jaxae.analyze` has run on that checkpoint, the sharpness ratio of its reconstructions.
"""

from __future__ import annotations

import math
import pathlib
import sys

from jaxae import errors
from jaxae.analysis import files
from jaxae.analysis.load import Run, load

COLUMNS = ("run", "model", "params", "code", "compression", "steps", "mse", "psnr", "ssim")
COLUMNS += ("sharpness",)


def shape_text(shape: tuple[int, ...]) -> str:
    """(3, 3, 64) → '3×3×64'."""
    return "×".join(map(str, shape))


def code_size(run: Run) -> dict:
    """The code's shape and size against the input's: {'input_shape', 'input_numbers',
    'code_shape', 'code_numbers', 'compression' (input numbers / code numbers), 'code_text'}.

    The code is what the decoder takes (mu for VAEs; for a VQ-VAE the codebook index of each
    position, 7×7 = 49 for a 28×28 image); conv_deep's 3×3×64 code is 576 numbers for a
    28×28×1 = 784 image, 1.36× compression.
    """
    d, k = math.prod(run.image_shape), math.prod(run.code_shape)
    text = f"{shape_text(run.code_shape)} = {k}" if len(run.code_shape) > 1 else str(k)
    entries = getattr(run.model, "num_embeddings", None)
    if entries is not None:  # VQ: the decoder's vectors are fixed by one index per position
        positions = run.code_shape[:-1]
        k = math.prod(positions)
        text = f"{shape_text(positions)} = {k} indices of {entries}"
    return {
        "input_shape": list(run.image_shape),
        "input_numbers": d,
        "code_shape": list(run.code_shape),
        "code_numbers": k,
        "compression": d / k,
        "code_text": text + (" (mu)" if run.is_vae else ""),
    }


def results_row(workdir: str | pathlib.Path) -> dict:
    """One row of the results table for `workdir` (the newest intact checkpoint, summary.json)."""
    workdir = pathlib.Path(workdir)
    run = load(workdir)
    size = code_size(run)
    summary = files.read_json_object(workdir / "summary.json", "its metrics are left out")
    return {
        "run": workdir.name,
        "model": run.config.model.name,
        "params": summary.get("params"),
        "code": size["code_text"],
        "compression": size["compression"],
        "steps": summary.get("steps", run.step),
        **{m: summary.get(m) for m in ("mse", "psnr", "ssim")},
        "sharpness": _analysed_sharpness(workdir / "analysis" / "analysis.json", run.step),
    }


def _analysed_sharpness(path: pathlib.Path, step: int) -> float | None:
    """test_metrics' sharpness ratio in analysis.json if it analysed checkpoint `step`."""
    analysis = files.read_json_object(path, "its sharpness is left out")
    if analysis.get("step") != step:
        return None  # not analysed, or an older checkpoint's numbers
    numbers = analysis.get("analyses", {}).get("test_metrics", {}).get("numbers", {})
    value = numbers.get("sharpness_ratio")
    return value if isinstance(value, float) else None


def markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table with COLUMNS; missing numbers are '–'."""

    def cell(column: str, v) -> str:
        if v is None:
            return "–"
        if column == "compression":
            return f"{v:.2f}×"
        if column == "params":
            return f"{v:,}"
        if column == "mse":
            return f"{v:.4f}"
        if column == "sharpness":
            return f"{v:.3f}"
        if column in ("psnr", "ssim"):
            return f"{v:.3f}" if column == "ssim" else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(c, r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """Prints the Markdown results table of the workdirs in argv; one-line errors, exit 2."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    with errors.one_line_errors():
        print(markdown([results_row(w) for w in argv]))


if __name__ == "__main__":
    main(sys.argv[1:])
