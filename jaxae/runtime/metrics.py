"""Writes metrics.jsonl and TensorBoard event files (no TensorFlow needed)."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

from tensorboardX import SummaryWriter


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings so the line stays valid."""
    value = float(value) if hasattr(value, "__float__") and not isinstance(value, bool) else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def truncate_after(path: pathlib.Path, step: int) -> None:
    """Drops lines with `step` > `step` (written by a run that died before its next checkpoint)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a half-written last line from a killed process
        if record.get("step", 0) <= step:
            kept.append(line)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(path)


def read(path: str | pathlib.Path) -> list[dict]:
    """All records of a metrics.jsonl file."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class MetricWriter:
    """Appends one JSON object per call to `workdir/metrics.jsonl` and mirrors it to TensorBoard.

    Only one process (jax.process_index() == 0) should hold a writer; others pass enabled=False.
    """

    def __init__(self, workdir: str | pathlib.Path, *, enabled: bool = True):
        self.enabled = enabled
        self.path = pathlib.Path(workdir) / "metrics.jsonl"
        self._file = None
        self._tb = None
        if enabled:
            self._file = self.path.open("a")
            self._tb = SummaryWriter(logdir=str(workdir), flush_secs=30)

    def write(self, step: int, split: str, values: dict[str, Any]) -> None:
        """One line {step, split, **values}; numbers also go to TensorBoard as split/name."""
        if not self.enabled:
            return
        record = {"step": int(step), "split": split}
        record.update({k: _clean(v) for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        for name, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self._tb.add_scalar(f"{split}/{name}", float(value), int(step))

    def flush(self) -> None:
        """Writes buffered TensorBoard events to disk (metrics.jsonl is flushed per line)."""
        if self.enabled:
            self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            self._tb.close()
