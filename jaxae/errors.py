"""User-caused errors end the program with one clear line and a non-zero exit, not a traceback."""

from __future__ import annotations

import contextlib
import sys

from jaxae import checkpoint, config, data


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions whose message is written for the user (one line naming problem and fix)."""
    from jaxae.loading import RunNotFoundError
    from jaxae.train import TrainingDivergedError

    return (
        config.ConfigError,
        data.DatasetNotFoundError,
        data.ImageShapeError,
        checkpoint.CheckpointMismatchError,
        TrainingDivergedError,
        RunNotFoundError,
    )


@contextlib.contextmanager
def one_line_errors(exit_code: int = 2):
    """Turns a user error into `error: <message>` on stderr and exit status `exit_code`."""
    try:
        yield
    except user_error_types() as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr, flush=True)
        sys.exit(exit_code)
