"""`python -m jaxae.finetune --workdir W`: transfer learning from a trained autoencoder.

The run's encoder plus a linear or a small MLP head (Dense 256, ReLU, Dense classes) is trained
to classify on 1%, 10% and 100% of the training labels, with the encoder frozen or fine-tuned,
against the same network from scratch (encoder re-initialised) and against the heads on raw
pixels. Every setting trains the same steps with Adam; test accuracy on the test split.
The encoder runs in eval mode (BatchNorm's running statistics, no dropout), also when tuned.
Writes W/analysis/finetune.json and finetune.html (the table); the table also goes into
W/analysis/report.html (python -m jaxae.analyze) when that exists, and whenever it is rewritten.
"""

from __future__ import annotations

import argparse
import html
import json
import pathlib
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxae import data, errors
from jaxae.analysis import files, report
from jaxae.analysis.load import Run, load

MODES = ("frozen", "finetuned", "scratch", "pixels")
HEADS = ("linear", "mlp")


class FractionError(errors.UserError, ValueError):
    """--fractions is not a comma list of numbers in (0, 1]."""


def parse_fractions(text: str) -> tuple[float, ...]:
    """'0.01,0.1,1' → (0.01, 0.1, 1.0); anything else raises a one-line FractionError."""
    try:
        fractions = tuple(float(f) for f in text.split(","))
    except ValueError:
        fractions = ()
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise FractionError(
            f"--fractions {text!r}: give label fractions in (0, 1], e.g. 0.01,0.1,1"
        )
    return fractions


class Head(nn.Module):
    """features [B, K] → class logits [B, classes]: one Dense (linear) or Dense-ReLU-Dense."""

    classes: int
    hidden: int = 0  # 0: linear

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        if self.hidden:
            h = nn.relu(nn.Dense(self.hidden)(h))
        return nn.Dense(self.classes)(h)


def features_fn(run: Run, mode: str, others: dict):
    """fn(encoder params, x [B, H, W, C]) → features [B, K]; `others` holds the encoder's
    non-trained variables (batch_stats) of the same init or run as the params."""

    def fn(enc_params, x):
        if mode == "pixels":
            return x.reshape(len(x), -1)
        out = run.model.apply(
            {"params": enc_params, **others}, x, train=False, method=type(run.model).encode
        )
        z = out[0] if run.is_vae else out  # VAEs: the mean code
        return z.reshape(len(x), -1)

    return fn


def init_params(run: Run, head: Head, mode: str, key: jax.Array, x0: jax.Array):
    """({'encoder': ..., 'head': ...}, others) for `mode`: the run's encoder (frozen,
    finetuned), a fresh one (scratch: model.init with `key`), or none (pixels)."""
    enc_key, head_key = jax.random.split(key)
    variables = dict(run.model.init(enc_key, x0, train=False)) if mode == "scratch" else {}
    variables = {"params": {}} if mode == "pixels" else variables or dict(run.variables)
    others = {k: v for k, v in variables.items() if k != "params"}
    feats = features_fn(run, mode, others)(variables["params"], x0)
    params = {"encoder": variables["params"], "head": head.init(head_key, feats)["params"]}
    return params, others


def optimizer(mode: str, learning_rate: float) -> optax.GradientTransformation:
    """Adam on the head; on the encoder too unless frozen (then its updates are exactly 0)."""
    adam = optax.adam(learning_rate)
    encoder = optax.set_to_zero() if mode in ("frozen", "pixels") else adam
    return optax.multi_transform(
        {"encoder": encoder, "head": adam}, {"encoder": "encoder", "head": "head"}
    )


def make_step(run: Run, head: Head, mode: str, others: dict, tx: optax.GradientTransformation):
    """The jitted step (params, opt_state, x [B, H, W, C], y [B]) → (params, opt_state, loss)."""
    feats = features_fn(run, mode, others)

    def loss_fn(params, x, y):
        logits = head.apply({"params": params["head"]}, feats(params["encoder"], x))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def train_setting(
    run: Run,
    mode: str,
    head_name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    classes: int,
    steps: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
):
    """Trains one setting on x [n, H, W, C] float in [0, 1], y [n] for `steps` Adam steps on
    batches drawn without replacement; returns (params, others, predict(params, x) → labels)."""
    head = Head(classes, 256 if head_name == "mlp" else 0)
    params, others = init_params(run, head, mode, jax.random.PRNGKey(seed), jnp.asarray(x[:1]))
    tx = optimizer(mode, learning_rate)
    opt_state, step = tx.init(params), make_step(run, head, mode, others, tx)
    rng = np.random.default_rng(seed)
    b = min(batch_size, len(x))
    for _ in range(steps):
        idx = rng.choice(len(x), b, replace=False)
        params, opt_state, _ = step(params, opt_state, x[idx], y[idx])
    feats = features_fn(run, mode, others)
    predict = jax.jit(
        lambda p, v: jnp.argmax(head.apply({"params": p["head"]}, feats(p["encoder"], v)), -1)
    )
    return params, others, predict


