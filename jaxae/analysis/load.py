"""Reload a trained run from its workdir: model, variables and config, without training code."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import pathlib
import sys
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jaxae import config as config_lib
from jaxae import models
from jaxae.analysis import inputs
from jaxae.data import scaling as data_scaling
from jaxae.errors import UserError
from jaxae.runtime import checkpoint

STEP_CHOICES = "an int, None or 'latest', or 'best'"


class RunNotFoundError(UserError, FileNotFoundError):
    """The workdir, or a checkpoint in it, does not exist; the message is one line with the fix."""


class DamagedCheckpointError(UserError, ValueError):
    """The checkpoint asked for, or every checkpoint of the workdir, is damaged (one line)."""


class InvalidConfigJsonError(UserError, ValueError):
    """workdir/config.json is not a JSON object with a `model` section; one line with the fix."""


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained run: the rebuilt model, its variables ({'params', ['batch_stats']}) and config."""

    model: nn.Module
    variables: dict[str, Any]
    config: ml_collections.ConfigDict
    step: int
    workdir: pathlib.Path
    # Vector runs: the per-feature scaling fitted on the training split (workdir/scaling.json);
    # scaling.apply(raw rows [N, D]) gives what the model takes (after reshape to [N, 1, 1, D]).
    scaling: data_scaling.Scaling | None = None

    @property
    def is_vae(self) -> bool:
        return models.is_vae(self.model)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images the model takes."""
        return tuple(int(n) for n in self.config.model.get("image_shape", (28, 28, 1)))

    @functools.cached_property
    def code_shape(self) -> tuple[int, ...]:
        """Shape of one code as `code` returns it and `decode` takes it (without the batch)."""
        x = jax.ShapeDtypeStruct((1, *self.image_shape), jnp.float32)
        out = jax.eval_shape(
            lambda v, x: self.model.apply(v, x, train=False, method="encode"), self.variables, x
        )
        return tuple((out[0] if self.is_vae else out).shape[1:])

    # Every method below takes images x [B, H, W, C] as uint8 pixels (divided by 255, as
    # training does) or floats in [0, 1]; anything else is one InputError line. A vector run
    # takes scaling.apply(rows) reshaped to [B, 1, 1, D], any finite floats.

    def encode(self, x: Any) -> Any:
        """x [B, H, W, C] → the model's code (z, or (mu, logvar) for VAEs)."""
        return _apply(self.model, "encode")(self.variables, self._images(x))

    def code(self, x: Any) -> jax.Array:
        """x [B, H, W, C] → the code the decoder takes: z (mu for VAEs), [B, *code_shape]."""
        z = self.encode(x)
        return z[0] if self.is_vae else z

    def decode(self, z: Any) -> jax.Array:
        """z [B, *code_shape] float → reconstructions sigmoid(logits) [B, H, W, C]."""
        z = inputs.codes(z, self.code_shape)
        return jax.nn.sigmoid(_apply(self.model, "decode")(self.variables, z))

    def logits(self, x: Any) -> jax.Array:
        """x [B, H, W, C] → decoder logits [B, H, W, C] in eval mode (VAEs decode mu)."""
        return _apply(self.model, "__call__")(self.variables, self._images(x))[0]

    def reconstruct(self, x: Any) -> jax.Array:
        """x [B, H, W, C] → sigmoid(logits) [B, H, W, C] in eval mode (VAEs decode mu)."""
        return jax.nn.sigmoid(self.logits(x))

    def _images(self, x: Any) -> jax.Array:
        # Scaled table rows lie in [0, 1] on the training split only: an unusual (anomalous)
        # test row falls outside, and must still be scored.
        return inputs.images(x, self.image_shape, check_range=self.scaling is None)


_APPLY_CACHE: dict[tuple[int, str], Any] = {}


def _apply(model: nn.Module, method: str):
    """jit(model.apply(variables, x, method=method, train=False)); one compile per shape."""
    key = (id(model), method)
    if key not in _APPLY_CACHE:

        def fn(variables, x):
            return model.apply(variables, x, train=False, method=getattr(type(model), method))

        _APPLY_CACHE[key] = (model, jax.jit(fn))  # keep the model alive so its id stays unique
    return _APPLY_CACHE[key][1]


