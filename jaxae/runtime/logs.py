"""Silences the Orbax log lines that look like failures but are not, and the tracebacks of a
full disk that jaxae reports itself in one line; every other message passes."""

from __future__ import annotations

import logging
import re

# Orbax's messages (absl logger) that every healthy run prints:
# - once per checkpoint saved without metrics (every one when nothing ranks checkpoints):
#   "Requested `tracked_metric`; did not provide metrics."
# - on every load of a step written before Orbax kept per-step metadata, or read-only:
#   "Metadata file does not exist: .../_CHECKPOINT_METADATA"
# - on every read-only manager (jaxae.load, the analysis), which is what was asked for:
#   "CheckpointManagerOptions.read_only=True, setting save_interval_steps=0."
#   "Given directory is read only=.../checkpoints"
NOISE = (
    re.compile(r"^Requested `?tracked_metric`?; did not provide metrics"),
    re.compile(r"^Metadata file does not exist: .*_CHECKPOINT_METADATA$"),
    re.compile(r"^CheckpointManagerOptions\.read_only=True, setting save_interval_steps=0\.$"),
    re.compile(r"^Given directory is read only=.*checkpoints$"),
)


# Logged (with tracebacks, from Orbax's background threads) when a checkpoint write fails; for
# a full disk the loop raises CheckpointWriteError, one line, so they only bury that line.
DISK_FULL = ("No space left on device", "Disk quota exceeded", "os_error_code='28'")
AFTER_A_FAILED_WRITE = (
    re.compile(r"^\[process=\d+\] Failed to run \d+ Handler Commit operations"),
    re.compile(r".*\[wait_until_finished\] Save Finalize thread .* failed"),
)


class OrbaxNoiseFilter(logging.Filter):
    """Drops NOISE, full-disk reports, and the generic failure lines that follow one (only after
    a full disk was seen, so any other failed write keeps its log)."""

    def __init__(self):
        super().__init__()
        self.disk_full_seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to judge: let it through
            return True
        if any(pattern.match(message) for pattern in NOISE):
            return False
        text = message + (str(record.exc_info[1]) if record.exc_info else "")
        if any(needle in text for needle in DISK_FULL):
            self.disk_full_seen = True
            return False
        return not (self.disk_full_seen and any(p.match(message) for p in AFTER_A_FAILED_WRITE))


_FILTER = OrbaxNoiseFilter()


def silence_orbax_noise() -> None:
    """Installs the filter on the absl logger (Orbax logs through absl); idempotent."""
    logger = logging.getLogger("absl")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
