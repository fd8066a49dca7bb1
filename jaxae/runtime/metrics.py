"""Writes metrics.jsonl and TensorBoard event files (no TensorFlow needed).

metrics.jsonl is the record: written and flushed line by line, cut back to the checkpoint a
resumed run starts from. The event files follow it: flushed at every checkpoint, and rebuilt
from metrics.jsonl when a run resumes, so a kill -9 loses no TensorBoard point either."""

from __future__ import annotations

import json
import math
import pathlib
import time
import uuid
from typing import Any

from jaxae.runtime.startup import import_without

import_without("tensorboardX")  # without torch and boto3, which it imports when installed
from tensorboardX.event_file_writer import EventsWriter  # noqa: E402
from tensorboardX.proto import event_pb2, summary_pb2  # noqa: E402

FLUSH_SECONDS = 30  # events reach the disk at least this often, and at every checkpoint


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


def _scalar(value: Any) -> float | None:
    """A record's value as TensorBoard got it: numbers, and NaN/inf written as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return None


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
            earlier = sorted(pathlib.Path(workdir).glob("events.out.tfevents.*"))
            self._file = self.path.open("a")
            # tensorboardX's SummaryWriter queues events for a thread and its flush() leaves
            # the queue alone; this writer is synchronous, so flush() means on disk. The
            # suffix makes the name unique (time in seconds and host are not, on a quick resume)
            prefix, unique = str(pathlib.Path(workdir) / "events"), f".{uuid.uuid4().hex[:8]}"
            self._tb = EventsWriter(prefix, filename_suffix=unique)
            self._flushed = time.monotonic()
            if earlier:
                self._rebuild_events(earlier)

    def _rebuild_events(self, earlier: list[pathlib.Path]) -> None:
        """Writes every scalar of metrics.jsonl into this run's event file, then removes the
        earlier files: they miss what a killed run had not flushed, and hold steps past the
        checkpoint that this run redoes."""
        for record in read(self.path):
            self._add_scalars(record["step"], record["split"], record)
        self._tb.flush()
        for path in earlier:
            path.unlink(missing_ok=True)

    def _add_scalars(self, step: int, split: str, values: dict[str, Any]) -> None:
        for name, value in values.items():
            number = _scalar(value) if name not in ("step", "split") else None
            if number is not None:
                value = summary_pb2.Summary.Value(tag=f"{split}/{name}", simple_value=number)
                event = event_pb2.Event(wall_time=time.time(), step=int(step))
                event.summary.value.append(value)
                self._tb.write_event(event)
        if time.monotonic() - self._flushed > FLUSH_SECONDS:
            self.flush()

    def write(self, step: int, split: str, values: dict[str, Any]) -> None:
        """One line {step, split, **values}; numbers also go to TensorBoard as split/name."""
        if not self.enabled:
            return
        record = {"step": int(step), "split": split}
        record.update({k: _clean(v) for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self._add_scalars(step, split, values)

    def flush(self) -> None:
        """Writes buffered TensorBoard events to disk (metrics.jsonl is flushed per line)."""
        if self.enabled:
            self._tb.flush()
            self._flushed = time.monotonic()

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            self._tb.close()
