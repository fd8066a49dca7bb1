"""The training loop: `train_and_evaluate(config, workdir)` around pure, jitted train/eval steps."""

from __future__ import annotations

import functools
import json
import math
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import dm_pix
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from jaxae import config as config_lib
from jaxae import data, losses, models, objectives, optim, pretrain, vae
from jaxae.errors import UserError
from jaxae.fast import process as tuning
from jaxae.runtime import checkpoint, distributed, guard, parallel
from jaxae.runtime.metrics import MetricWriter, truncate_after

Metrics = dict[str, jax.Array]


class TrainingDivergedError(UserError, FloatingPointError):
    """A loss term, the gradient or the update became NaN or inf."""


class TrainState(struct.PyTreeNode):
    """Everything that changes during training. The optimizer itself is bound by closure."""

    step: jax.Array  # int32 scalar: number of updates applied
    params: Any
    batch_stats: Any  # BatchNorm running statistics ({} for models without BatchNorm)
    opt_state: Any


def init_state(
    model: nn.Module, tx: optax.GradientTransformation, image_shape: tuple[int, ...], seed: int
) -> TrainState:
    """Initial parameters from `seed` for inputs of `image_shape` (H, W, C)."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
    x = jnp.zeros((1, *image_shape), jnp.float32)
    variables = model.init({"params": key, "dropout": key, "sample": key}, x, train=False)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
    )


def make_train_step(
    objective: objectives.Objective,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    axis_name: str | None = None,
) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """The pure step `train_step(state, batch, rng) -> (state, metrics)`.

    batch: [B, H, W, C] uint8. rng is the run's base key; the step uses fold_in(rng, step), so a
    resumed run draws exactly the keys an uninterrupted one would. With `axis_name` the step runs
    per device (shard_map/pmap, batch [B/n]) and averages gradients, metrics and BatchNorm
    statistics over that axis (parallel.sync); without it, jit's SPMD sharding does the same.
    """

    def train_step(state: TrainState, batch: jax.Array, rng: jax.Array):
        step_rng = parallel.device_rng(jax.random.fold_in(rng, state.step), axis_name)
        x = data.to_float(batch)
        grad_fn = jax.value_and_grad(objective, has_aux=True)
        (loss, (terms, batch_stats, _)), grads = grad_fn(
            state.params, state.batch_stats, x, step_rng, train=True, step=state.step
        )
        grads, batch_stats = parallel.sync((grads, batch_stats), axis_name)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {name: jnp.mean(value) for name, value in terms.items()}
        metrics["loss"] = loss
        metrics = parallel.sync(metrics, axis_name)
        metrics["grad_norm"] = optim.global_norm(grads)
        metrics["update_norm"] = optim.global_norm(updates)
        metrics["learning_rate"] = schedule(state.step)
        if isinstance(opt_state, optax.ApplyIfFiniteState):  # config.skip_nonfinite > 0
            # a rejected update is all zeros (finite); one applied after too many NaNs is not
            skipped = ~opt_state.last_finite & jnp.isfinite(metrics["update_norm"])
            batch_stats = jax.tree.map(
                lambda new, old: jnp.where(skipped, old, new), batch_stats, state.batch_stats
            )
            metrics["update_skipped"] = skipped.astype(jnp.float32)
            metrics["skipped_updates"] = opt_state.total_notfinite.astype(jnp.float32)
        new_state = state.replace(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
        )
        return new_state, metrics

    return train_step


def make_eval_step(
    objective: objectives.Objective, image_shape: tuple[int, int, int]
) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array], Metrics]:
    """`eval_step(state, batch, mask, rng) -> sums`: masked sums of every per-example metric."""
    filter_size = min(11, image_shape[0], image_shape[1])

    def eval_step(state: TrainState, batch: jax.Array, mask: jax.Array, rng: jax.Array):
        x = data.to_float(batch)
        _, (terms, _, logits) = objective(state.params, state.batch_stats, x, rng, train=False)
        recon = jax.nn.sigmoid(logits)
        terms = dict(terms)
        terms["psnr"] = losses.psnr(recon, x)
        terms["ssim"] = dm_pix.ssim(recon, x, filter_size=filter_size)
        sums = {name: jnp.sum(value * mask) for name, value in terms.items()}
        sums["count"] = jnp.sum(mask)
        return sums

    return eval_step


def data_key(seed: int) -> jax.Array:
    """The key of the data order; epoch e uses parallel.epoch_permutation(data_key, e, N)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), 3)


_host_permutation = jax.jit(parallel.epoch_permutation, static_argnums=2)


