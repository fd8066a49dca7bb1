"""User-caused errors end the program with one clear line and a non-zero exit, not a traceback."""

from __future__ import annotations

import contextlib
import sys


class UserError(Exception):
    """Base of every error a user causes and can fix; its message is one line naming both.

    Each module declares its own subclasses next to the code that raises them (mixing in the
    builtin type callers expect, e.g. `class ConfigError(UserError, ValueError)`).
    """


@contextlib.contextmanager
def one_line_errors(exit_code: int = 2):
    """Turns a user error into `error: <message>` on stderr and exit status `exit_code`.

    A run stopped by SIGTERM/SIGINT prints how to resume and exits with 128 + the signal; a
    full disk anywhere (metrics, config.json, checkpoints) is one line too.
    """
    from jaxae.runtime import guard  # no jax: guard is plain Python

    try:
        yield
    except guard.Interrupted as e:
        print(str(e), file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except UserError as e:
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
