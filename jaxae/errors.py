"""User-caused errors end the program with one clear line and a non-zero exit, not a traceback."""

from __future__ import annotations

import contextlib
import sys

from jaxae import checkpoint, config, data, guard


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions whose message is written for the user (one line naming problem and fix)."""
    from jaxae.loading import RunNotFoundError
    from jaxae.train import TrainingDivergedError

    return (
        config.ConfigError,
        data.DatasetNotFoundError,
        data.ImageShapeError,
        checkpoint.CheckpointMismatchError,
        checkpoint.CheckpointWriteError,
        guard.WorkdirLockedError,
        guard.WorkdirError,
        TrainingDivergedError,
        RunNotFoundError,
    )


@contextlib.contextmanager
def one_line_errors(exit_code: int = 2):
    """Turns a user error into `error: <message>` on stderr and exit status `exit_code`.

    A run stopped by SIGTERM/SIGINT prints how to resume and exits with 128 + the signal; a
    full disk anywhere (metrics, config.json, checkpoints) is one line too.
    """
    try:
        yield
    except guard.Interrupted as e:
        print(str(e), file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except user_error_types() as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr, flush=True)
        sys.exit(exit_code)
    except OSError as e:
        full = guard.disk_full(e)
        if full is None:
            raise
        print(
            f"error: no space left on the device ({full}); free some space and rerun the same "
            f"command to resume from the last checkpoint",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(exit_code)
