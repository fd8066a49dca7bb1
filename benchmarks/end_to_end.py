"""Seconds from a cold start to the final test metrics: jaxae's train.py vs the seed tutorials.

    pip install -e '.[bench]'    # the pinned CPU PyTorch (and `pip install keras` for conv_keras)
    python benchmarks/end_to_end.py [--models vanilla,conv_deep] [--epochs 1] [--repeats 3]
                                    [--xla-cache user|empty]
                                    [--out benchmarks/results/end_to_end_DATE.json]
    python benchmarks/end_to_end.py --smoke     # seconds: synthetic data, 2 steps a side

Each side is one subprocess, timed from its start to its exit, so both pay their imports and
start-up; both train for the same number of epochs of Fashion-MNIST:

- jaxae: `python train.py --config configs/NAME.py --workdir TMP --config.num_epochs=E`, a fresh
  workdir every time; the test `mse` is read from TMP/summary.json (for a VAE the mean-code
  reconstruction). Added overrides: `progress=False`, and for a VAE `vae.nll_examples=0` (the
  importance-sampled NLL, which the reference does not compute). jaxae's XLA cache is the
  user's own with its program store (`--xla-cache user`: after the first run, runs load their
  compiled programs, as a rerun of a config does) or a new empty one every run (`empty`: each
  run compiles everything, as the first run on a machine does; the dataset cache is linked in).
- the reference, the seed tutorial's own loop. PyTorch (`--torch-side NAME`): a DataLoader
  (shuffle, drop_last) over the in-memory uint8 images scaled to [0, 1], Adam at the config's
  learning rate and batch size, the config's global-norm gradient clip, PyTorch's default
  initialisation (the architectures of throughput.py's `torch_model`), then the MSE of sigmoid
  outputs over all test images in eval mode (BatchNorm running statistics, no dropout).
  conv_keras's reference is the Keras blog's model in Keras 3 on its JAX backend
  (`--keras-side conv_keras`): `fit` (shuffle; the last partial batch dropped beforehand) with
  Adam and binary cross-entropy, then `predict` on the test images.
- `pythae_ae` and `pythae_vae` (`--pythae-side NAME`): Pythae's default AE and VAE through its
  own `TrainingPipeline` and trainer defaults, against jaxae training the same architecture from
  configs/vanilla.py and configs/vae.py with Pythae's learning rate, batch and initialisation
  (benchmarks/peers.py says exactly what each side does).

Sides alternate (jaxae, reference, jaxae, reference, ...) so both see the same machine state; the
table gives the median seconds per side, their ratio reference/jaxae (> 1: jaxae faster) and each
side's test MSE (of its last repeat). Parameter counts are compared before anything is timed (and
again with what each run reports); a model whose two sides differ is refused. jaxae's dataset
cache is filled once, untimed, so every jaxae run reads it as any run after a machine's first does.

Run it on a quiet machine. With its default thread count (all CPUs, as torch's own default here)
PyTorch's OpenMP threads wait on each other at every op, so another busy process makes its runs
many times slower (on 2 CPUs with one other job: vanilla's epoch 2 s → 70 s), far more than
jaxae's; each run's CPU seconds and the load average before it are in the JSON, and `--threads 1`
shows how much of a torch time is that waiting.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
# model -> the framework of its seed tutorial
REFERENCE = {
    "vanilla": "torch",
    "deep_fc": "torch",
    "conv_simple": "torch",
    "conv_deep": "torch",
    "conv_vae": "torch",
    "conv_keras": "keras",
    "pythae_ae": "pythae",  # Pythae's default models through its pipeline (benchmarks/peers.py)
    "pythae_vae": "pythae",
}
MODELS = tuple(REFERENCE)
INSTALL = {
    "torch": "pip install -e '.[bench]'",
    "keras": "pip install keras",
    "pythae": "pip install -e '.[bench]' pythae",
}
RESULT_TAG = "END_TO_END_RESULT "
SMOKE_STEPS = 2
SMOKE_SIZES = (256, 128)  # (train, test) random images on the smoke reference side
TEST_BATCH = 500


class BenchError(Exception):
    """A benchmark that cannot run as asked; the message is one line."""


# ----------------------------------------------------------------------------------------------
# What each side is asked to do


def jaxae_config(name: str) -> tuple[str, tuple[str, ...]]:
    """(config name, train.py overrides) of a row: configs/NAME.py itself, or a peer's model."""
    sys.path.insert(0, str(HERE))
    from peers import JAXAE_SIDE

    return JAXAE_SIDE.get(name, (name, ()))


