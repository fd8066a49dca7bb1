"""The training loop: `train_and_evaluate(config, workdir)` around the pure steps of steps.py."""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from jaxae import config as config_lib
from jaxae import data, fast, models, objectives, optim, pretrain, steps, vae
from jaxae.rng import run_key
from jaxae.runtime import batching, checkpoint, distributed, feeding, guard, parallel
from jaxae.runtime.metrics import MetricWriter, truncate_after
from jaxae.runtime.periodic import TrainingDivergedError, TrainLog, diverged_message, first_bad
from jaxae.runtime.periodic import itstime as _itstime
from jaxae.steps import init_state, make_train_step  # noqa: F401  (public: used by tests)

__all__ = ["TrainingDivergedError", "init_state", "make_train_step", "train_and_evaluate"]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Trains `config` in `workdir`, resuming from its latest intact checkpoint; returns a summary.

    Writes workdir/{config.json, metrics.jsonl, checkpoints/, events.out.tfevents.*,
    summary.json}. User errors (a bad config, missing data, a checkpoint of another run, NaN/inf)
    raise a `jaxae.errors.UserError` with one line before anything is overwritten. Holds
    workdir/lock while it runs (WorkdirLockedError for a second process); SIGTERM/SIGINT save
    a checkpoint after the current step and raise guard.Interrupted.
    """
    config_lib.validate(config)
    workdir = pathlib.Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise config_lib.ConfigError(f"--workdir {workdir} is a file; give a directory path")
    if jax.process_index() != 0:  # one lock per run: the chief's
        return _train(config, workdir, guard.StopRequest())
    with guard.workdir_lock(workdir), guard.stop_on_signals() as stop:
        return _train(config, workdir, stop)


def _train(config: ml_collections.ConfigDict, workdir: pathlib.Path, stop: guard.StopRequest):
    job = Job.build(config, workdir)
    mngr = checkpoint.manager(workdir, keep=config.keep_checkpoints)
    state, start_step = job.restore_or_init(mngr)
    pretraining = mngr.latest_step() is None and config.pretrain.steps_per_layer > 0
    if job.is_chief:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(config_lib.to_json(config) + "\n")
        truncate_after(workdir / "metrics.jsonl", -1 if pretraining else start_step)
    writer = MetricWriter(workdir, enabled=job.is_chief)
    if pretraining:  # greedy layer-wise; saved as step 0, so it reruns only without a checkpoint
        state = pretrain.pretrain_state(
            config, job.model, state, job.tx, job.ds.train_images, writer
        )
        checkpoint.save(mngr, 0, state, job.meta)
    feeder = job.feeder(start_step)
    job.announce(feeder)
    bar = tqdm(
        total=job.total_steps,
        initial=start_step,
        disable=None if config.progress and job.is_chief else True,
        dynamic_ncols=True,
    )
    log = TrainLog(
        writer,
        log_every=config.log_every,
        total_steps=job.total_steps,
        batch_size=config.batch_size,
        bar=bar,
    )
    log.last_saved, log.checkpoints = start_step, workdir / "checkpoints"
    last_eval = None
    try:
        step = start_step
        while step < job.total_steps:
            first, step = step + 1, feeder.end(step, job.total_steps)
            state, metrics = feeder(state, first, step, job.train_rng)
            log.push(first, step, metrics)
            checkpoint.seal_if_idle(mngr)
            is_eval = _itstime(step, job.eval_every, job.total_steps)
            is_ckpt = _itstime(step, job.checkpoint_every, job.total_steps)
            if is_eval or is_ckpt or stop.requested:
                log.flush()
            if is_eval:
                last_eval = job.evaluate(state, step, log.last_saved)
                writer.write(step, "eval", last_eval)
            if is_ckpt or (stop.requested and log.last_saved != step):
                eval_loss = last_eval["loss"] if is_eval else None
                checkpoint.save(mngr, step, state, job.meta, eval_loss=eval_loss)
                log.last_saved = step
            if stop.requested:  # SIGTERM/SIGINT: this step is done and saved; stop
                raise guard.Interrupted(guard.stopped_message(stop, step, workdir), stop.signum)
        log.flush()
    finally:
        bar.close()
        checkpoint.finish(mngr)
        writer.close()
    summary = job.summary(state, last_eval, log.images_per_second)
    mngr.close()
    return summary


@dataclasses.dataclass
class Job:
    """The pieces of one run built from its config: model, data, mesh, optimizer and steps."""

    config: ml_collections.ConfigDict
    workdir: pathlib.Path
    model: nn.Module
    ds: data.Dataset
    mesh: Mesh
    fast: bool
    fast_reason: str
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    objective: objectives.Objective
    abstract_state: Any
    meta: dict
    total_steps: int
    eval_every: int
    checkpoint_every: int

    @classmethod
    def build(cls, config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Job:
        use_fast, fast_reason = fast.resolve(config.fast_ops)
        notes = fast.process.for_training(use_fast)
        if notes and jax.process_index() == 0:
            print("; ".join(notes), flush=True)
        model = _build_model(config, use_fast)
        ds = _load_data(config)
        steps_per_epoch = len(ds.train_images) // config.batch_size
        if steps_per_epoch == 0:
            raise config_lib.ConfigError(
                f"batch_size {config.batch_size} is larger than the {len(ds.train_images)} "
                f"training examples; lower --config.batch_size"
            )
        mesh = parallel.make_mesh()
        if config.batch_size % mesh.size:
            raise config_lib.ConfigError(
                f"batch_size {config.batch_size} does not split over {mesh.size} devices; "
                f"use a multiple of {mesh.size}"
            )
        total_steps = config.num_steps or config.num_epochs * steps_per_epoch
        tx, schedule = optim.make_optimizer(config, total_steps, fast=use_fast)
        init = functools.partial(init_state, model, tx, ds.image_shape, config.seed)
        replicated = NamedSharding(mesh, P())
        abstract_state = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
            jax.eval_shape(init),
        )
        config_dict = json.loads(config_lib.to_json(config))
        num_params = models.count_params(abstract_state.params)
        layout = checkpoint.state_layout(abstract_state)
        eval_every = config.eval_every or steps_per_epoch
        return cls(
            config=config,
            workdir=workdir,
            model=model,
            ds=ds,
            mesh=mesh,
            fast=use_fast,
            fast_reason=fast_reason,
            tx=tx,
            schedule=schedule,
            objective=objectives.make_objective(config, model),
            abstract_state=abstract_state,
            meta=checkpoint.run_meta(config_dict, num_params, layout),
            total_steps=total_steps,
            eval_every=eval_every,
            checkpoint_every=config.checkpoint_every or eval_every,
        )

    @property
    def is_chief(self) -> bool:
        return distributed.is_chief()

    @functools.cached_property
    def train_rng(self) -> jax.Array:
        return distributed.to_global(run_key(self.config.seed, "train"), self._replicated)

    @property
    def _replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def restore_or_init(self, mngr) -> tuple[steps.TrainState, int]:
        """The newest intact checkpoint of this run (checked against it), else a fresh state."""

        def check(saved: dict) -> None:
            checkpoint.check_compatible(
                saved, self.workdir, config=self.meta["config"], layout=self.meta["state_layout"]
            )

        found = checkpoint.restore_latest_good(mngr, self.abstract_state, check)
        if found is not None:
            start_step, state, _ = found
            print(f"Resuming {self.workdir} from step {start_step}.", flush=True)
            return state, start_step
        init = functools.partial(
            init_state, self.model, self.tx, self.ds.image_shape, self.config.seed
        )
        return jax.jit(init, out_shardings=self._replicated)(), 0

    def feeder(self, start_step: int) -> feeding.Feeder:
        config, axis = self.config, parallel.AXIS if self.config.parallel == "pmap" else None
        norm = functools.partial(optim.global_norm, fast=self.fast)
        step_fn = make_train_step(self.objective, self.tx, self.schedule, axis, norm=norm)
        if axis:
            step_fn = parallel.shard_step(step_fn, self.mesh)
        images = self.ds.train_images
        return feeding.Feeder(
            step_fn,
            self.mesh,
            images,
            batch_size=config.batch_size,
            data_key=run_key(config.seed, "data"),
            start_step=start_step,
            on_device=parallel.use_scan_epoch(
                config.scan_epoch, self.abstract_state.params, images.nbytes
            ),
            max_steps=config.steps_per_dispatch,
            boundaries=(self.eval_every, self.checkpoint_every),
            fast=self.fast,
        )

    def announce(self, feeder: feeding.Feeder) -> None:
        if not self.is_chief:
            return
        config, mesh = self.config, self.mesh
        print(
            f"Training on {mesh.size} device(s) in {jax.process_count()} process(es), "
            f"{config.parallel}: global batch {config.batch_size}, per-device batch "
            f"{config.batch_size // mesh.size}; data "
            + ("on device, lax.scan epochs" if feeder.on_device else "from the host with prefetch")
            + f"; {self.fast_reason}",
            flush=True,
        )

    @functools.cached_property
    def _eval_step(self):
        options = fast.process.step_compiler_options(self.fast)
        return jax.jit(steps.make_eval_step(self.objective, self.model), compiler_options=options)

    def evaluate(self, state: steps.TrainState, step: int | None = None, good: int = 0) -> dict:
        """Mean of every eval metric over the test images; NaN/inf stops before it is saved."""
        result = batching.mean_over_batches(
            functools.partial(self._eval_step, state),
            self.ds.test_images,
            self.config.eval_batch_size,
            run_key(self.config.seed, "eval"),
            put=functools.partial(
                distributed.to_global, sharding=NamedSharding(self.mesh, P(parallel.AXIS))
            ),
            multiple=self.mesh.size,
        )
        bad = first_bad(result)
        if bad is not None:  # finite updates can still give a model that outputs NaN
            checkpoints = self.workdir / "checkpoints"
            message = diverged_message(f"eval {bad}", result[bad], step, good, checkpoints)
            raise TrainingDivergedError(message)
        return result

    def summary(self, state: steps.TrainState, last_eval: dict | None, img_s: float | None):
        """Final test metrics (evaluated now if nothing was left to train), written atomically."""
        config, path = self.config, self.workdir / "summary.json"
        result = dict(last_eval) if last_eval is not None else self.evaluate(state)
        if img_s is None and path.exists():  # a rerun of a finished run keeps its measured rate
            img_s = json.loads(path.read_text()).get("images_per_second")
        if models.is_vae(self.model) and config.vae.nll_examples:
            result["nll"] = vae.nll_of_images(
                self.model,
                {"params": state.params},
                self.ds.test_images[: config.vae.nll_examples],
                run_key(config.seed, "nll"),
                num_samples=config.vae.nll_samples,
                binarization=config.vae.binarize,
                likelihood=config.vae.likelihood,
                sigma=config.vae.gaussian_sigma,
            )
        summary = {
            **result,
            "params": self.meta["params"],
            "steps": int(state.step),
            "images_per_second": img_s,
            "model": config.model.name,
            "dataset": config.dataset.name,
            "devices": self.mesh.size,
        }
        if self.is_chief:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
            tmp.replace(path)
        return summary


def _build_model(config: ml_collections.ConfigDict, use_fast: bool) -> nn.Module:
    fields = dict(config.model)
    name = fields.pop("name")
    if config.parallel == "pmap" and "bn_axis_name" in models.model_fields(models.MODELS[name]):
        fields["bn_axis_name"] = parallel.AXIS  # BatchNorm statistics over all devices
    return models.create_model(name, fast=use_fast, **fields)


def _load_data(config: ml_collections.ConfigDict) -> data.Dataset:
    try:
        return data.load_for_config(config)
    except data.ImageShapeError:
        raise
    except ValueError as e:  # e.g. exclude_class out of range
        raise config_lib.ConfigError(f"dataset settings: {str(e).splitlines()[0]}") from None
