"""The training loop: `train_and_evaluate(config, workdir)` around the pure steps of steps.py."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import jax
import ml_collections

from jaxae import config as config_lib
from jaxae import data, fast, steps
from jaxae.runtime import checkpoint, feeding, guard, startup
from jaxae.runtime.console import Console
from jaxae.runtime.job import Job
from jaxae.runtime.metrics import MetricWriter, truncate_after
from jaxae.runtime.periodic import TrainingDivergedError, TrainLog
from jaxae.runtime.periodic import itstime as _itstime
from jaxae.runtime.validation import Selection
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
    locked = guard.workdir_lock(workdir)
    with locked, guard.stop_on_signals() as stop, guard.disk_full_is_one_line(workdir):
        return _train(config, workdir, stop)


def _train(config: ml_collections.ConfigDict, workdir: pathlib.Path, stop: guard.StopRequest):
    job = Job.build(config, workdir)
    startup.mark("data, model and optimizer built")
    mngr = checkpoint.manager(workdir, keep=config.keep_checkpoints)
    state, start_step, meta = job.restore_or_init(mngr)
    startup.mark("state initialised or restored", wait=state)
    selection = Selection.from_meta(meta, config.early_stopping.patience)
    pretraining = mngr.latest_step() is None and config.pretrain.steps_per_layer > 0
    if job.is_chief:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(config_lib.to_json(config) + "\n")
        data.scaling.save(job.ds.scaling, workdir)  # vectors: the transform jaxae.load applies
        truncate_after(workdir / "metrics.jsonl", -1 if pretraining else start_step)
    writer = MetricWriter(workdir, enabled=job.is_chief)  # TensorBoard rebuilt from the log
    console = Console(
        total_steps=job.total_steps,
        steps_per_epoch=job.steps_per_epoch,
        start_step=start_step,
        enabled=job.is_chief,
        bar=config.progress,
    )
    try:
        if pretraining:  # greedy layer-wise; saved as step 0, so it reruns only without one
            state = job.pretrain(state, writer, console)
            checkpoint.save(mngr, 0, state, job.meta)
        feeder = job.feeder(start_step)
        job.announce(feeder)
        log = TrainLog(
            writer,
            log_every=config.log_every,
            total_steps=job.total_steps,
            batch_size=config.batch_size,
            bar=console.start_bar(),
        )
        log.last_saved, log.checkpoints = start_step, workdir / "checkpoints"
        loop = Loop(job, mngr, feeder, log, writer, console, selection, stop)
        state, last_eval = loop.run(state, start_step)
        startup.mark("last step", wait=state)
        # for the next run's malloc setting
        fast.process.record_step_memory(job.programs.step_temp_bytes(), job.scan_choice[0])
        console.close()
        # test is scored while the final checkpoint is still being written in the background;
        # summary.json is written only once that checkpoint is sealed
        summary = job.summary(state, mngr, selection, last_eval, log.images_per_second)
        startup.mark("final evaluation, NLL and summary")
        checkpoint.finish(mngr)
        job.write_summary(summary)
        startup.mark("rest of the final checkpoint's write")
    finally:
        console.close()
        checkpoint.finish(mngr)
        writer.close()
    console.final(summary, workdir, job.selection_note(selection))
    mngr.close()
    return summary


@dataclasses.dataclass
class Loop:
    """The training loop proper: dispatch steps, then act when it is time (evaluate, select,
    checkpoint, stop early or on a signal)."""

    job: Job
    mngr: Any
    feeder: feeding.Feeder
    log: TrainLog
    writer: MetricWriter
    console: Console
    selection: Selection
    stop: guard.StopRequest

    def run(self, state: steps.TrainState, step: int) -> tuple[steps.TrainState, dict | None]:
        """Trains from `step` to the end (or an early stop); returns (state, the last eval)."""
        job, last_eval = self.job, None
        while step < job.total_steps and not self.selection.should_stop:
            first, step = step + 1, self.feeder.end(step, job.total_steps)
            state, metrics = self.feeder(state, first, step, job.train_rng)
            waited = startup.mark("first step compiled and run", wait=metrics)
            self.log.push(first, step, metrics, timed=not waited)
            checkpoint.seal_if_idle(self.mngr)
            is_eval = _itstime(step, job.eval_every, job.total_steps)
            is_ckpt = _itstime(step, job.checkpoint_every, job.total_steps)
            if is_eval or is_ckpt or self.stop.requested:
                self.log.flush()
            best = False
            if is_eval:
                last_eval = self.evaluate(state, step)
                best = job.validating and self.selection.update(step, last_eval)
            saved = self.log.last_saved == step
            if is_ckpt or best or self.selection.should_stop or (self.stop.requested and not saved):
                selected = last_eval["loss"] if is_eval and job.validating else None
                self.save(state, step, selected)
            if self.stop.requested:  # SIGTERM/SIGINT: this step is done and saved; stop
                raise guard.Interrupted(
                    guard.stopped_message(self.stop, step, job.workdir), self.stop.signum
                )
        return state, last_eval

    def evaluate(self, state: steps.TrainState, step: int) -> dict:
        """Evaluates on validation (test without one), logs it and prints the step's line."""
        job = self.job
        result = job.evaluate(state, job.eval_split, step, self.log.last_saved)
        self.writer.write(step, "eval", result)
        self.console.eval_line(
            step,
            self.log.mean_since_last_call(),
            job.eval_split,
            result,
            self.log.images_per_second,
        )
        return result

    def save(self, state: steps.TrainState, step: int, validation_loss: float | None) -> None:
        meta = {**self.job.meta, **self.selection.to_meta()}
        checkpoint.save(self.mngr, step, state, meta, eval_loss=validation_loss)
        self.writer.flush()  # a kill -9 now loses no TensorBoard point up to this checkpoint
        self.log.last_saved = step
