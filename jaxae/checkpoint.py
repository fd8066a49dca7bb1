"""Orbax checkpoints of the train state, with the run's config stored beside each one."""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

FORMAT_VERSION = 1  # bump when the layout of the saved state changes


class CheckpointMismatchError(ValueError):
    """The workdir's checkpoint belongs to another model, config or jaxae version."""


def _eval_loss(metrics: dict[str, float]) -> float:
    return metrics["eval_loss"]


def manager(workdir: str | pathlib.Path, *, keep: int = 3, read_only: bool = False):
    """An Orbax CheckpointManager on `workdir/checkpoints` keeping the latest `keep` and the best.

    "Best" is the lowest `eval_loss` among checkpoints saved with metrics.
    """
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
    """Saves `state` (a pytree) and `meta` (JSON) at `step`, asynchronously."""
    meta = {**meta, "format_version": FORMAT_VERSION, "step": int(step)}
    mngr.save(
        int(step),
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        metrics=None if eval_loss is None else {"eval_loss": float(eval_loss)},
        force=True,
    )


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
