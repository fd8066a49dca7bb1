"""Reload a trained run from its workdir: model, variables and config, without training code."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jaxae import config as config_lib
from jaxae import models
from jaxae.errors import UserError
from jaxae.runtime import checkpoint

STEP_CHOICES = "an int, None or 'latest', or 'best'"


class RunNotFoundError(UserError, FileNotFoundError):
    """The workdir, or a checkpoint in it, does not exist; the message is one line with the fix."""


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained run: the rebuilt model, its variables ({'params', ['batch_stats']}) and config."""

    model: nn.Module
    variables: dict[str, Any]
    config: ml_collections.ConfigDict
    step: int
    workdir: pathlib.Path

    @property
    def is_vae(self) -> bool:
        return models.is_vae(self.model)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images the model takes."""
        return tuple(int(n) for n in self.config.model.get("image_shape", (28, 28, 1)))

    def encode(self, x: jax.Array) -> Any:
        """x [B, H, W, C] float in [0, 1] → the model's code (z, or (mu, logvar) for VAEs)."""
        return _apply(self.model, "encode")(self.variables, x)

    def code(self, x: jax.Array) -> jax.Array:
        """x [B, H, W, C] → the code the decoder takes: z (mu for VAEs), shape [B, ...]."""
        z = self.encode(x)
        return z[0] if self.is_vae else z

    def decode(self, z: jax.Array) -> jax.Array:
        """z [B, ...] (shape of `code`) → reconstructions sigmoid(logits) [B, H, W, C]."""
        return jax.nn.sigmoid(_apply(self.model, "decode")(self.variables, z))

    def logits(self, x: jax.Array) -> jax.Array:
        """x [B, H, W, C] → decoder logits [B, H, W, C] in eval mode (VAEs decode mu)."""
        return _apply(self.model, "__call__")(self.variables, x)[0]

    def reconstruct(self, x: jax.Array) -> jax.Array:
        """x [B, H, W, C] → sigmoid(logits) [B, H, W, C] in eval mode (VAEs decode mu)."""
        return jax.nn.sigmoid(self.logits(x))


_APPLY_CACHE: dict[tuple[int, str], Any] = {}


def _apply(model: nn.Module, method: str):
    """jit(model.apply(variables, x, method=method, train=False)); one compile per shape."""
    key = (id(model), method)
    if key not in _APPLY_CACHE:

        def fn(variables, x):
            return model.apply(variables, x, train=False, method=getattr(type(model), method))

        _APPLY_CACHE[key] = (model, jax.jit(fn))  # keep the model alive so its id stays unique
    return _APPLY_CACHE[key][1]


def _select_step(mngr, step: int | str | None, workdir: pathlib.Path) -> int:
    steps = sorted(mngr.all_steps())
    if not steps:
        raise RunNotFoundError(
            f"{workdir} has no checkpoint in {workdir / 'checkpoints'}; train first: "
            f"python train.py --config configs/NAME.py --workdir {workdir}"
        )
    if step is None or step == "latest":
        return steps[-1]
    if step == "best":
        best = mngr.best_step()
        if best is None:
            raise RunNotFoundError(
                f"{workdir} has no checkpoint saved with an eval loss, so no best one; "
                f"use step=None for the latest ({steps[-1]})"
            )
        return best
    if isinstance(step, int | np.integer) and not isinstance(step, bool):
        if int(step) not in steps:
            raise RunNotFoundError(
                f"{workdir} has no checkpoint at step {step}; saved steps: "
                f"{', '.join(map(str, steps))}"
            )
        return int(step)
    raise ValueError(f"step must be {STEP_CHOICES}; got {step!r}")


def _single_device_target(mngr, step: int) -> Any:
    """Shapes and dtypes of the saved state, placed on the first local device.

    Restoring onto an explicit target is what lets a run saved on N devices load on any number.
    """
    path = pathlib.Path(mngr.directory) / str(step) / "state"
    tree = ocp.StandardCheckpointer().metadata(path).item_metadata
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), dict(tree)
    )