def config_settings(name: str) -> dict[str, Any]:
    """The fields of a row's jaxae config the reference must copy; refuses what it cannot copy."""
    sys.path.insert(0, str(ROOT))
    from jaxae import config as config_lib

    config_name, overrides = jaxae_config(name)
    path = ROOT / "configs" / f"{config_name}.py"
    if not path.exists():
        raise BenchError(f"no config {path}")
    c = config_lib.load_file(str(path))
    config_lib.apply_overrides(c, [o.removeprefix("--config.") for o in overrides])
    unsupported = {
        "optimizer": (c.optimizer, "adam"),
        "schedule": (c.schedule, "constant"),
        "weight_decay": (c.weight_decay, 0.0),
        "warmup_steps": (c.warmup_steps, 0),
    }
    for field, (value, want) in unsupported.items():
        if value != want:
            raise BenchError(f"{name}: config {field}={value!r}; the reference only does {want!r}")
    return {
        "batch_size": int(c.batch_size),
        "learning_rate": float(c.learning_rate),
        "grad_clip": float(c.grad_clip),
        "seed": int(c.seed),
        "loss": str(c.loss),
        "model": dict(c.model),
    }


def jaxae_command(name: str, workdir: str, epochs: int, *, smoke: bool, vae: bool) -> list[str]:
    config_name, overrides = jaxae_config(name)
    cmd = [sys.executable, str(ROOT / "train.py"), "--config", f"configs/{config_name}.py"]
    cmd += ["--workdir", workdir, f"--config.num_epochs={epochs}", "--config.progress=False"]
    cmd += overrides
    if vae:
        cmd.append("--config.vae.nll_examples=0")
    if smoke:
        cmd += ["--config.dataset.name=synthetic", f"--config.num_steps={SMOKE_STEPS}"]
    return cmd


def reference_command(name: str, epochs: int, settings: dict[str, Any], args) -> list[str]:
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve())]
    cmd += [f"--{REFERENCE[name]}-side", name]
    cmd += ["--epochs", str(epochs), "--batch", str(settings["batch_size"])]
    cmd += ["--lr", repr(settings["learning_rate"]), "--clip", repr(settings["grad_clip"])]
    cmd += ["--seed", str(settings["seed"]), "--threads", str(args.threads)]
    cmd += ["--data-dir", args.data_dir]
    if args.smoke:
        cmd.append("--smoke")
    return cmd


def order(models: Sequence[str], repeats: int, sides: Sequence[str]) -> list[tuple[str, int, str]]:
    """(model, repeat, side) in run order: per model, the sides alternate repeat by repeat."""
    return [(m, r, s) for m in models for r in range(repeats) for s in sides]


def available(framework: str) -> bool:
    return importlib.util.find_spec(framework) is not None


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------------------------
# Parameter counts, before anything is timed