def accuracy(predict, params, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    """The fraction of x [N, H, W, C] whose predicted label is y [N]."""
    hits = sum(
        int(np.sum(np.asarray(predict(params, x[i : i + batch])) == y[i : i + batch]))
        for i in range(0, len(x), batch)
    )
    return hits / len(x)


def label_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of round(fraction·N) training examples, at least one per class: a seeded draw."""
    n = max(len(np.unique(y)), round(fraction * len(y)))
    return np.sort(np.random.default_rng(seed).permutation(len(y))[:n])


def finetune(
    workdir: str | pathlib.Path,
    *,
    fractions: tuple[float, ...] = (0.01, 0.1, 1.0),
    steps: int = 500,
    max_test: int = 10000,
    seed: int = 0,
) -> dict:
    """Every mode × head × label fraction: test accuracy → workdir/analysis/finetune.{json,html}."""
    run = load(workdir)
    ds = data.load_for_config(run.config)
    x_train, y_train = data.to_float(ds.train_images), np.asarray(ds.train_labels)
    x_test, y_test = data.to_float(ds.test_images[:max_test]), np.asarray(ds.test_labels[:max_test])
    table: dict[str, dict[str, float]] = {}
    for fraction in fractions:
        idx = label_subset(y_train, fraction, seed)
        for mode in MODES:
            for head_name in HEADS:
                params, _, predict = train_setting(
                    run,
                    mode,
                    head_name,
                    x_train[idx],
                    y_train[idx],
                    classes=ds.num_classes,
                    steps=steps,
                    seed=seed,
                )
                acc = accuracy(predict, params, x_test, y_test)
                table.setdefault(f"{mode} + {head_name}", {})[f"{fraction:.0%} labels"] = acc
                print(
                    f"{fraction:.0%} labels, {mode} encoder, {head_name} head: {acc:.4f}",
                    flush=True,
                )
    out = {
        "workdir": str(run.workdir),
        "step": run.step,
        "model": run.config.model.name,
        "steps": steps,
        "test_examples": len(x_test),
        "labels": {f"{f:.0%} labels": len(label_subset(y_train, f, seed)) for f in fractions},
        "test_accuracy": table,
    }
    write(out, run)
    return out


def render(out: dict) -> str:
    """finetune.html: the accuracy table, settings as rows, label fractions as columns."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>finetune</title></head><body>"
        f"<h1>transfer learning from {html.escape(out['model'])} (step {out['step']})</h1>"
        f"<p>{html.escape(report.finetune_text(out))}</p>{report.finetune_table(out)}"
        "</body></html>\n"
    )


def write(out: dict, run: Run) -> pathlib.Path:
    """Writes run.workdir/analysis/finetune.json and finetune.html; when analysis.json is there
    too, report.html is written again from it with the finetune table (nothing recomputed)."""
    outdir = run.workdir / "analysis"
    with files.writing_into(outdir):  # a full disk or read-only workdir: one line
        files.write_text(outdir / "finetune.json", json.dumps(out, indent=2) + "\n")
        files.write_text(outdir / "finetune.html", render(out))
        analysis = files.read_previous(outdir / "analysis.json")
        if "analyses" in analysis:
            from jaxae.analysis.cli import ANALYSES  # the analyses' docs, for their paragraphs

            docs = {n: (fn.__doc__ or "").strip() for n, fn in ANALYSES.items()}
            report.write_report(run, analysis, outdir / "report.html", docs)
    return outdir


def main(argv: list[str]) -> None:
    """The command line; user errors (no such run) exit 2 with one line."""
    parser = argparse.ArgumentParser(prog="python -m jaxae.finetune", description=__doc__)
    parser.add_argument("--workdir", required=True, help="a workdir written by train.py")
    parser.add_argument("--steps", type=int, default=500, help="Adam steps per setting")
    parser.add_argument("--fractions", default="0.01,0.1,1", help="label fractions, comma list")
    parser.add_argument("--max_test", type=int, default=10000, help="test images scored")
    args = parser.parse_args(argv)
    with errors.one_line_errors():
        fractions = parse_fractions(args.fractions)
        finetune(args.workdir, fractions=fractions, steps=args.steps, max_test=args.max_test)
    outdir = pathlib.Path(args.workdir) / "analysis"
    shown = " and its table into report.html" if (outdir / "analysis.json").exists() else ""
    print(f"wrote {outdir / 'finetune.html'}{shown}")


if __name__ == "__main__":
    main(sys.argv[1:])