def host_batches(
    images: np.ndarray, batch_size: int, seed: int, start_step: int
) -> Iterator[np.ndarray]:
    """Batches [B, H, W, C] for steps start_step, start_step + 1, ... (drop the remainder).

    The same batches, in the same order, as the on-device epoch (`parallel.make_scan_dispatch`).
    """
    steps_per_epoch = len(images) // batch_size
    step = start_step
    perm, perm_epoch = None, -1
    while True:
        epoch, i = divmod(step, steps_per_epoch)
        if epoch != perm_epoch:
            perm = np.asarray(_host_permutation(data_key(seed), epoch, len(images)))
            perm_epoch = epoch
        yield images[np.sort(perm[i * batch_size : (i + 1) * batch_size])]
        step += 1


def prefetch(iterator: Iterator[np.ndarray], sharding, size: int = 2) -> Iterator[jax.Array]:
    """Keeps `size` batches in flight to the device(s) while the current step runs.

    Each process transfers only its own slice of every batch (distributed.to_global).
    """
    queue = []
    for batch in iterator:
        queue.append(distributed.to_global(batch, sharding))
        if len(queue) > size:
            yield queue.pop(0)


def evaluate(
    eval_step, state: TrainState, images: np.ndarray, batch_size: int, rng, sharding
) -> dict[str, float]:
    """Mean of every eval metric over `images`; the last batch is padded and masked."""
    totals: dict[str, float] = {}
    n = len(images)
    batch_size = min(batch_size, n)
    n_dev = sharding.mesh.size
    batch_size = max(n_dev, batch_size // n_dev * n_dev)
    for start in range(0, n, batch_size):
        batch = images[start : start + batch_size]
        mask = np.ones(batch_size, np.float32)
        if len(batch) < batch_size:  # pad to one shape: no recompilation for the last batch
            mask[len(batch) :] = 0
            pad = np.zeros((batch_size - len(batch), *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch, pad])
        sums = eval_step(
            state,
            distributed.to_global(batch, sharding),
            distributed.to_global(mask, sharding),
            jax.random.fold_in(rng, start),
        )
        for name, value in jax.device_get(sums).items():
            totals[name] = totals.get(name, 0.0) + float(value)
    count = totals.pop("count")
    return {name: value / count for name, value in totals.items()}


def _first_bad(metrics: dict[str, float]) -> str | None:
    if metrics.get("update_skipped"):  # skip_nonfinite rejected this update: nothing went bad
        return None
    order = [k for k in metrics if k not in ("loss", "grad_norm", "update_norm")]
    for name in [*order, "loss", "grad_norm", "update_norm"]:
        if name in metrics and not math.isfinite(metrics[name]):
            return name
    return None


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Trains `config` in `workdir`, resuming from its latest intact checkpoint; returns a summary.

    Writes workdir/{config.json, metrics.jsonl, checkpoints/, events.out.tfevents.*,
    summary.json}. Raises ConfigError, DatasetNotFoundError, CheckpointMismatchError or
    TrainingDivergedError with one-line messages before anything is overwritten. Holds
    workdir/lock while it runs (WorkdirLockedError for a second process); SIGTERM/SIGINT save
    a checkpoint after the current step and raise guard.Interrupted.
    """
    config_lib.validate(config)
    workdir = pathlib.Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise config_lib.ConfigError(f"--workdir {workdir} is a file; give a directory path")
    if jax.process_index() != 0:  # one lock per run: the chief's
        return _train_and_evaluate(config, workdir, guard.StopRequest())
    with guard.workdir_lock(workdir), guard.stop_on_signals() as stop:
        return _train_and_evaluate(config, workdir, stop)


def _train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: pathlib.Path, stop: guard.StopRequest
) -> dict:
    model_fields = dict(config.model)
    model_name = model_fields.pop("name")
    has_bn_axis = "bn_axis_name" in models.model_fields(models.MODELS[model_name])
    if config.parallel == "pmap" and has_bn_axis:
        model_fields["bn_axis_name"] = parallel.AXIS  # BatchNorm statistics over all devices
    model = models.create_model(model_name, **model_fields)
    image_shape = tuple(model_fields.get("image_shape", (28, 28, 1)))
    try:
        ds = data.load_for_config(config)
    except ValueError as e:  # e.g. exclude_class out of range; ImageShapeError is already clear
        if isinstance(e, data.ImageShapeError):
            raise
        raise config_lib.ConfigError(f"dataset settings: {str(e).splitlines()[0]}") from None
    steps_per_epoch = len(ds.train_images) // config.batch_size
    if steps_per_epoch == 0:
        raise config_lib.ConfigError(
            f"batch_size {config.batch_size} is larger than the {len(ds.train_images)} training "
            f"examples; lower --config.batch_size"
        )
    total_steps = config.num_steps or config.num_epochs * steps_per_epoch
    eval_every = config.eval_every or steps_per_epoch
    checkpoint_every = config.checkpoint_every or eval_every

    mesh = parallel.make_mesh()
    if config.batch_size % mesh.size:
        raise config_lib.ConfigError(
            f"batch_size {config.batch_size} does not split over {mesh.size} devices; "
            f"use a multiple of {mesh.size}"
        )
    replicated = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P(parallel.AXIS))

    tx, schedule = optim.make_optimizer(config, total_steps)
    objective = objectives.make_objective(config, model)
    init = functools.partial(init_state, model, tx, image_shape, config.seed)
    abstract_state = jax.eval_shape(init)
    abstract_state = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated), abstract_state
    )
    num_params = models.count_params(abstract_state.params)
    config_dict = json.loads(config_lib.to_json(config))
    meta = checkpoint.run_meta(config_dict, num_params, checkpoint.state_layout(abstract_state))

    def check_meta(saved: dict) -> None:
        checkpoint.check_compatible(saved, workdir, config=config_dict, layout=meta["state_layout"])

    mngr = checkpoint.manager(workdir, keep=config.keep_checkpoints)
    found = checkpoint.restore_latest_good(mngr, abstract_state, check_meta)
    if found is not None:
        start_step, state, _ = found
        print(f"Resuming {workdir} from step {start_step}.", flush=True)
    else:
        state = jax.jit(init, out_shardings=replicated)()
        start_step = 0

    # Greedy layer-wise pretraining; saved as step 0, so it reruns only without a checkpoint.
    pretraining = mngr.latest_step() is None and config.pretrain.steps_per_layer > 0
    is_chief = distributed.is_chief()
    if is_chief:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(config_lib.to_json(config) + "\n")
        truncate_after(workdir / "metrics.jsonl", -1 if pretraining else start_step)
    writer = MetricWriter(workdir, enabled=is_chief)
    if pretraining:
        state = pretrain.pretrain_state(config, model, state, tx, ds.train_images, writer)
        checkpoint.save(mngr, 0, state, meta)

    base_rng = jax.random.PRNGKey(config.seed)
    train_rng = distributed.to_global(jax.random.fold_in(base_rng, 1), replicated)
    eval_rng = jax.random.fold_in(base_rng, 2)
    if config.parallel == "pmap":
        step_fn = make_train_step(objective, tx, schedule, axis_name=parallel.AXIS)
        step_fn = parallel.shard_step(step_fn, mesh)
    else:
        step_fn = make_train_step(objective, tx, schedule)
    train_step = parallel.compile_step(step_fn, mesh)
    eval_step = jax.jit(
        make_eval_step(objective, image_shape), compiler_options=tuning.step_compiler_options()
    )
    on_device = parallel.use_scan_epoch(config.scan_epoch, state.params, ds.train_images.nbytes)
    if on_device:  # the training set goes to the device(s) once; batches are gathered there
        dispatch = parallel.make_scan_dispatch(
            step_fn, mesh, data_key(config.seed), config.batch_size, steps_per_epoch
        )
        device_images = distributed.to_global(ds.train_images, replicated)
    if is_chief:
        print(
            f"Training on {mesh.size} device(s) in {jax.process_count()} process(es), "
            f"{config.parallel}: global batch {config.batch_size}, per-device batch "
            f"{config.batch_size // mesh.size}; data "
            + ("on device, lax.scan epochs" if on_device else "from the host with prefetch"),
            flush=True,
        )

    def run_eval(step: int) -> dict[str, float]:
        result = evaluate(
            eval_step, state, ds.test_images, config.eval_batch_size, eval_rng, batch_sharding
        )
        writer.write(step, "eval", result)
        bad = _first_bad(result)
        if bad is not None:  # finite updates can still give a model that outputs NaN: not saved
            raise TrainingDivergedError(_diverged(f"eval {bad}", result[bad], step, last_saved))
        return result

    def _diverged(term: str, value: float, step: int, good: int) -> str:
        kept = f"step {good} in {workdir / 'checkpoints'}" if good else "none written yet"
        return (
            f"{term} became {value} at step {step}; last good checkpoint: {kept}; lower "
            f"--config.learning_rate, set --config.grad_clip, or skip non-finite updates with "
            f"--config.skip_nonfinite=N"
        )

    def save(step: int, eval_loss: float | None) -> None:
        checkpoint.save(mngr, step, state, meta, eval_loss=eval_loss)

    if not on_device:
        batches = prefetch(
            host_batches(ds.train_images, config.batch_size, config.seed, start_step),
            batch_sharding,
        )

    def dispatch_end(step: int) -> int:
        """The last step of the dispatch after `step`: one step, or a scan that stops at the
        next epoch end, evaluation, checkpoint or `steps_per_dispatch`, whichever comes first."""
        if not on_device:
            return step + 1
        end = step + (config.steps_per_dispatch or steps_per_epoch)
        for every in (steps_per_epoch, eval_every, checkpoint_every):
            end = min(end, (step // every + 1) * every)
        return min(end, total_steps)

    bar = tqdm(
        total=total_steps,
        initial=start_step,
        disable=None if config.progress and is_chief else True,
        dynamic_ncols=True,
    )
    # metrics of the last dispatch (steps first..last), fetched one dispatch late
    pending: tuple[int, int, Metrics] | None = None
    window: list[dict[str, float]] = []
    # training time: from the return of each dispatch (compilation done) until its metrics
    # arrive, i.e. its execution; evaluation and checkpointing are not counted
    train_time, train_images, timer, timed_images = 0.0, 0, None, 0
    last_eval: dict[str, float] | None = None
    last_saved = start_step

    def clock_stop() -> None:
        """Count the dispatch timed since `timer` as done (its metrics were just drained)."""
        nonlocal train_time, train_images, timer
        if timer is not None:
            train_time += time.perf_counter() - timer
            train_images += timed_images
            timer = None

    def drain() -> None:
        """Fetch the pending step's metrics; stop on NaN/inf; log every `log_every` steps."""
        nonlocal pending, window
        if pending is None:
            return
        first, last, device_metrics = pending
        pending = None
        # one value per step: scalars from a single step, [n] from a scan of n steps
        arrays = {k: np.atleast_1d(v) for k, v in jax.device_get(device_metrics).items()}
        for row, step in enumerate(range(first, last + 1)):
            values = {k: float(a[row]) for k, a in arrays.items()}
            bad = _first_bad(values)
            if bad is not None:
                raise TrainingDivergedError(_diverged(bad, values[bad], step, last_saved))
            if not values.pop("update_skipped", 0.0):  # skipped steps have NaN terms: not averaged
                window.append(values)
                bar.set_postfix(loss=f"{values['loss']:.4g}", refresh=False)
            if step % config.log_every == 0 or step == total_steps:
                mean = (
                    {k: float(np.mean([w[k] for w in window])) for k in window[0]} if window else {}
                )
                if "skipped_updates" in values:  # running total, kept in the optimizer state
                    mean["skipped_updates"] = values["skipped_updates"]
                if train_time > 0:
                    mean["images_per_second"] = train_images / train_time
                writer.write(step, "train", mean)
                window = []

    try:
        step = start_step
        while step < total_steps:
            first, step = step + 1, dispatch_end(step)
            if on_device:
                state, device_metrics = dispatch(state, device_images, train_rng, step - first + 1)
            else:
                state, device_metrics = train_step(state, next(batches), train_rng)
            drain()  # the previous dispatch's metrics, while this one runs
            clock_stop()
            pending = (first, step, device_metrics)
            timer, timed_images = time.perf_counter(), config.batch_size * (step - first + 1)
            if train_time > 0:
                bar.set_postfix(img_s=f"{train_images / train_time:.0f}", refresh=False)
            bar.update(step - first + 1)
            checkpoint.seal_if_idle(mngr)
            is_eval = step % eval_every == 0 or step == total_steps
            is_ckpt = step % checkpoint_every == 0 or step == total_steps
            if is_eval or is_ckpt:
                drain()
                clock_stop()
            if is_eval:
                last_eval = run_eval(step)
            if is_ckpt:
                save(step, last_eval["loss"] if is_eval else None)
                last_saved = step
            if stop.requested:  # SIGTERM/SIGINT: this step is done; save it and stop
                if last_saved != step:
                    drain()
                    save(step, None)
                    last_saved = step
                raise guard.Interrupted(guard.stopped_message(stop, step, workdir), stop.signum)
        drain()
        clock_stop()
    finally:
        bar.close()
        checkpoint.finish(mngr)
        writer.close()

    if last_eval is None:  # nothing left to train: evaluate what the checkpoint holds
        last_eval = evaluate(
            eval_step, state, ds.test_images, config.eval_batch_size, eval_rng, batch_sharding
        )
    images_per_second = train_images / train_time if train_time > 0 else None
    summary_path = workdir / "summary.json"
    if images_per_second is None and summary_path.exists():
        images_per_second = json.loads(summary_path.read_text()).get("images_per_second")
    if models.is_vae(model) and config.vae.nll_examples:
        last_eval["nll"] = vae.nll_of_images(
            model,
            {"params": state.params},
            ds.test_images[: config.vae.nll_examples],
            jax.random.fold_in(base_rng, 3),
            num_samples=config.vae.nll_samples,
            binarization=config.vae.binarize,
            likelihood=config.vae.likelihood,
            sigma=config.vae.gaussian_sigma,
        )
    summary = {
        **last_eval,
        "params": num_params,
        "steps": int(state.step),
        "images_per_second": images_per_second,
        "model": config.model.name,
        "dataset": config.dataset.name,
        "devices": mesh.size,
    }
    if is_chief:
        tmp = summary_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(summary_path)
    mngr.close()
    return summary