def jaxae_params(name: str) -> int:
    """Parameters of configs/NAME.py's model, from the shapes of its initialisation."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxae import models

    fields = config_settings(name)["model"]
    model = models.create_model(fields.pop("name"), **fields)
    shape = tuple(fields.get("image_shape", (28, 28, 1)))
    key = jax.random.PRNGKey(0)
    rngs = {"params": key, "dropout": key, "sample": key}
    variables = jax.eval_shape(
        lambda: model.init(rngs, jnp.zeros((1, *shape), jnp.float32), train=False)
    )
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(variables["params"])))


def torch_params(name: str) -> int:
    sys.path.insert(0, str(HERE))
    from throughput import torch_model

    module, _, _ = torch_model(name)
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def reference_params(name: str) -> int:
    if REFERENCE[name] == "keras":
        return keras_model(name).count_params()
    if REFERENCE[name] == "pythae":
        sys.path.insert(0, str(HERE))
        from peers import pythae_params

        return pythae_params(name)
    return torch_params(name)


# ----------------------------------------------------------------------------------------------
# The reference sides (each its own process)


def read_idx_images(path: pathlib.Path):
    """uint8 [N, H, W] from an IDX image file (.gz or not)."""
    import numpy as np

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, h, w = (int.from_bytes(raw[i : i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051:
        raise BenchError(f"{path}: not an IDX image file (magic {magic})")
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w).copy()  # writable


def _idx_file(directory: pathlib.Path, stem: str) -> pathlib.Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    raise BenchError(f"no {stem}[.gz] in {directory} (pass --data-dir)")


def load_images(data_dir: str, smoke: bool, seed: int):
    """(train, test) uint8 [N, 28, 28]: Fashion-MNIST's IDX files, or tiny random ones."""
    import numpy as np

    if smoke:
        rng = np.random.default_rng(seed)
        return tuple(rng.integers(0, 256, (n, 28, 28), np.uint8) for n in SMOKE_SIZES)
    d = pathlib.Path(data_dir)
    train = read_idx_images(_idx_file(d, "train-images-idx3-ubyte"))
    test = read_idx_images(_idx_file(d, "t10k-images-idx3-ubyte"))
    return train, test


def torch_side(args) -> dict[str, Any]:
    """Trains the PyTorch reference as the tutorials do; returns the test metrics."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    sys.path.insert(0, str(HERE))
    from throughput import torch_model

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_u8, test_u8 = load_images(args.data_dir, args.smoke, args.seed)
    train = torch.from_numpy(train_u8).unsqueeze(1).float().div_(255.0)
    test = torch.from_numpy(test_u8).unsqueeze(1).float().div_(255.0)
    model, loss_fn, _ = torch_model(args.torch_side)
    vae = args.torch_side == "conv_vae"
    loader = DataLoader(TensorDataset(train), batch_size=args.batch, shuffle=True, drop_last=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps, t_train = 0, time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for (x,) in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model, x)
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            steps += 1
            if args.smoke and steps >= SMOKE_STEPS:
                break
        if args.smoke and steps >= SMOKE_STEPS:
            break
    t_train = time.perf_counter() - t_train
    model.eval()
    sse, elbo = 0.0, 0.0
    with torch.no_grad():
        for x in torch.split(test, TEST_BATCH):
            if vae:  # the mean code, as jaxae's eval does
                logits = model.dec(model.mu(model.enc(x)))
                elbo -= float(loss_fn(model, x)) * len(x)  # a sampled code, as jaxae's ELBO
            else:
                logits = model(x)
            sse += float(torch.sum((torch.sigmoid(logits) - x) ** 2))
    result = {
        "mse": sse / test.numel(),
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "steps": steps,
        "train_seconds": t_train,
        "threads": torch.get_num_threads(),
        "test_examples": len(test),
        "framework": f"torch {torch.__version__}",
    }
    if vae:
        result["elbo"] = elbo / len(test)
    return result


def reference_side(args) -> dict[str, Any]:
    """The reference side this subprocess was started for."""
    if args.torch_side:
        return torch_side(args)
    if args.keras_side:
        return keras_side(args)
    sys.path.insert(0, str(HERE))
    from peers import pythae_side

    train_u8, test_u8 = load_images(args.data_dir, args.smoke, args.seed)
    return pythae_side(
        args.pythae_side,
        train_u8,
        test_u8,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
    )


def keras_model(name: str):
    """The Keras blog's conv autoencoder ("Building Autoencoders in Keras"), 4,385 parameters."""
    if name != "conv_keras":
        raise BenchError(f"no Keras reference for {name!r}")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from keras import layers

    inp = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(inp)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    encoded = layers.MaxPooling2D(2, padding="same")(x)  # 4×4×8
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(encoded)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)  # valid: 16 → 14
    x = layers.UpSampling2D(2)(x)
    out = layers.Conv2D(1, 3, activation="sigmoid", padding="same")(x)
    return keras.Model(inp, out)


