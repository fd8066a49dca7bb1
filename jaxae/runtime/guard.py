"""Run guards: one training process per workdir (a lock), and SIGTERM/SIGINT → save, then stop."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import pathlib
import shlex
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator

from jaxae.errors import UserError

LOCK_NAME = "lock"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class WorkdirLockedError(UserError, RuntimeError):
    """Another live process trains in this workdir; the message names it and the way out."""


class WorkdirError(UserError, OSError):
    """The workdir cannot be created or written (permissions, a file in the way, a full disk)."""


class Interrupted(Exception):
    """Training stopped on SIGTERM/SIGINT after saving a checkpoint; `exit_code` is 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


def _open_locked(path: pathlib.Path) -> int | None:
    """An fd holding an exclusive flock on `path`, or None when a live process holds it.

    The kernel drops a flock when its holder dies (even by SIGKILL), so a lock file left behind
    by a killed run never blocks. The inode check makes unlinking the file on release safe.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder released and unlinked it between our open and flock: retry


def _holder(path: pathlib.Path) -> str:
    try:
        text = path.read_text().split()
    except OSError:
        text = []
    return f"process {text[0]} on host {text[1]}" if len(text) >= 2 else "another process"


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike[str]) -> Iterator[pathlib.Path]:
    """Holds `workdir/lock` (flock, with PID and host written in it) for the duration.

    Creates `workdir` if needed and, if it is still empty on exit, removes it again, so a run
    refused before writing anything leaves no trace. Raises WorkdirLockedError when a live
    process holds the lock, WorkdirError when the directory cannot be created.
    """
    workdir = pathlib.Path(workdir)
    created = not workdir.exists()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkdirError(
            f"cannot create --workdir {workdir} ({e.strerror}); give a writable directory"
        ) from None
    path = workdir / LOCK_NAME
    try:
        fd = _open_locked(path)
    except OSError as e:  # read-only directory, no inodes left, ...
        _remove_if_empty(workdir, created)
        raise WorkdirError(
            f"cannot write the lock file {path} ({e.strerror}); give a writable --workdir"
        ) from None
    if fd is None:
        raise WorkdirLockedError(
            f"--workdir {workdir} is in use by {_holder(path)} (lock {path}); wait for it to "
            f"finish or stop it, or use another --workdir"
        )
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)
        _remove_if_empty(workdir, created)


def _remove_if_empty(workdir: pathlib.Path, created: bool) -> None:
    if created:
        with contextlib.suppress(OSError):
            workdir.rmdir()  # only succeeds when nothing was written


@dataclasses.dataclass
class StopRequest:
    """Set by the first SIGTERM/SIGINT: the loop saves after the current step and stops."""

    signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[StopRequest]:
    """Turns the first of `signals` into a StopRequest; a second one acts as it normally would.

    Outside the main thread (where Python cannot install handlers) the request never fires.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.getsignal(s) for s in signals}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    def handler(signum: int, frame) -> None:
        if request.requested:  # asked twice: stop now, the last checkpoint is safe on disk
            restore()
            signal.raise_signal(signum)
            return
        request.signum = signum
        print(
            f"{signal.Signals(signum).name}: finishing the current step and saving a checkpoint "
            f"(send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    for s in signals:
        signal.signal(s, handler)
    try:
        yield request
    finally:
        restore()


def stopped_message(request: StopRequest, step: int, workdir: str | os.PathLike[str]) -> str:
    """One line: which signal stopped the run, the saved step, and the command that resumes."""
    argv = sys.argv if sys.argv and sys.argv[0].endswith("train.py") else None
    how = f"python {shlex.join(argv)}" if argv else "the same command"
    return (
        f"stopped by {request.name} after step {step}; checkpoint saved in "
        f"{pathlib.Path(workdir) / 'checkpoints'}; to resume run {how}"
    )


# How the storage layer (TensorStore, under Orbax) reports ENOSPC/EDQUOT: not as an OSError but
# as ValueError('RESOURCE_EXHAUSTED: ... No space left on device [os_error_code=\'28\']')
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded", "os_error_code='28'")


def disk_full(exc: BaseException) -> OSError | None:
    """The full-disk error behind `exc` (itself, its cause or context), if any, as an OSError.

    An ENOSPC/EDQUOT OSError is returned as it is; TensorStore's RESOURCE_EXHAUSTED errors that
    name a full disk become OSError(ENOSPC) with their first line as the filename.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            return exc
        text = str(exc)
        if any(needle in text for needle in _DISK_FULL_TEXT):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), text.splitlines()[0][:300])
        exc = exc.__cause__ or exc.__context__
    return None


def free_space(path: str | os.PathLike[str]) -> str:
    """Free space on the filesystem holding `path` (its nearest existing parent): '1.4 GB'."""
    path = pathlib.Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = float(shutil.disk_usage(path).free)
    except OSError:
        return "unknown"
    for unit in ("B", "kB", "MB", "GB"):
        if free < 1000:
            return f"{free:.0f} {unit}" if unit == "B" else f"{free:.1f} {unit}"
        free /= 1000
    return f"{free:.1f} TB"


def disk_full_message(workdir: str | os.PathLike[str], what: str, kept: str) -> str:
    """One line: what could not be written, where, the free space left, what is safe, the fix."""
    return (
        f"no space left on the device while writing {what} in --workdir {workdir} "
        f"({free_space(workdir)} free there); {kept}; free some space and rerun the same command "
        f"to resume"
    )


@contextlib.contextmanager
def disk_full_is_one_line(workdir: str | os.PathLike[str]) -> Iterator[None]:
    """Turns a full disk while writing metrics, config.json or summary.json into WorkdirError."""
    try:
        yield
    except UserError:
        raise
    except Exception as e:
        if disk_full(e) is None:
            raise
        kept = "the checkpoints written so far are intact"
        raise WorkdirError(disk_full_message(workdir, "the run's files", kept)) from e
