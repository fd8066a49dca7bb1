"""Silences the two Orbax log lines that look like failures but are not, and nothing else."""

from __future__ import annotations

import logging
import re

# Orbax's messages (absl logger) that every healthy run prints:
# - once per checkpoint saved without metrics (every one when nothing ranks checkpoints):
#   "Requested `tracked_metric`; did not provide metrics."
# - on every load of a step written before Orbax kept per-step metadata, or read-only:
#   "Metadata file does not exist: .../_CHECKPOINT_METADATA"
NOISE = (
    re.compile(r"^Requested `?tracked_metric`?; did not provide metrics"),
    re.compile(r"^Metadata file does not exist: .*_CHECKPOINT_METADATA"),
)


class OrbaxNoiseFilter(logging.Filter):
    """Drops a record only when its whole message is one of NOISE; every other warning passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to judge: let it through
            return True
        return not any(pattern.match(message) for pattern in NOISE)


_FILTER = OrbaxNoiseFilter()


def silence_orbax_noise() -> None:
    """Installs the filter on the absl logger (Orbax logs through absl); idempotent."""
    logger = logging.getLogger("absl")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