def keras_side(args) -> dict[str, Any]:
    """Trains the Keras reference as its tutorial does (fit/predict); returns the test metrics."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    import numpy as np

    keras.utils.set_random_seed(args.seed)
    train_u8, test_u8 = load_images(args.data_dir, args.smoke, args.seed)
    train = train_u8[..., None].astype(np.float32) / 255.0
    test = test_u8[..., None].astype(np.float32) / 255.0
    n = len(train) // args.batch * args.batch  # drop the last partial batch, as jaxae does
    if args.smoke:
        n = min(n, SMOKE_STEPS * args.batch)
    train = train[:n]
    model = keras_model(args.keras_side)
    clip = {"global_clipnorm": args.clip} if args.clip > 0 else {}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=args.lr, **clip), loss="binary_crossentropy"
    )
    epochs = 1 if args.smoke else args.epochs
    t_train = time.perf_counter()
    model.fit(train, train, epochs=epochs, batch_size=args.batch, shuffle=True, verbose=0)
    t_train = time.perf_counter() - t_train
    recon = model.predict(test, batch_size=TEST_BATCH, verbose=0)
    return {
        "mse": float(np.mean((recon - test) ** 2, dtype=np.float64)),
        "params": int(model.count_params()),
        "steps": epochs * (len(train) // args.batch),
        "train_seconds": t_train,
        "test_examples": len(test),
        "framework": f"keras {keras.__version__} ({keras.backend.backend()})",
    }


# ----------------------------------------------------------------------------------------------
# Running the sides and reading what they report


def parse_reference_output(stdout: str) -> dict[str, Any]:
    """The result line a reference side prints last."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    raise BenchError("the reference side printed no result line")


def read_summary(workdir: str | os.PathLike[str]) -> dict[str, Any]:
    path = pathlib.Path(workdir) / "summary.json"
    if not path.exists():
        raise BenchError(f"train.py wrote no {path}")
    summary = json.loads(path.read_text())
    if "mse" not in summary:
        raise BenchError(f"{path} has no 'mse' (keys: {', '.join(sorted(summary))})")
    return summary


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def empty_xla_cache(directory: pathlib.Path, user_cache: pathlib.Path) -> dict[str, str]:
    """The environment of a jaxae run whose cache is `directory`: the user cache's datasets
    linked in, no compiled or stored programs and no measured step memory, so the run compiles
    and chooses its malloc setting as a machine's first does."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in user_cache.glob("*"):
        if entry.name not in ("xla", "programs", "step_memory"):
            (directory / entry.name).symlink_to(entry.resolve())
    return {**os.environ, "JAXAE_CACHE_DIR": str(directory)}


def user_cache_root() -> pathlib.Path:
    sys.path.insert(0, str(ROOT))
    from jaxae.runtime.startup import cache_root

    return cache_root()


def run_side(model: str, side: str, epochs: int, settings: dict[str, Any], args):
    """One timed cold run of `side` ('jaxae' or 'ref'): {'seconds', 'mse', ...} or {'error'}.

    With args.xla_cache 'empty', a jaxae run starts from an empty XLA cache (it compiles).
    """
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=f"e2e_{model}_")) if side == "jaxae" else None
    env = None
    if scratch is not None:
        vae = model in ("conv_vae", "pythae_vae")
        cmd = jaxae_command(model, str(scratch / "run"), epochs, smoke=args.smoke, vae=vae)
        if args.xla_cache == "empty":
            env = empty_xla_cache(scratch / "cache", user_cache_root())
    else:
        cmd = reference_command(model, epochs, settings, args)
    # the 1-minute load average before, and the run's own CPU seconds: what other processes on
    # the machine were doing shows in both (an oversubscribed torch spins in its OpenMP waits)
    record: dict[str, Any] = {"model": model, "side": side, "command": cmd}
    if scratch is not None:
        record["xla_cache"] = args.xla_cache
    record["load_before"] = os.getloadavg()[0]
    cpu = _children_cpu()
    t = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=args.timeout,
            check=False,
        )
        record["seconds"] = time.perf_counter() - t
        record["cpu_seconds"] = _children_cpu() - cpu
        if proc.returncode != 0:
            raise BenchError(f"exit {proc.returncode}: {_tail(proc.stderr or proc.stdout)}")
        if side == "jaxae":
            summary = read_summary(scratch / "run")
            record.update(
                mse=summary["mse"], params=summary.get("params"), steps=summary.get("steps")
            )
            for key in ("elbo", "images_per_second"):
                if key in summary:
                    record[key] = summary[key]
        else:
            record.update(parse_reference_output(proc.stdout))
    except subprocess.TimeoutExpired:
        record["seconds"] = time.perf_counter() - t
        record["error"] = f"timed out after {args.timeout} s"
    except (BenchError, json.JSONDecodeError) as err:
        record["error"] = str(err)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return record


def summarize(model: str, epochs: int, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The table row of one model: median seconds per side, ratio, the last run's test MSE."""
    records = [r for r in records if r["model"] == model]
    row: dict[str, Any] = {"model": model, "reference": REFERENCE.get(model), "epochs": epochs}
    for side in ("jaxae", "ref"):
        ok = [r for r in records if r["side"] == side and "error" not in r]
        row[f"{side}_seconds"] = statistics.median(r["seconds"] for r in ok) if ok else None
        row[f"{side}_mse"] = ok[-1]["mse"] if ok else None
        row[f"{side}_runs"] = len(ok)
        errors = [r["error"] for r in records if r["side"] == side and "error" in r]
        if errors:
            row[f"{side}_error"] = errors[-1]
        elbo = [r["elbo"] for r in ok if "elbo" in r]
        if elbo:
            row[f"{side}_elbo"] = elbo[-1]
    j, t = row["jaxae_seconds"], row["ref_seconds"]
    row["ratio"] = t / j if j and t else None
    return row


