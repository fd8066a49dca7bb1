"""Orbax checkpoints of the train state, with the run's config stored beside each one."""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import zlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from jaxae.errors import UserError
from jaxae.runtime.logs import silence_orbax_noise

FORMAT_VERSION = 1  # bump when the layout of the saved state changes


MANIFEST = "jaxae_manifest.json"  # per step: size and CRC-32 of every file, written after commit
DAMAGED_DIR = "damaged_checkpoints"  # damaged steps are moved here, never deleted


class CheckpointMismatchError(UserError, ValueError):
    """The workdir's checkpoint belongs to another model, config or jaxae version."""


class CheckpointDamagedError(ValueError):
    """A saved step is truncated, emptied, half-written or altered (not a user error by itself)."""


class CheckpointWriteError(UserError, OSError):
    """Writing a checkpoint failed (e.g. a full disk); earlier checkpoints are untouched."""


def run_meta(config: dict, num_params: int, layout: dict[str, str]) -> dict:
    """What every step stores beside the state: the config (JSON-ready dict), the model name,
    the parameter count, the checkpoint format and the state layout (`state_layout`)."""
    return {
        "config": config,
        "model": config["model"]["name"],
        "params": num_params,
        "jaxae_format": FORMAT_VERSION,
        "state_layout": layout,
    }


def state_layout(abstract_state: Any) -> dict[str, str]:
    """{path: 'dtype[shape]'} of every leaf: what a checkpoint must hold to restore into it."""
    leaves = jax.tree_util.tree_flatten_with_path(abstract_state)[0]
    return {jax.tree_util.keystr(k): f"{a.dtype}{list(a.shape)}" for k, a in leaves}


def check_compatible(
    saved: dict,
    workdir: str | pathlib.Path,
    *,
    config: dict | None = None,
    layout: dict[str, str] | None = None,
) -> None:
    """Raises CheckpointMismatchError (one line) unless the step's `saved` meta can be used here.

    Always: the checkpoint format. With `config` (a JSON-ready dict): the same model and data;
    model and dataset fields missing from an older checkpoint count as their defaults. With `layout`
    (`state_layout` of the state to restore into): the same leaves, dtypes and shapes.
    Shared by training (resume) and `jaxae.load` (analysis).
    """
    from jaxae import config as config_lib

    if saved.get("jaxae_format") != FORMAT_VERSION:
        raise CheckpointMismatchError(
            f"{workdir} holds a checkpoint in format {saved.get('jaxae_format')!r} but this jaxae "
            f"reads format {FORMAT_VERSION}; use a new --workdir"
        )
    if config is not None:
        for section in ("model", "dataset"):
            then, now = saved["config"].get(section, {}), config.get(section, {})
            if section == "model" and then.get("name") == now.get("name"):
                then = {**config_lib.model_defaults(then["name"]), **then}
                now = {**config_lib.model_defaults(now["name"]), **now}
            if section == "dataset":  # fields added since (validation_fraction) at defaults
                defaults = config_lib.default_config().dataset.to_dict()
                then, now = {**defaults, **then}, {**defaults, **now}
            if json.dumps(then, sort_keys=True) != json.dumps(now, sort_keys=True):
                raise CheckpointMismatchError(
                    f"{workdir} holds a run with {section} {saved['config'].get(section)} but "
                    f"the config asks for {config.get(section)}; use a new --workdir or the "
                    f"saved config"
                )
    saved_layout = saved.get("state_layout")
    if layout is not None and saved_layout and saved_layout != layout:
        diff = sorted(set(layout.items()) ^ set(saved_layout.items()))[0][0]
        raise CheckpointMismatchError(
            f"{workdir} holds a train state that differs at {diff} (optimizer, grad_clip or "
            f"skip_nonfinite changed?); use a new --workdir or the saved config"
        )


