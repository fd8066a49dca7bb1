"""The bottleneck sweep (`python -m jaxae.sweep`): test MSE against code size beside PCA, elbow."""

from __future__ import annotations

import argparse
import json
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxae import config as config_lib
from jaxae import data, errors, models
from jaxae.analysis import figures

plt = figures.plt


def set_code_size(config: ml_collections.ConfigDict, size: int) -> str:
    """Sets the model field that fixes the code size to `size`; returns the field's name.

    FC models and conv models with a dense code take `latent_dim`; conv models whose code is a
    feature map take the channel count of their last encoder block (`features[-1]`).
    """
    fields = config.model
    if "latent_dim" in fields:
        fields.latent_dim = size
        return "model.latent_dim"
    if "features" in fields:
        if isinstance(fields.features, int):
            fields.features = size
            return "model.features"
        fields.features = (*tuple(fields.features)[:-1], size)
        return "model.features[-1]"
    raise config_lib.ConfigError(
        f"model {fields.name!r} has no code-size field (latent_dim or features); "
        "the sweep needs a model whose code size is a config field"
    )


def code_size(config: ml_collections.ConfigDict) -> int:
    """Number of scalars in one image's code (mu for VAEs), from shapes only (no compute)."""
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)
    shape = tuple(fields.get("image_shape", (28, 28, 1)))

    def encode():
        x = jnp.zeros((1, *shape), jnp.float32)
        variables = model.init(jax.random.PRNGKey(0), x, train=False, method=type(model).encode)
        return model.apply(variables, x, train=False, method=type(model).encode)

    z = jax.eval_shape(encode)
    z = z[0] if models.is_vae(model) else z
    return int(np.prod(z.shape[1:]))


def pca_test_mse(train: np.ndarray, test: np.ndarray, sizes: list[int]) -> dict[int, float]:
    """Test MSE of the best rank-k linear reconstruction (PCA fit on train) for each k in sizes.

    train [N, D], test [M, D] floats; k is capped at min(N, D).
    """
    from sklearn.decomposition import PCA

    top = min(max(sizes), *train.shape)
    pca = PCA(n_components=top, svd_solver=figures.pca_solver(train)).fit(train)
    centred = test - pca.mean_
    result = {}
    for k in sizes:
        c = pca.components_[: min(k, top)]  # [k, D], orthonormal rows
        result[k] = float(np.mean((centred @ c.T @ c - centred) ** 2))
    return result


def elbow(sizes: list[int], mse: list[float]) -> int | None:
    """The code size farthest below the chord from the first to the last point of the curve
    (log2 size against MSE, both scaled to [0, 1]); None for fewer than three sizes."""
    if len(sizes) < 3:
        return None
    x = np.log2(np.asarray(sizes, np.float64))
    y = np.asarray(mse, np.float64)
    x = (x - x[0]) / (x[-1] - x[0])
    y = (y - y.min()) / max(y.max() - y.min(), 1e-12)
    chord = y[0] + (y[-1] - y[0]) * x
    return int(sizes[int(np.argmax(chord - y))])


# train(config, workdir) -> summary.json's dict: jaxae.train.train_and_evaluate (handed in by the
# entry point, jaxae/sweep.py, so that analysis code never imports training code).
Trainer = Callable[[ml_collections.ConfigDict, pathlib.Path], dict]


def sweep(
    config: ml_collections.ConfigDict,
    sizes: list[int],
    workdir: str | pathlib.Path,
    train: Trainer,
) -> dict:
    """Trains `config` once per size in workdir/latent_<size> with `train`, then writes
    sweep.json and sweep.png (test MSE vs code size beside PCA with as many components, elbow).

    Reruns resume each run from its checkpoint, so an interrupted sweep continues.
    """
    if not sizes or any(s <= 0 for s in sizes):
        raise config_lib.ConfigError(f"--latents must be positive ints, got {sizes}")
    workdir = pathlib.Path(workdir)
    configs = []
    for size in sorted(set(sizes)):
        c = config_lib.from_dict(config.to_dict())
        field = set_code_size(c, size)
        config_lib.validate(c)
        configs.append((size, c))
    runs = []
    for size, c in configs:
        print(f"sweep: {field}={size}", flush=True)
        run_dir = workdir / f"latent_{size}"
        summary = train(c, run_dir)
        runs.append(
            {
                "latent": size,
                "code_size": code_size(c),
                "test_mse": summary["mse"],
                "params": summary["params"],
                "workdir": str(run_dir),
            }
        )
    ds = data.load_for_config(config)
    train = data.to_float(ds.train_images).reshape(len(ds.train_images), -1)
    test = data.to_float(ds.test_images).reshape(len(ds.test_images), -1)
    code_sizes = [r["code_size"] for r in runs]
    pca = pca_test_mse(train, test, code_sizes)
    for r in runs:
        r["pca_components"] = min(r["code_size"], *train.shape)
        r["pca_test_mse"] = pca[r["code_size"]]
    knee = elbow(code_sizes, [r["test_mse"] for r in runs])
    result = {
        "model": config.model.name,
        "dataset": config.dataset.name,
        "field": field,
        "runs": runs,
        "elbow_code_size": knee,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(result, workdir / "sweep.png")
    return result


def _plot(result: dict, path: pathlib.Path) -> None:
    runs = result["runs"]
    k = [r["code_size"] for r in runs]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(k, [r["test_mse"] for r in runs], "o-", color="C0", label=result["model"])
    ax.plot(k, [r["pca_test_mse"] for r in runs], "s--", color="C2", label="PCA, same k")
    if result["elbow_code_size"] is not None:
        i = k.index(result["elbow_code_size"])
        ax.plot(k[i], runs[i]["test_mse"], "o", ms=14, mfc="none", mec="C3", mew=2)
        ax.annotate(
            f"elbow: k={k[i]}",
            (k[i], runs[i]["test_mse"]),
            textcoords="offset points",
            xytext=(12, 12),
            color="C3",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(k, [str(n) for n in k])
    ax.set_xlabel("code size k (scalars per image)")
    ax.set_ylabel("test MSE")
    ax.set_title(f"bottleneck sweep: {result['model']} on {result['dataset']} ({result['field']})")
    ax.legend()
    ax.grid(alpha=0.3)
    figures.save(fig, path)


def main(argv: list[str], train: Trainer) -> None:
    """The command line of `python -m jaxae.sweep`, training with `train`."""
    parser = argparse.ArgumentParser(prog="python -m jaxae.sweep", description=__doc__)
    parser.add_argument("--config", required=True, help="a config file, e.g. configs/linear.py")
    parser.add_argument("--latents", required=True, help="code sizes, e.g. 2,4,8,16,32,64")
    parser.add_argument("--workdir", required=True, help="one run per size goes under it")
    from jaxae import config_file

    args, overrides = config_file.parse_with_overrides(parser, argv)
    with errors.one_line_errors():
        try:
            sizes = [int(s) for s in args.latents.split(",") if s.strip()]
        except ValueError:
            raise config_lib.ConfigError(
                f"--latents {args.latents!r} must be comma-separated ints, e.g. 2,4,8,16"
            ) from None
        config = config_lib.load_file(args.config)
        config_lib.apply_overrides(config, overrides)
        result = sweep(config, sizes, args.workdir, train)
    where = pathlib.Path(args.workdir) / "sweep.json"
    print(f"wrote {where}; elbow at code size {result['elbow_code_size']}")