def _cell(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """model, reference, epochs, seconds of each side, ref/jaxae (> 1: jaxae faster), MSEs."""
    head = (
        f"{'model':<12} {'ref':<6} {'epochs':>6} {'jaxae s':>9} {'ref s':>9} {'ref/jaxae':>9} "
        f"{'jaxae MSE':>10} {'ref MSE':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        note = r.get("note", "")
        lines.append(
            f"{r['model']:<12} {r.get('reference') or '-':<6} {r['epochs']:>6} "
            f"{_cell(r.get('jaxae_seconds'), '.1f'):>9} {_cell(r.get('ref_seconds'), '.1f'):>9} "
            f"{_cell(r.get('ratio'), '.2f'):>9} {_cell(r.get('jaxae_mse'), '.4f'):>10} "
            f"{_cell(r.get('ref_mse'), '.4f'):>10}" + (f"  {note}" if note else "")
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = platform.processor()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    versions.update((p, version(p)) for p in ("jax", "jaxlib", "flax", "torch", "keras", "pythae"))
    return {"nproc": os.cpu_count(), "cpu": model, "platform": platform.platform(), **versions}


def prime_dataset_cache(smoke: bool) -> str:
    """Decodes Fashion-MNIST once through jaxae's loader, untimed, so its cache exists."""
    if smoke:
        return "skipped (smoke)"
    code = "from jaxae import data; data.load_dataset('fashion_mnist')"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return "ready" if proc.returncode == 0 else f"not primed: {_tail(proc.stderr, 1)}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each side")
    parser.add_argument("--out", help="write the runs and the table here as JSON")
    parser.add_argument("--smoke", action="store_true", help="synthetic data, 2 steps a side")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument(
        "--xla-cache",
        choices=("user", "empty"),
        default="user",
        help="jaxae's XLA cache: the user's (repeats reuse compiled programs) or empty per run",
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads; 0: torch's default"
    )
    debian = pathlib.Path(os.environ.get("JAXAE_DEBIAN_DATA_ROOT", "/usr/share/datasets"))
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("JAXAE_DATA_DIR") or str(debian / "fashion-mnist"),
        help="Fashion-MNIST IDX files for the reference side",
    )
    # a reference side, run by the benchmark itself as a subprocess
    parser.add_argument("--torch-side", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("--keras-side", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("--pythae-side", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--lr", type=float, default=1e-3, help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    """0: every model compared; 1: a run failed or a model was refused; 2: bad arguments."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        parser.error("--epochs and --repeats must be at least 1")
    if args.torch_side or args.keras_side or args.pythae_side:
        result = reference_side(args)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return 0

    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in REFERENCE]
    if unknown:
        print(
            f"error: no reference for {', '.join(unknown)}; models: {', '.join(MODELS)}",
            file=sys.stderr,
        )
        return 2
    rows, records, settings, refused, sides = {}, [], {}, set(), {}
    for name in models:
        ref = REFERENCE[name]
        if not available(ref) and not args.smoke:
            rows[name] = {
                "model": name,
                "reference": ref,
                "epochs": args.epochs,
                "note": f"not measured: {ref} not installed ({INSTALL[ref]})",
            }
            continue
        sides[name] = ("jaxae", "ref") if available(ref) else ("jaxae",)
        try:
            settings[name] = config_settings(name)
        except (BenchError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        rp = reference_params(name) if available(ref) else None
        try:
            jp = jaxae_params(name)
        except Exception as err:  # the models API moved: the runs' own counts are still checked
            print(
                f"warning: {name}: no jaxae parameter count before the runs ({err})",
                file=sys.stderr,
            )
            jp = None
        settings[name]["params"] = {"jaxae": jp, "ref": rp}
        if None not in (jp, rp) and jp != rp:
            print(f"refused {name}: jaxae has {jp:,} parameters, {ref} {rp:,}", file=sys.stderr)
            refused.add(name)
            rows[name] = {
                "model": name,
                "reference": ref,
                "epochs": args.epochs,
                "note": f"refused: {jp:,} vs {rp:,} parameters",
            }
    todo = [m for m in models if m in settings and m not in refused]
    cache = prime_dataset_cache(args.smoke) if todo else "not needed"
    info = machine()
    print(
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {info['nproc']} CPUs "
        f"({info['cpu']}); jax {info['jax']}, torch {info['torch']}, keras {info['keras']}; "
        f"{'smoke: synthetic, 2 steps' if args.smoke else f'{args.epochs} epoch(s)'}, "
        f"{args.repeats} repeat(s) a side; jaxae dataset cache {cache}, "
        f"XLA cache {'empty every run' if args.xla_cache == 'empty' else 'the user one'}",
        flush=True,
    )
    for name in todo:
        for _, rep, side in order([name], args.repeats, sides[name]):
            record = run_side(name, side, args.epochs, settings[name], args)
            record["repeat"] = rep
            records.append(record)
            counts = settings[name]["params"]
            want = counts["ref"] if counts["ref"] is not None else counts["jaxae"]
            got = record.get("params")
            if "error" not in record and None not in (want, got) and got != want:
                record["error"] = f"{got:,} parameters, the other side {want:,}: not compared"
            done = (
                f"error: {record['error']}"
                if "error" in record
                else f"{record['seconds']:.1f} s ({record.get('cpu_seconds', 0):.1f} CPU s, "
                f"load {record.get('load_before', 0):.1f} before), test MSE {record['mse']:.4f}"
            )
            print(f"  {name} {side} #{rep + 1}: {done}", file=sys.stderr, flush=True)
        row = summarize(name, args.epochs, records)
        error = row.get("jaxae_error") or row.get("ref_error")
        if error:
            row["note"] = "failed: " + error.split(" | ")[-1].strip()[:100]
        elif "ref" not in sides[name]:
            row["note"] = f"{row['reference']} not installed"
        rows[name] = row
    table = [rows[m] for m in models]
    print(format_table(table), flush=True)
    if args.out:
        hidden = ("batch", "lr", "clip", "seed", "torch_side", "keras_side", "pythae_side")
        out = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": info,
            "args": {k: v for k, v in vars(args).items() if k not in hidden},
            "dataset_cache": cache,
            "settings": settings,
            "rows": table,
            "runs": records,
        }
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 1 if refused or any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
