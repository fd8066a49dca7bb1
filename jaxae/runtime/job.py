"""One run's pieces built from its config: model, data and validation split, mesh, optimizer,
steps; restore, evaluation and the closing summary. The loop itself is jaxae/train.py."""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import sys
import types
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxae import adversarial, data, fast, models, objectives, optim, pretrain, steps, vae
from jaxae import config as config_lib
from jaxae.rng import run_key
from jaxae.runtime import (
    batching,
    checkpoint,
    distributed,
    feeding,
    parallel,
    programs,
    validation,
)
from jaxae.runtime.console import Console
from jaxae.runtime.metrics import MetricWriter
from jaxae.runtime.periodic import TrainingDivergedError, diverged_message, first_bad
from jaxae.runtime.validation import Selection
from jaxae.steps import init_state, make_train_step


@dataclasses.dataclass
class Job:
    """The pieces of one run built from its config: model, data, mesh, optimizer and steps."""

    config: ml_collections.ConfigDict
    workdir: pathlib.Path
    model: nn.Module
    ds: data.Dataset  # train without the validation examples
    validation_images: np.ndarray | None  # [V, H, W, C] uint8 held out of train; None = none
    mesh: Mesh
    fast: bool
    fast_reason: str
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    objective: objectives.Objective
    adversary: adversarial.Adversary | None  # the critic of adversarial runs
    abstract_state: Any
    meta: dict
    total_steps: int
    steps_per_epoch: int
    eval_every: int
    checkpoint_every: int
    programs: programs.ProgramStore  # compiled steps kept across runs (programs.py)
    step_fn: parallel.Step  # one train step (of one device under pmap)
    scan_choice: tuple[bool, str]  # (lax.scan epochs on the device?, why)

    @classmethod
    def build(cls, config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Job:
        use_fast, fast_reason = fast.resolve(config.fast_ops, config.compute_dtype)
        model = _build_model(config, use_fast)
        ds, validation_images = validation.hold_out(
            _load_data(config), config.dataset.validation_fraction, config.seed
        )
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
        adversary = adversarial.build(config, model)
        init = functools.partial(init_state, model, tx, ds.image_shape, config.seed, adversary)
        replicated = NamedSharding(mesh, P())
        abstract_state = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
            jax.eval_shape(init),
        )
        objective = objectives.make_objective(config, model)
        axis = parallel.AXIS if config.parallel == "pmap" else None
        norm = functools.partial(optim.global_norm, fast=use_fast)
        step_fn = make_train_step(objective, tx, schedule, axis, norm=norm, adversary=adversary)
        config_dict = json.loads(config_lib.to_json(config))
        store = programs.for_run(config_dict, model, ds, validation_images)
        scan_choice = _scan_epochs(config, abstract_state, ds, step_fn, axis, store)
        # before anything compiles (eval_shape, the scan choice only trace): how scans lower
        notes = fast.process.for_training(use_fast, scan_choice[0])
        if notes and jax.process_index() == 0:
            print("; ".join(notes), flush=True)
        num_params = models.count_params(abstract_state.params)
        layout = checkpoint.state_layout(abstract_state)
        eval_every = config.eval_every or steps_per_epoch
        return cls(
            config=config,
            workdir=workdir,
            model=model,
            ds=ds,
            validation_images=validation_images,
            mesh=mesh,
            fast=use_fast,
            fast_reason=fast_reason,
            tx=tx,
            schedule=schedule,
            objective=objective,
            adversary=adversary,
            abstract_state=abstract_state,
            meta=checkpoint.run_meta(config_dict, num_params, layout),
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
            eval_every=eval_every,
            checkpoint_every=config.checkpoint_every or eval_every,
            programs=store,
            step_fn=step_fn,
            scan_choice=scan_choice,
        )

    @property
    def is_chief(self) -> bool:
        return distributed.is_chief()

    @functools.cached_property
    def train_rng(self) -> jax.Array:
        return distributed.to_global(run_key(self.config.seed, "train"), self._replicated)

    @property
    def validating(self) -> bool:
        """True with a validation split: it alone picks the best checkpoint and stops early."""
        return self.validation_images is not None

    @property
    def eval_split(self) -> str:
        return "validation" if self.validating else "test"

    @property
    def _replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def restore_or_init(self, mngr) -> tuple[steps.TrainState, int, dict | None]:
        """(state, step, meta) of the newest intact checkpoint of this run (checked against it),
        else a fresh state at step 0 with meta None."""

        def check(saved: dict) -> None:
            checkpoint.check_compatible(
                saved, self.workdir, config=self.meta["config"], layout=self.meta["state_layout"]
            )

        found = checkpoint.restore_latest_good(mngr, self.abstract_state, check)
        if found is not None:
            start_step, state, meta = found
            print(f"Resuming {self.workdir} from step {start_step}.", flush=True)
            return state, start_step, meta
        init = functools.partial(
            init_state, self.model, self.tx, self.ds.image_shape, self.config.seed, self.adversary
        )
        jitted = jax.jit(init, out_shardings=self._replicated)
        return self.programs.wrap("init", jitted)(), 0, None

    def pretrain(self, state: steps.TrainState, writer: MetricWriter, console: Console):
        """Greedy layer-wise pretraining, its progress logged and printed as it goes."""
        layers, per_layer = len(self.model.hidden) + 1, self.config.pretrain.steps_per_layer

        def write(step: int, split: str, values: dict) -> None:
            writer.write(step, split, values)
            console.pretrain_line(layers, per_layer, values)

        echo = types.SimpleNamespace(write=write)
        images = self.ds.train_images
        return pretrain.pretrain_state(self.config, self.model, state, self.tx, images, echo)

    def feeder(self, start_step: int) -> feeding.Feeder:
        config, step_fn = self.config, self.step_fn
        if config.parallel == "pmap":
            step_fn = parallel.shard_step(step_fn, self.mesh)
        images = self.ds.train_images
        return feeding.Feeder(
            step_fn,
            self.mesh,
            images,
            batch_size=config.batch_size,
            data_key=run_key(config.seed, "data"),
            start_step=start_step,
            on_device=self.scan_choice[0],
            max_steps=config.steps_per_dispatch,
            boundaries=(self.eval_every, self.checkpoint_every),
            fast=self.fast,
            programs=self.programs,
        )

    def announce(self, feeder: feeding.Feeder) -> None:
        if not self.is_chief:
            return
        config, mesh = self.config, self.mesh
        why = self.scan_choice[1]
        print(
            f"Training on {mesh.size} device(s) in {jax.process_count()} process(es), "
            f"{config.parallel}: global batch {config.batch_size}, per-device batch "
            f"{config.batch_size // mesh.size}; data "
            + ("on device, lax.scan epochs" if feeder.on_device else "from the host with prefetch")
            + f" ({why}); {config.compute_dtype} compute; {self.fast_reason}",
            flush=True,
        )
        if self.validating:
            print(
                f"Validation: {len(self.validation_images)} of the training examples held out "
                f"(seed {config.seed}), {len(self.ds.train_images)} left to train on; the best "
                f"checkpoint"
                + (" and early stopping follow" if config.early_stopping.patience else " follows")
                + " the validation loss; test is scored at the end",
                flush=True,
            )

    def selection_note(self, selection: Selection) -> str:
        """What the closing summary says about model selection."""
        if not self.validating:
            return (
                "evaluated on test while training (monitoring only, no best checkpoint); "
                "--config.dataset.validation_fraction=0.1 holds out a validation split for "
                "model selection and early stopping"
            )
        if selection.stopped_at is not None:
            return (
                f"stopped early at step {selection.stopped_at}: no better validation loss than "
                f"step {selection.best_step}'s in {selection.patience} evaluations"
            )
        return ""

    @functools.cached_property
    def _eval_step(self):
        options = fast.process.step_compiler_options(self.fast)
        eval_step = steps.make_eval_step(self.objective, self.model, self.fast)
        return self.programs.wrap("eval", jax.jit(eval_step, compiler_options=options))

    def evaluate(
        self, state: steps.TrainState, split: str = "test", step: int | None = None, good: int = 0
    ) -> dict:
        """Mean of every eval metric over `split` ('test' or 'validation'); NaN/inf stops the
        run before the state is saved (`step` and `good`, the last saved one, name it)."""
        images = self.validation_images if split == "validation" else self.ds.test_images
        result = batching.mean_over_batches(
            functools.partial(self._eval_step, state),
            images,
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

    def summary(self, state, mngr, selection: Selection, last_eval: dict | None, img_s):
        """Test metrics of the latest state (top level, and `test_latest`) and, with a
        validation split, of the best checkpoint by validation loss (`test_best`), for
        `write_summary`. Test is scored here only, unless there is no validation."""
        config, path = self.config, self.workdir / "summary.json"
        if self.validating or last_eval is None:
            test_latest = self.evaluate(state, "test")
        else:  # without a validation split the last evaluation was on test, at this state
            test_latest = dict(last_eval)
        if img_s is None and path.exists():  # a rerun of a finished run keeps its measured rate
            img_s = json.loads(path.read_text()).get("images_per_second")
        if models.is_vae(self.model) and config.vae.nll_examples:
            test_latest["nll"] = vae.nll_of_images(
                self.model,
                {"params": state.params},
                self.ds.test_images[: config.vae.nll_examples],
                run_key(config.seed, "nll"),
                num_samples=config.vae.nll_samples,
                binarization=config.vae.binarize,
                likelihood=config.vae.likelihood,
                sigma=config.vae.gaussian_sigma,
                compiler_options=fast.process.step_compiler_options(self.fast),
            )
        summary = {
            **test_latest,
            "params": self.meta["params"],
            "steps": int(state.step),
            "images_per_second": img_s,
            "model": config.model.name,
            "dataset": config.dataset.name,
            "devices": self.mesh.size,
            "examples": {
                "train": len(self.ds.train_images),
                "validation": 0 if self.validation_images is None else len(self.validation_images),
                "test": len(self.ds.test_images),
            },
            "test_latest": test_latest,
        }
        if self.validating:
            summary.update(self._best_summary(state, mngr, selection, last_eval, test_latest))
        return summary

    def write_summary(self, summary: dict) -> None:
        """Writes `summary` to the workdir's summary.json atomically (the chief only)."""
        if self.is_chief:
            path = self.workdir / "summary.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
            tmp.replace(path)

    def _best_summary(self, state, mngr, selection: Selection, last_eval, test_latest) -> dict:
        """best_step, its validation metrics, its test metrics, and the early stop (if any)."""
        step, best = int(state.step), selection.best_step
        validation_latest = (
            last_eval if last_eval is not None else self.evaluate(state, "validation")
        )
        if best is None or best == step:
            test_best = {k: v for k, v in test_latest.items() if k != "nll"}
        elif best in mngr.all_steps():
            checkpoint.finish(mngr)  # the final save may still be running: no restore beside it
            best_state, _ = checkpoint.restore(mngr, best, self.abstract_state)
            test_best = self.evaluate(best_state, "test")
        else:  # moved aside as damaged: say so rather than score another step under its name
            print(
                f"warning: the best checkpoint (step {best}) is gone; no test_best",
                file=sys.stderr,
                flush=True,
            )
            test_best = None
        if best is None:  # no evaluation recorded (a checkpoint from before selection): latest
            best, selection = (
                step,
                dataclasses.replace(
                    selection, best_loss=validation_latest["loss"], best_metrics=validation_latest
                ),
            )
        return {
            "best_step": best,
            "best_validation_loss": selection.best_loss,
            "validation_best": selection.best_metrics,
            "validation_latest": validation_latest,
            "test_best": test_best,
            "early_stopped_at": selection.stopped_at,
        }


def _scan_epochs(
    config: ml_collections.ConfigDict,
    abstract_state: Any,
    ds: data.Dataset,
    step: parallel.Step,
    axis: str | None,
    store: programs.ProgramStore,
) -> tuple[bool, str]:
    """(lax.scan epochs over the training set on the device?, why) for `step` (one device's
    under pmap's `axis`); whether its convs are canonical is traced once and kept in `store`."""
    images = ds.train_images
    if data.stream.is_streamed(images):
        return False, "a streamed training set stays on disk"
    one_batch = (config.batch_size // (jax.device_count() if axis else 1), *ds.image_shape)
    key = jax.eval_shape(lambda: run_key(0, "train"))  # shapes only: nothing compiles
    args = (abstract_state, jax.ShapeDtypeStruct(one_batch, images.dtype), key)
    axis_env = [(axis, jax.device_count())] if axis else []

    def canonical() -> bool:
        trace = functools.partial(parallel.canonical_convolutions, step, *args, axis_env=axis_env)
        return bool(store.fact("canonical_convolutions", trace))

    return parallel.scan_epoch_choice(
        config.scan_epoch, abstract_state.params, images.nbytes, canonical
    )


def _build_model(config: ml_collections.ConfigDict, use_fast: bool) -> nn.Module:
    fields = dict(config.model)
    name = fields.pop("name")
    if config.parallel == "pmap" and "bn_axis_name" in models.model_fields(models.MODELS[name]):
        fields["bn_axis_name"] = parallel.AXIS  # BatchNorm statistics over all devices
    return models.create_model(name, fast=use_fast, dtype=config.compute_dtype, **fields)


def _load_data(config: ml_collections.ConfigDict) -> data.Dataset:
    try:
        return data.load_for_config(config)
    except data.ImageShapeError:
        raise
    except ValueError as e:  # e.g. exclude_class out of range
        raise config_lib.ConfigError(f"dataset settings: {str(e).splitlines()[0]}") from None
