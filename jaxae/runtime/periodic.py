"""Periodic actions of the loop: when to act (`itstime`), and the train log that fetches each
dispatch's metrics one dispatch late, stops on NaN/inf and writes running means."""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import numpy as np

from jaxae.errors import UserError


class TrainingDivergedError(UserError, FloatingPointError):
    """A loss term, the gradient or the update became NaN or inf."""


def itstime(step: int, every: int, total_steps: int) -> bool:
    """True every `every` steps and at the last step (big_vision's `itstime`)."""
    return step == total_steps or (every > 0 and step % every == 0)


def first_bad(metrics: dict[str, float]) -> str | None:
    """The first non-finite metric, loss terms before the loss and the norms; None if all finite."""
    if metrics.get("update_skipped"):  # skip_nonfinite rejected this update: nothing went bad
        return None
    last = ("loss", "grad_norm", "update_norm")
    for name in [*(k for k in metrics if k not in last), *last]:
        if name in metrics and not math.isfinite(metrics[name]):
            return name
    return None


def diverged_message(term: str, value: float, step: int, good: int, checkpoints: Any) -> str:
    kept = f"step {good} in {checkpoints}" if good else "none written yet"
    return (
        f"{term} became {value} at step {step}; last good checkpoint: {kept}; lower "
        f"--config.learning_rate, set --config.grad_clip, or skip non-finite updates with "
        f"--config.skip_nonfinite=N"
    )


class TrainLog:
    """Train metrics, fetched one dispatch late so the host never waits on the running step.

    `push` hands over a dispatch's device metrics and fetches the previous one's; `flush` fetches
    the pending one now (before evaluation, checkpoints and the end). Every step's values are
    checked for NaN/inf (TrainingDivergedError naming the term), and every `log_every` steps the
    mean since the last line goes to `writer` with images/s. Training time counts from the
    return of each dispatch (compilation done) until its metrics arrive, i.e. its execution; a
    dispatch pushed with `timed=False` (one the caller already waited on) counts in neither the
    time nor the images, so with no timed dispatch the rate is None, never a guess.
    """

    def __init__(self, writer, *, log_every: int, total_steps: int, batch_size: int, bar=None):
        self.writer, self.log_every, self.total_steps = writer, log_every, total_steps
        self.batch_size, self.bar = batch_size, bar
        self.last_saved = 0  # for the divergence message
        self.checkpoints: Any = None
        self.train_time, self.train_images = 0.0, 0
        self._pending: tuple[int, int, Any, bool] | None = None
        self._timer: float | None = None
        self._window: list[dict[str, float]] = []
        self._since_eval: list[dict[str, float]] = []  # for the console's line at each eval

    @property
    def images_per_second(self) -> float | None:
        return self.train_images / self.train_time if self.train_time > 0 else None

    def mean_since_last_call(self) -> dict[str, float] | None:
        """The mean train metrics of the steps fetched since the previous call (None if none)."""
        window, self._since_eval = self._since_eval, []
        return {k: float(np.mean([w[k] for w in window])) for k in window[0]} if window else None

    def push(self, first: int, last: int, device_metrics: Any, timed: bool = True) -> None:
        """Steps first..last were dispatched with these (not yet fetched) metrics; `timed=False`
        when they have already been waited on, so their execution time is unknown."""
        self.flush()
        self._pending = (first, last, device_metrics, timed)
        self._timer = time.perf_counter()
        if self.bar is not None:
            if self.images_per_second:
                self.bar.set_postfix(img_s=f"{self.images_per_second:.0f}", refresh=False)
            self.bar.update(last - first + 1)

    def flush(self) -> None:
        if self._pending is None:
            return
        first, last, device_metrics, timed = self._pending
        self._pending = None
        # one value per step: scalars from a single step, [n] from a scan of n steps
        arrays = {k: np.atleast_1d(v) for k, v in jax.device_get(device_metrics).items()}
        if timed:
            self.train_time += time.perf_counter() - self._timer
            self.train_images += self.batch_size * (last - first + 1)
        for row, step in enumerate(range(first, last + 1)):
            self._record(step, {k: float(a[row]) for k, a in arrays.items()})

    def _record(self, step: int, values: dict[str, float]) -> None:
        bad = first_bad(values)
        if bad is not None:
            message = diverged_message(bad, values[bad], step, self.last_saved, self.checkpoints)
            raise TrainingDivergedError(message)
        if not values.pop("update_skipped", 0.0):  # skipped steps have NaN terms: not averaged
            self._window.append(values)
            self._since_eval.append(values)
        if itstime(step, self.log_every, self.total_steps):
            window = self._window
            mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]} if window else {}
            if "skipped_updates" in values:  # running total, kept in the optimizer state
                mean["skipped_updates"] = values["skipped_updates"]
            if self.images_per_second:
                mean["images_per_second"] = self.images_per_second
            self.writer.write(step, "train", mean)
            self._window = []
            if self.bar is not None and "loss" in mean:
                self.bar.set_postfix(loss=f"{mean['loss']:.4g}", refresh=False)