def state_checksum(state: Any) -> int | None:
    """CRC-32 over every leaf's path, dtype, shape and bytes; None if not fully addressable.

    Paths are written as 'params/enc/kernel' and sorted, so a TrainState and the nested dict
    Orbax restores without a target give the same checksum.
    """
    leaves = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return None
        leaves[jax.tree_util.keystr(path, simple=True, separator="/")] = leaf
    crc = 0
    for name in sorted(leaves):
        array = np.ascontiguousarray(jax.device_get(leaves[name]))
        crc = zlib.crc32(f"{name}:{array.dtype}:{array.shape};".encode(), crc)
        crc = zlib.crc32(array.tobytes(), crc)
    return crc


def _file_crc(path: pathlib.Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def _step_dir(mngr: ocp.CheckpointManager, step: int) -> pathlib.Path:
    return pathlib.Path(mngr.directory) / str(int(step))


def seal(mngr: ocp.CheckpointManager) -> None:
    """Writes the manifest of every committed step that has none (call when no save is running).

    The manifest lets `verify_files` catch any later truncation, emptying or change of a file.
    Only process 0 writes it: every process sees the same (shared) checkpoint directory.
    """
    if jax.process_index() != 0:
        return
    for step in mngr.all_steps():
        directory = _step_dir(mngr, step)
        if not directory.is_dir() or (directory / MANIFEST).exists():
            continue
        files = {
            str(p.relative_to(directory)): [p.stat().st_size, _file_crc(p)]
            for p in sorted(directory.rglob("*"))
            if p.is_file()
        }
        tmp = directory / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(files))
        tmp.replace(directory / MANIFEST)


def seal_if_idle(mngr: ocp.CheckpointManager) -> None:
    """Seals finished steps as soon as no save runs, so few are ever left without a manifest."""
    if not mngr.is_saving_in_progress():
        seal(mngr)


def verify_files(mngr: ocp.CheckpointManager, step: int) -> bool:
    """Checks `step` against its manifest; raises CheckpointDamagedError. False if unsealed."""
    directory = _step_dir(mngr, step)
    manifest = directory / MANIFEST
    if not manifest.exists():
        return False
    try:
        files = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointDamagedError(f"its manifest is unreadable ({e})") from None
    for name, (size, crc) in files.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointDamagedError(f"{name} is missing")
        if path.stat().st_size != size:
            raise CheckpointDamagedError(f"{name} has {path.stat().st_size} bytes, not {size}")
        if _file_crc(path) != crc:
            raise CheckpointDamagedError(f"{name} has changed since it was written")
    return True


def _eval_loss(metrics: dict[str, float]) -> float:
    return metrics["eval_loss"]


def manager(workdir: str | pathlib.Path, *, keep: int = 3, read_only: bool = False):
    """An Orbax CheckpointManager on `workdir/checkpoints` keeping the latest `keep` and the best.

    "Best" is the lowest `eval_loss` among checkpoints saved with metrics.
    """
    silence_orbax_noise()
    directory = pathlib.Path(workdir).absolute() / "checkpoints"
    keep_policy = policies.AnyPreservationPolicy(
        [
            policies.LatestN(n=keep),
            policies.BestN(
                get_metric_fn=_eval_loss, reverse=True, n=1, keep_checkpoints_without_metrics=False
            ),
        ]
    )
    options = ocp.CheckpointManagerOptions(
        preservation_policy=None if read_only else keep_policy,
        best_fn=_eval_loss,
        best_mode="min",
        read_only=read_only,
        create=not read_only,
    )
    return ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))


def save(
    mngr: ocp.CheckpointManager,
    step: int,
    state: Any,
    meta: dict,
    *,
    eval_loss: float | None = None,
) -> None:
    """Saves `state` (a pytree) and `meta` (JSON) at `step`, asynchronously.

    Waits for the previous save (as Orbax would), seals it with a manifest, then starts this one.
    A full disk (here or in the previous, asynchronous save) raises CheckpointWriteError.
    """
    meta = {
        **meta,
        "step": int(step),
        "state_crc32": state_checksum(state),
    }
    try:
        mngr.wait_until_finished()
        seal(mngr)
        mngr.save(
            int(step),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            metrics=None if eval_loss is None else {"eval_loss": float(eval_loss)},
            force=True,
        )
    except Exception as e:
        raise_if_disk_full(e, mngr)
        raise