def _check_config_json(meta: dict, workdir: pathlib.Path) -> None:
    """Raises CheckpointMismatchError when workdir/config.json names another model than the
    checkpoint (model fields missing from either count as their defaults)."""
    config_path = workdir / "config.json"
    if not config_path.exists():
        return
    on_disk = json.loads(config_path.read_text())
    saved = meta["config"]
    try:  # only the model is compared: the rest of config.json may change between resumes
        checkpoint.check_compatible(
            meta, workdir, config={**saved, "model": on_disk.get("model") or {}}
        )
    except checkpoint.CheckpointMismatchError:
        raise checkpoint.CheckpointMismatchError(
            f"{workdir}/checkpoints holds model {saved['model'].get('name')!r} "
            f"{saved['model']} but config.json says {on_disk.get('model')}; the workdir mixes "
            f"two runs, retrain into a new --workdir"
        ) from None


def _saved_config(saved: dict) -> ml_collections.ConfigDict:
    """The checkpoint's config, its model fields overlaid on the model's current defaults: a
    checkpoint saved before a model field existed loads with that field at its default."""
    model = {**config_lib.model_defaults(saved["model"]["name"]), **saved["model"]}
    return config_lib.from_dict({**saved, "model": model})


def load(workdir: str | pathlib.Path, step: int | str | None = None) -> Run:
    """Loads the run in `workdir` at `step` (int, None/'latest' or 'best') onto the default device.

    The model is rebuilt from the config stored in the checkpoint; only params and batch_stats are
    restored (no optimizer), so it loads on any device count. A missing workdir or checkpoint
    raises RunNotFoundError, a checkpoint of another model than workdir/config.json says raises
    checkpoint.CheckpointMismatchError, each with one line.
    """
    workdir = pathlib.Path(workdir)
    chosen, state, meta = _restore(workdir, step)
    checkpoint.check_compatible(meta, workdir)  # the format
    _check_config_json(meta, workdir)
    config = _saved_config(meta["config"])
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)
    variables = {"params": _to_device(state["params"])}
    if state.get("batch_stats"):
        variables["batch_stats"] = _to_device(state["batch_stats"])
    image_shape = tuple(fields.get("image_shape", (28, 28, 1)))
    if _shapes(_abstract_variables(model, image_shape)) != _shapes(variables):
        raise checkpoint.CheckpointMismatchError(
            f"{workdir} at step {chosen}: the saved parameters do not fit model "
            f"{config.model.name!r} built from its stored config; retrain into a new --workdir"
        )
    return Run(model=model, variables=variables, config=config, step=chosen, workdir=workdir)


def _restore(workdir: pathlib.Path, step: int | str | None) -> tuple[int, dict, dict]:
    """(chosen step, saved state as a nested dict on one device, its meta); one-line errors."""
    if not workdir.is_dir():
        raise RunNotFoundError(
            f"--workdir {workdir} does not exist; give the directory a training run wrote"
        )
    if not (workdir / "checkpoints").is_dir():
        raise RunNotFoundError(
            f"{workdir} has no checkpoints/ directory; train first: "
            f"python train.py --config configs/NAME.py --workdir {workdir}"
        )
    mngr = checkpoint.manager(workdir, read_only=True)
    try:
        chosen = _select_step(mngr, step, workdir)
        state, meta = checkpoint.restore(mngr, chosen, _single_device_target(mngr, chosen))
    finally:
        mngr.close()
    return chosen, state, meta


def _to_device(tree: Any) -> Any:
    return jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), tree)


def _shapes(tree: Any) -> Any:
    return jax.tree.map(lambda a: a.shape, dict(tree))


def _abstract_variables(model: nn.Module, image_shape: tuple[int, ...]) -> Any:
    """Shapes of model.init's variables for images [1, *image_shape] (nothing computed)."""
    return jax.eval_shape(
        lambda: model.init(
            {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(0)},
            jnp.zeros((1, *image_shape), jnp.float32),
            train=False,
        )
    )
