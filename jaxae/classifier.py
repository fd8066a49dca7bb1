"""The feature network of the perceptual loss: a small conv classifier trained on jaxae's data.

    python -m jaxae.classifier --workdir W [--config.dataset.name=mnist] [--config.num_steps=N]

No pretrained image network exists offline, so jaxae trains its own on the labels the dataset
brings (Fashion-MNIST by default). W gets classifier/params (Orbax) and classifier.json (the
config, the image shape, the classes and the test accuracy); `perceptual.feature_workdir=W`
makes the feature loss compare its activations (jaxae/perceptual.py: feature_loss).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxae import errors
from jaxae.errors import UserError

INFO_FILE = "classifier.json"
PARAMS_DIR = "classifier"
FORMAT_VERSION = 1


class ClassifierError(UserError, ValueError):
    """A dataset the classifier cannot train on, or a workdir that holds no classifier."""


class Classifier(nn.Module):
    """Conv blocks (3×3 conv, ReLU, 2×2 average pool) then a ReLU dense layer and the logits.

    x [B, H, W, C] in [0, 1] -> logits [B, num_classes]. `features` returns the activations the
    perceptual loss compares: each block's ReLU output before its pooling (28×28×32 and 14×14×64
    on Fashion-MNIST): the first holds edges and strokes (what blur removes), the second their
    arrangement. The dense head only serves training.
    """

    num_classes: int
    widths: Sequence[int] = (32, 64)
    dense: int = 128

    def setup(self):
        self.convs = [nn.Conv(w, (3, 3), name=f"conv{i}") for i, w in enumerate(self.widths)]
        self.hidden = nn.Dense(self.dense, name="hidden")
        self.head = nn.Dense(self.num_classes, name="head")

    def features(self, x: jax.Array) -> list[jax.Array]:
        """x [B, H, W, C] -> one activation [B, H/2^i, W/2^i, widths[i]] per block."""
        out = []
        for i, conv in enumerate(self.convs):
            if i:
                x = nn.avg_pool(x, (2, 2), (2, 2), padding="SAME")
            x = nn.relu(conv(x))
            out.append(x)
        return out

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.avg_pool(self.features(x)[-1], (2, 2), (2, 2), padding="SAME")
        return self.head(nn.relu(self.hidden(x.reshape(x.shape[0], -1))))


def default_config() -> ml_collections.ConfigDict:
    """The classifier's fields; `dataset` is the autoencoders' section, read the same way."""
    from jaxae import config as config_lib

    c = ml_collections.ConfigDict()
    c.seed = 0
    c.batch_size = 128
    c.num_steps = 1000
    c.learning_rate = 1e-3
    c.eval_batch_size = 500
    c.widths = (32, 64)
    c.dense = 128
    c.dataset = config_lib.default_config().dataset
    return c


def load_data(config: ml_collections.ConfigDict):
    """The labelled image dataset `config.dataset` names (any image shape), or one error line."""
    from jaxae import data
    from jaxae.config_checks import validate_dataset

    validate_dataset(config.dataset)
    fields = config.dataset
    options = {f: fields[f] for f in data.load.OPTIONS if f in fields}
    ds = data.load_dataset(
        fields.name,
        max_train_examples=fields.max_train_examples,
        max_test_examples=fields.max_test_examples,
        exclude_class=fields.exclude_class,
        seed=config.seed,
        **options,
    )
    if ds.kind != "images":
        raise ClassifierError(
            f"dataset {ds.name} holds feature vectors; the perceptual classifier needs images"
        )
    if ds.num_classes < 2:
        raise ClassifierError(
            f"dataset {ds.name} has no class labels; give a labelled one (e.g. folder:DIR with "
            f"one subfolder per class, or array:FILE.npz with y)"
        )
    return ds


def train(config: ml_collections.ConfigDict, ds) -> tuple[Classifier, dict, float]:
    """Adam on softmax cross-entropy over random batches of ds: (module, params, test accuracy)."""
    import optax

    from jaxae import data

    module = Classifier(ds.num_classes, tuple(config.widths), int(config.dense))
    key, init_key = jax.random.split(jax.random.PRNGKey(config.seed))
    shape = (1, *ds.image_shape)
    params = module.init(init_key, jnp.zeros(shape, jnp.float32))["params"]
    tx = optax.adam(config.learning_rate)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        def loss_fn(p):
            logits = module.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(config.seed)
    n, batch = len(ds.train_labels), min(config.batch_size, len(ds.train_labels))
    for i in range(config.num_steps):
        idx = np.sort(rng.choice(n, batch, replace=False))  # sorted: memmaps read forward
        x = data.to_float(np.asarray(ds.train_images[idx]))
        params, opt_state, loss = step(params, opt_state, x, ds.train_labels[idx])
        if (i + 1) % max(1, config.num_steps // 10) == 0:
            print(f"step {i + 1}/{config.num_steps}: train loss {float(loss):.4f}", flush=True)
    return module, params, accuracy(module, params, ds, config.eval_batch_size)


def accuracy(module: Classifier, params, ds, batch_size: int) -> float:
    """Fraction of ds's test images whose arg-max logit is their label."""
    from jaxae import data

    predict = jax.jit(lambda p, x: jnp.argmax(module.apply({"params": p}, x), axis=-1))
    correct = 0
    for start in range(0, len(ds.test_labels), batch_size):
        x = data.to_float(np.asarray(ds.test_images[start : start + batch_size]))
        pred = np.asarray(predict(params, x))
        correct += int(np.sum(pred == ds.test_labels[start : start + batch_size]))
    return correct / len(ds.test_labels)


