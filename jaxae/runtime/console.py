"""What a run prints: one plain line per evaluation (terminal or log file alike), a progress bar
on terminals only, pretraining progress, and a closing summary that says what to do next."""

from __future__ import annotations

import pathlib
import sys
import time
from typing import Any

from tqdm import tqdm

# Diagnostics kept in metrics.jsonl but left out of the console lines (they are not loss terms)
_NOT_TERMS = ("grad_norm", "update_norm", "learning_rate", "images_per_second", "skipped_updates")
_MAX_TERMS = 5  # loss and the first few terms keep a line readable in an 100-column log


def duration(seconds: float) -> str:
    """'45s', '3m05s', '2h07m'."""
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def terms(metrics: dict[str, Any] | None) -> str:
    """'loss 0.0123 mse 0.0123 kl 4.2': the loss and its first few terms, 4 significant digits."""
    if not metrics:
        return "-"
    names = [k for k in metrics if k not in _NOT_TERMS and isinstance(metrics[k], int | float)]
    names = sorted(names, key=lambda k: k != "loss")[:_MAX_TERMS]  # loss first, order kept
    return " ".join(f"{k} {metrics[k]:.4g}" for k in names)


class Console:
    """Prints a run's progress on stdout; `enabled=False` (other processes) prints nothing.

    The bar (tqdm, on stderr) appears only when stderr is a terminal and `bar` is asked for;
    the lines appear either way, through tqdm.write so that they never break the bar.
    """

    def __init__(self, *, total_steps, steps_per_epoch, start_step, enabled=True, bar=True):
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.start_step, self.enabled = start_step, enabled
        self.started = time.monotonic()
        self.interactive = enabled and bar and sys.stderr.isatty()
        self.bar: tqdm | None = None

    def start_bar(self) -> tqdm:
        """The bar (disabled without a terminal), begun once the run's opening lines are out."""
        self.bar = tqdm(
            total=self.total_steps,
            initial=self.start_step,
            disable=not self.interactive,
            dynamic_ncols=True,
        )
        return self.bar

    def print(self, line: str) -> None:
        if self.enabled:
            tqdm.write(line, file=sys.stdout)
            sys.stdout.flush()

    def eval_line(self, step: int, train: dict | None, split: str, result: dict, img_s) -> None:
        """'step 600/6000 epoch 1.3/10 | train loss .. | validation loss .. | 9,000 img/s |
        elapsed 1m02s ETA 9m18s'."""
        elapsed = time.monotonic() - self.started
        done = step - self.start_step
        eta = elapsed / done * (self.total_steps - step) if done > 0 else 0.0
        epochs = self.total_steps / self.steps_per_epoch
        speed = f"{img_s:,.0f} img/s" if img_s else "- img/s"
        self.print(
            f"step {step}/{self.total_steps} epoch {step / self.steps_per_epoch:.1f}/{epochs:.1f}"
            f" | train {terms(train)} | {split} {terms(result)} | {speed} | "
            f"elapsed {duration(elapsed)} ETA {duration(eta)}"
        )

    def pretrain_line(self, layers: int, steps_per_layer: int, values: dict) -> None:
        """One line per logged pretraining window: layer i/n, its step, its loss."""
        self.print(
            f"pretraining layer {int(values['layer']) + 1}/{layers} step "
            f"{int(values['layer_step'])}/{steps_per_layer} | loss {values['loss']:.4g} | "
            f"elapsed {duration(time.monotonic() - self.started)}"
        )

    def final(self, summary: dict, workdir: pathlib.Path, note: str = "") -> None:
        """The closing lines: test metrics (latest and best), where they are, what to run next."""
        self.close()
        latest = summary.get("test_latest") or summary
        lines = [f"done: {summary['steps']} steps; test: {terms(latest)}"]
        best = summary.get("test_best")
        if best is not None:
            lines.append(
                f"best by validation: step {summary['best_step']} (validation loss "
                f"{summary['best_validation_loss']:.4g}); its test: {terms(best)}"
            )
        if note:
            lines.append(note)
        lines.append(f"summary: {workdir / 'summary.json'}")
        lines.append(f"next: python -m jaxae.analyze --workdir {workdir}")
        for line in lines:
            self.print(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