def finish(mngr: ocp.CheckpointManager) -> None:
    """Waits for the running save and seals it; a full disk raises CheckpointWriteError."""
    try:
        mngr.wait_until_finished()
        seal(mngr)
    except Exception as e:
        raise_if_disk_full(e, mngr)
        raise


def raise_if_disk_full(exc: BaseException, mngr: ocp.CheckpointManager) -> None:
    """Re-raises a full-disk failure behind `exc` as one clear CheckpointWriteError line.

    The failed step's half-written directory is removed (it would only hold the space the
    rerun needs); the sealed steps before it are untouched.
    """
    from jaxae.runtime import guard

    if guard.disk_full(exc) is None:
        return
    directory = pathlib.Path(mngr.directory)
    if jax.process_index() == 0:
        for partial in directory.glob("*.orbax-checkpoint-tmp*"):
            shutil.rmtree(partial, ignore_errors=True)
    good = [s for s in mngr.all_steps() if (_step_dir(mngr, s) / MANIFEST).exists()]
    kept = f"checkpoints up to step {max(good)} are intact" if good else "no checkpoint was lost"
    message = guard.disk_full_message(directory.parent, "a checkpoint", kept)
    raise CheckpointWriteError(message) from exc


def read_meta(mngr: ocp.CheckpointManager, step: int) -> dict:
    """The JSON metadata (config, model name, parameter count) stored with `step`."""
    restored = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return dict(restored["meta"])


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state: Any = None) -> tuple[Any, dict]:
    """Restores (state, meta) at `step` onto the shardings of `abstract_state`.

    With `abstract_state=None` the state comes back as saved, a plain nested dict of arrays, on
    this process's first device — whatever number of devices saved it.
    """
    if abstract_state is None:
        abstract_state = _on_one_device(mngr, step)
    restored = mngr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
        ),
    )
    return restored["state"], dict(restored["meta"])


def _on_one_device(mngr: ocp.CheckpointManager, step: int) -> Any:
    """The saved state's shapes and dtypes, placed on one local device (the saving mesh may be
    gone: a checkpoint written on 4 devices restores on 1)."""
    item = ocp.StandardCheckpointer().metadata(mngr.directory / str(step) / "state")
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
        item.item_metadata,
    )


def _quarantine(mngr: ocp.CheckpointManager, step: int) -> pathlib.Path:
    """Moves a damaged step out of Orbax's sight, into workdir/damaged_checkpoints/ (kept)."""
    target_root = pathlib.Path(mngr.directory).parent / DAMAGED_DIR
    target_root.mkdir(exist_ok=True)
    target, n = target_root / str(step), 1
    while target.exists():
        target, n = target_root / f"{step}.{n}", n + 1
    shutil.move(str(_step_dir(mngr, step)), str(target))
    return target


def restore_latest_good(
    mngr: ocp.CheckpointManager,
    abstract_state: Any,
    check_meta: Callable[[dict], None] = lambda meta: None,
) -> tuple[int, Any, dict] | None:
    """(step, state, meta) of the newest step that is intact, or None when there is none.

    Each candidate, newest first, must match its manifest, have readable metadata (passed to
    `check_meta`, which raises for a checkpoint of another run) and restore to a state whose
    CRC-32 equals the one recorded at save time. A damaged step is moved to
    workdir/damaged_checkpoints/ with a warning on stderr and the previous one is tried.
    """
    for step in sorted(mngr.all_steps(), reverse=True):
        try:
            verify_files(mngr, step)
            meta = read_meta(mngr, step)
        except Exception as e:
            reason = e
        else:
            check_meta(meta)  # another model or version: the user's mistake, never "damage"
            try:
                state, meta = restore(mngr, step, abstract_state)
                saved = meta.get("state_crc32")
                if saved is not None and state_checksum(state) != saved:
                    raise CheckpointDamagedError("its arrays differ from those saved")
                return step, state, meta
            except Exception as e:
                reason = e
        moved = _quarantine(mngr, step)
        mngr.reload()
        print(
            f"warning: checkpoint step {step} is damaged ({str(reason).splitlines()[0][:200]}); "
            f"moved it to {moved} and trying the previous one",
            file=sys.stderr,
            flush=True,
        )
    return None