def save(workdir: pathlib.Path, config, ds, params, test_accuracy: float) -> dict:
    """Writes workdir/classifier (Orbax) and workdir/classifier.json; returns the JSON's dict."""
    import orbax.checkpoint as ocp

    from jaxae import config as config_lib

    workdir.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:  # leaving it waits for the write
        checkpointer.save((workdir / PARAMS_DIR).resolve(), params, force=True)
    info = {
        "format_version": FORMAT_VERSION,
        "dataset": ds.name,
        "image_shape": list(ds.image_shape),
        "num_classes": int(ds.num_classes),
        "feature_layers": [f"conv{i}" for i in range(len(config.widths))],
        "test_accuracy": test_accuracy,
        "test_examples": len(ds.test_labels),
        "config": json.loads(config_lib.to_json(config)),
    }
    (workdir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info


def read_info(workdir: str | pathlib.Path) -> dict:
    """classifier.json of a classifier workdir, or a one-line ClassifierError saying what is
    missing and the command that makes it."""
    path = pathlib.Path(workdir)
    make = f"train one with: python -m jaxae.classifier --workdir {path}"
    if not path.is_dir():
        raise ClassifierError(f"classifier workdir {path} does not exist; {make}")
    try:
        info = json.loads((path / INFO_FILE).read_text())
    except FileNotFoundError:
        raise ClassifierError(f"{path} holds no trained classifier ({INFO_FILE}); {make}") from None
    except (OSError, ValueError) as e:
        raise ClassifierError(f"{path / INFO_FILE} is unreadable ({e}); {make}") from None
    if not isinstance(info, dict) or info.get("format_version") != FORMAT_VERSION:
        raise ClassifierError(f"{path / INFO_FILE} is no jaxae classifier of this version; {make}")
    return info


def load(workdir: str | pathlib.Path) -> tuple[Classifier, dict, dict]:
    """(module, params, info) of a classifier workdir; params as float32 jax arrays."""
    import orbax.checkpoint as ocp

    info = read_info(workdir)
    cfg = info["config"]
    module = Classifier(info["num_classes"], tuple(cfg["widths"]), int(cfg["dense"]))
    abstract = jax.eval_shape(
        lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, *info["image_shape"])))
    )["params"]
    path = (pathlib.Path(workdir) / PARAMS_DIR).resolve()
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            params = checkpointer.restore(path, abstract)
    except (FileNotFoundError, ValueError) as e:
        raise ClassifierError(
            f"the classifier parameters in {path} are missing or damaged ({type(e).__name__}); "
            f"train them again: python -m jaxae.classifier --workdir {workdir}"
        ) from None
    return module, jax.tree.map(jnp.asarray, params), info


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxae.classifier", description=__doc__)
    parser.add_argument("--workdir", required=True, help="where the classifier is written")
    from jaxae import config_file

    args, overrides = config_file.parse_with_overrides(parser, argv)
    with errors.one_line_errors():
        from jaxae import config_checks as checks

        config = default_config()
        config_file.apply_overrides(config, overrides)
        checks.check_schema(config, default_config())
        checks.positive(config, "num_steps", "batch_size", "eval_batch_size", "learning_rate")
        checks.positive(config, "dense")
        widths = config.widths
        if not widths or not all(type(w) is int and w > 0 for w in widths):
            raise checks.ConfigError(
                f"config field 'widths' must hold conv widths > 0, got {config.widths}; "
                f"e.g. --config.widths='(32, 64)'"
            )
        workdir = pathlib.Path(args.workdir)
        if workdir.exists() and not workdir.is_dir():
            raise ClassifierError(f"--workdir {workdir} is a file; give a directory path")
        ds = load_data(config)
        print(f"training the classifier on {ds!r}", flush=True)
        module, params, acc = train(config, ds)
        save(workdir, config, ds, params, acc)
        print(f"test accuracy {acc:.4f} on {len(ds.test_labels)} images; wrote {workdir}")


if __name__ == "__main__":
    main(sys.argv[1:])