def _candidates(mngr, step: int | str | None, workdir: pathlib.Path) -> list[int]:
    """The steps to try, in order: every saved step newest first for the latest (a damaged one
    falls back to the one before), else only the step asked for."""
    steps = sorted(mngr.all_steps())
    if not steps:
        raise RunNotFoundError(
            f"{workdir} has no checkpoint in {workdir / 'checkpoints'}; train first: "
            f"python train.py --config configs/NAME.py --workdir {workdir}"
        )
    if step is None or step == "latest":
        return steps[::-1]
    if step == "best":
        try:
            best = mngr.best_step()
        except Exception:  # unreadable metrics of a damaged step: the same as no metrics
            best = None
        if best is None:
            raise RunNotFoundError(
                f"{workdir} has no checkpoint saved with an eval loss, so no best one; "
                f"use step=None for the latest ({steps[-1]})"
            )
        return [best]
    if isinstance(step, int | np.integer) and not isinstance(step, bool):
        if int(step) not in steps:
            raise RunNotFoundError(
                f"{workdir} has no checkpoint at step {step}; saved steps: "
                f"{', '.join(map(str, steps))}"
            )
        return [int(step)]
    raise ValueError(f"step must be {STEP_CHOICES}; got {step!r}")


def _single_device_target(mngr, step: int) -> Any:
    """Shapes and dtypes of the saved state, placed on the first local device.

    Restoring onto an explicit target is what lets a run saved on N devices load on any number.
    """
    path = pathlib.Path(mngr.directory) / str(step) / "state"
    with ocp.StandardCheckpointer() as checkpointer:  # closed even when the read fails
        tree = checkpointer.metadata(path).item_metadata
    if tree is None:  # Orbax's answer when the array metadata or the OCDBT manifest is gone
        raise checkpoint.CheckpointDamagedError("the state's array metadata cannot be read")
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), dict(tree)
    )


def _check_config_json(meta: dict, workdir: pathlib.Path) -> None:
    """Raises CheckpointMismatchError when workdir/config.json names another model than the
    checkpoint (model fields missing from either count as their defaults), and
    InvalidConfigJsonError when config.json is unreadable."""
    on_disk = read_config_json(workdir)
    if on_disk is None:
        return
    saved = meta["config"]
    try:  # only the model is compared: the rest of config.json may change between resumes
        checkpoint.check_compatible(meta, workdir, config={**saved, "model": on_disk["model"]})
    except checkpoint.CheckpointMismatchError:
        raise checkpoint.CheckpointMismatchError(
            f"{workdir}/checkpoints holds model {saved['model'].get('name')!r} "
            f"{saved['model']} but config.json says {on_disk.get('model')}; the workdir mixes "
            f"two runs, retrain into a new --workdir"
        ) from None


