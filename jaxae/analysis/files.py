"""The files an analysis writes, each replaced atomically: a failed, killed or full-disk write
leaves the previous version (or none), never a partial file that breaks the next run."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pathlib
import sys
from collections.abc import Callable, Iterator

from jaxae.errors import UserError

_TMP = ".tmp-"  # ".NAME.tmp-PID": hidden, and never a name the report links to


class AnalysisWriteError(UserError, OSError):
    """The analysis directory cannot be written (full disk, read-only workdir); one line."""


def replace_atomically(path: pathlib.Path, write: Callable[[pathlib.Path], None]) -> None:
    """Calls write(tmp) for a temporary file beside `path`, then renames it onto `path`.

    The rename is atomic on POSIX file systems, so readers see the old file or the new one.
    """
    tmp = path.with_name(f".{path.name}{_TMP}{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: pathlib.Path, text: str) -> None:
    """Writes `text` to `path` atomically (see replace_atomically)."""
    replace_atomically(path, lambda tmp: tmp.write_text(text))


def read_previous(path: pathlib.Path) -> dict:
    """analysis.json of an earlier run as a dict; {} with a one-line warning if it is unreadable
    (e.g. emptied by a full disk before writes were atomic): it is rewritten at the end."""
    return read_json_object(
        path, "it is rewritten at the end", lambda d: isinstance(d.get("analyses", {}), dict)
    )


def read_json_object(
    path: pathlib.Path, then: str, valid: Callable[[dict], bool] = lambda _: True
) -> dict:
    """The JSON object in `path`; {} if absent, or with a one-line warning ending in `then` if
    it is unreadable, not an object or not `valid`."""
    if not path.exists():
        return {}
    try:
        value = json.loads(path.read_text())
        if not isinstance(value, dict) or not valid(value):
            raise ValueError("not the JSON object expected")
    except (OSError, ValueError) as e:
        print(
            f"warning: ignoring {path}, it is unreadable ({e}); {then}",
            file=sys.stderr,
            flush=True,
        )
        return {}
    return value


def remove_stale_temporaries(outdir: pathlib.Path) -> None:
    """Deletes the temporary files of analyses killed before their rename (their process gone)."""
    for tmp in outdir.glob(f".*{_TMP}*"):
        pid = tmp.name.rsplit(_TMP, 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def writing_into(outdir: pathlib.Path) -> Iterator[None]:
    """Creates `outdir` and turns a full disk or an unwritable directory inside the block into
    one AnalysisWriteError line (the files already there are left as they were)."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise AnalysisWriteError(
                f"no space left on the device writing the analysis into {outdir} ({e.strerror}); "
                f"free some space and rerun, or write it elsewhere with --out DIR"
            ) from e
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise AnalysisWriteError(
                f"cannot write the analysis into {outdir} ({e.strerror}); write it elsewhere "
                f"with --out DIR"
            ) from e
        raise