def read_config_json(workdir: pathlib.Path) -> dict | None:
    """workdir/config.json as a dict (None if absent); InvalidConfigJsonError if it is not a
    JSON object whose `model` is an object with a `name`."""
    path = workdir / "config.json"
    if not path.exists():
        return None
    fix = "repair it or delete it (every checkpoint stores the run's config too)"
    try:
        on_disk = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidConfigJsonError(f"{path} cannot be read ({e}); {fix}") from None
    except json.JSONDecodeError as e:
        raise InvalidConfigJsonError(
            f"{path} is not valid JSON (line {e.lineno} column {e.colno}: {e.msg}); {fix}"
        ) from None
    model = on_disk.get("model") if isinstance(on_disk, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        what = "a model section" if isinstance(on_disk, dict) else "a JSON object"
        raise InvalidConfigJsonError(f"{path} is not a run config (it lacks {what}); {fix}")
    return on_disk


def _saved_config(saved: dict) -> ml_collections.ConfigDict:
    """The checkpoint's config, its model fields overlaid on the model's current defaults: a
    checkpoint saved before a model field existed loads with that field at its default."""
    model = {**config_lib.model_defaults(saved["model"]["name"]), **saved["model"]}
    return config_lib.from_dict({**saved, "model": model})


def load(workdir: str | pathlib.Path, step: int | str | None = None) -> Run:
    """Loads the run in `workdir` at `step` (int, None/'latest' or 'best') onto the default device.

    The model is rebuilt from the config stored in the checkpoint; only params and batch_stats are
    restored (no optimizer), so it loads on any device count. For the latest step, a damaged
    checkpoint (files truncated or changed since they were written, metadata unreadable, arrays
    not those saved) is skipped with a one-line warning on stderr and the previous intact one is
    loaded; nothing in the workdir is moved or written. One-line errors: RunNotFoundError (no
    workdir or checkpoint), DamagedCheckpointError (the step asked for, or every step, damaged),
    InvalidConfigJsonError, checkpoint.CheckpointMismatchError (another model than config.json).
    """
    workdir = pathlib.Path(workdir)
    chosen, state, meta = _restore(workdir, step)
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
    return Run(
        model=model,
        variables=variables,
        config=config,
        step=chosen,
        workdir=workdir,
        scaling=data_scaling.load(workdir),
    )


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
    read_config_json(workdir)  # an unreadable config.json is the user's to fix, before anything
    with _quiet_orbax():
        mngr = checkpoint.manager(workdir, read_only=True)
        try:
            return _first_intact(mngr, _candidates(mngr, step, workdir), workdir)
        finally:
            mngr.close()


def _first_intact(mngr, steps: list[int], workdir: pathlib.Path) -> tuple[int, dict, dict]:
    """(step, state, meta) of the first of `steps` that is intact, as training checks on resume
    (the step's manifest, readable metadata, the state's CRC-32 recorded at save time); warns
    once on stderr when it skipped damaged ones. Read-only: a damaged step stays where it is."""
    damaged: list[str] = []
    for s in steps:
        try:
            state, meta = _restore_verified(mngr, s, workdir)
        except UserError:
            raise  # another model, format or config.json: the user's mistake, never "damage"
        except Exception as e:
            damaged.append(f"step {s}: {_first_line(e)}")
            continue
        if damaged:
            print(
                f"warning: {workdir}: damaged checkpoint ({'; '.join(damaged)}); loaded step "
                f"{s}, the newest intact one",
                file=sys.stderr,
                flush=True,
            )
        return s, state, meta
    if len(steps) == 1 and len(mngr.all_steps()) > 1:
        saved = ", ".join(map(str, sorted(mngr.all_steps())))
        raise DamagedCheckpointError(
            f"{workdir}: checkpoint {damaged[0]} is damaged; load another step (saved steps: "
            f"{saved}) or the newest intact one with step=None (--step latest)"
        )
    raise DamagedCheckpointError(
        f"{workdir}: every checkpoint is damaged ({'; '.join(damaged)}); retrain with the same "
        f"--workdir: training moves damaged checkpoints to {checkpoint.DAMAGED_DIR}/"
    )


def _restore_verified(mngr, step: int, workdir: pathlib.Path) -> tuple[dict, dict]:
    """(state, meta) of `step` after the checks of `_first_intact`; CheckpointDamagedError or
    Orbax's own exception when it is damaged, a UserError when it belongs to another run."""
    checkpoint.verify_files(mngr, step)
    meta = checkpoint.read_meta(mngr, step)
    checkpoint.check_compatible(meta, workdir)  # the format
    _check_config_json(meta, workdir)
    state, meta = checkpoint.restore(mngr, step, _single_device_target(mngr, step))
    saved = meta.get("state_crc32")
    if saved is not None and checkpoint.state_checksum(state) != saved:
        raise checkpoint.CheckpointDamagedError("its arrays differ from those saved")
    return state, meta


def _first_line(e: BaseException, limit: int = 160) -> str:
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Orbax's notes on every read-only load, which look like failures but are not: a read-only
# manager, and the item metadata that jaxae's checkpoints never write.
_ORBAX_NOISE = (
    "CheckpointManagerOptions.read_only=True",
    "Given directory is read only",
    "Metadata file does not exist",
    "Failed to get item metadata",
)


class _NoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_ORBAX_NOISE)


@contextlib.contextmanager
def _quiet_orbax():
    """Drops _ORBAX_NOISE from the absl log while loading; every other warning still shows."""
    noise = _NoiseFilter()
    logger = logging.getLogger("absl")
    logger.addFilter(noise)
    try:
        yield
    finally:
        logger.removeFilter(noise)


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
