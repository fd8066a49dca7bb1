"""Cold start: XLA's persistent compilation cache, and where the seconds go before the first step.

`enable_compilation_cache()` points JAX at a cache directory under the user's jaxae cache
($JAXAE_CACHE_DIR/xla, default ~/.cache/jaxae/xla), so a second run of the same config loads
its compiled steps instead of compiling them; train.py calls it, and turns on the store of
programs.py that also skips tracing them, unless `--config.compilation_cache=False`.

`begin(enabled)`, `mark(label)` and `report()` time the phases of a run (`--config.
profile_startup=True`): each mark records the seconds since the process started, and with
`wait=` blocks on arrays first so asynchronous dispatch does not hide a compile. Off, they do
nothing. The process-wide state is this module's `_timeline`, set once by train.py.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import time
from typing import Any


def cache_root() -> pathlib.Path:
    """$JAXAE_CACHE_DIR, else ~/.cache/jaxae (jaxae.data.cache's rule, without importing it)."""
    env = os.environ.get("JAXAE_CACHE_DIR", "")
    return pathlib.Path(env or "~/.cache/jaxae").expanduser()


def enable_compilation_cache(directory: str | pathlib.Path | None = None) -> pathlib.Path:
    """Turns on JAX's persistent compilation cache in `directory` (default cache_root()/xla).

    Every compilation is cached, however short: on a 2-core CPU the many small ones (the
    epoch permutation, initialisation, the eval step) add up to seconds. Returns the directory.
    """
    import jax

    path = pathlib.Path(directory) if directory else cache_root() / "xla"
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size threshold
    return path


# optional packages tensorboardX imports at import time that jaxae never hands it: torch (2 s,
# only to accept torch tensors; jaxae passes Python floats) and boto3 (0.15 s, for s3:// logdirs;
# a workdir is a local path)
UNUSED_BY_TENSORBOARDX = ("torch", "boto3")


def import_without(module: str, unused: tuple[str, ...] = UNUSED_BY_TENSORBOARDX) -> Any:
    """`importlib.import_module(module)` with `import NAME` failing inside it for each NAME in
    `unused` that is not already loaded; afterwards they import normally again."""
    import importlib

    blocked = [name for name in unused if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # a None entry makes `import NAME` raise ImportError
    try:
        return importlib.import_module(module)
    finally:
        for name in blocked:
            sys.modules.pop(name, None)


def exit_now(code: int = 0) -> None:
    """Ends a finished process at once: runs the atexit handlers (logging's flush, weakref
    finalizers), flushes stdout and stderr, then `os._exit(code)`, skipping Python's teardown of
    JAX and every module, 0.4-0.5 s of a train.py run on a 2-core CPU (its files are closed by
    then). Returns, so Python exits as usual, while a non-daemon thread still runs or under a
    profiler or tracer (`python -m cProfile train.py ...` writes its profile after this)."""
    import atexit
    import threading

    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    main = threading.current_thread()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not main):
        return
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_functions is None:  # not CPython
        return
    run_exit_functions()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing reaches it
            stream.flush()
    os._exit(code)


def process_seconds() -> float:
    """Seconds since this process started (from /proc on Linux; else since this module loaded)."""
    try:
        ticks = int(pathlib.Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(pathlib.Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _LOADED


_LOADED = time.perf_counter()


class Timeline:
    """Labelled times since the process started, and JAX compilations counted between them."""

    def __init__(self) -> None:
        self.offset = process_seconds() - time.perf_counter()
        # label, seconds, compilations made, loaded from a cache, seconds spent loading them
        self.marks: list[tuple[str, float, int, int, float]] = []
        self.requests = self.hits = self.stored = 0  # JAX's cache: requests, hits; jaxae's store
        self.loading = 0.0
        import jax

        from jaxae.runtime import programs

        def on_event(event: str, **_: Any) -> None:
            if event == "/jax/compilation_cache/compile_requests_use_cache":
                self.requests += 1
            elif event == "/jax/compilation_cache/cache_hits":
                self.hits += 1
            elif event == programs.LOADED:
                self.stored += 1

        def on_duration(event: str, seconds: float, **_: Any) -> None:
            if event in ("/jax/compilation_cache/cache_retrieval_time_sec", programs.LOAD_SECONDS):
                self.loading += seconds

        jax.monitoring.register_event_listener(on_event)
        jax.monitoring.register_event_duration_secs_listener(on_duration)

    def mark(self, label: str, wait: Any = None) -> bool:
        if any(label == m[0] for m in self.marks):
            return False  # a mark inside the loop counts its first time only
        if wait is not None:
            import jax

            jax.block_until_ready(wait)
        now = self.offset + time.perf_counter()
        loaded = self.hits + self.stored
        self.marks.append((label, now, self.requests - self.hits, loaded, self.loading))
        return wait is not None

    def report(self) -> str:
        """One line per phase: its seconds, then XLA compilations made and programs loaded from
        JAX's persistent cache or jaxae's program store (with the seconds the loading took)."""
        lines = ["start-up profile (seconds since the process started):"]
        before, compiled, cached, loading = 0.0, 0, 0, 0.0
        for label, at, n_compiled, n_cached, n_loading in self.marks:
            lines.append(
                f"  {at:7.2f}  +{at - before:6.2f}  {label} "
                f"[{n_compiled - compiled} compiled, {n_cached - cached} from cache"
                + (f" in {n_loading - loading:.2f} s]" if n_cached > cached else "]")
            )
            before, compiled, cached, loading = at, n_compiled, n_cached, n_loading
        return "\n".join(lines)


_timeline: Timeline | None = None


def begin(enabled: bool) -> None:
    """Starts the process's timeline when `enabled` (with a first mark: the imports)."""
    global _timeline
    _timeline = Timeline() if enabled else None
    mark("python and imports")


def mark(label: str, wait: Any = None) -> bool:
    """Records `label` now (after blocking on `wait`); a no-op unless `begin(True)` ran.
    True when it blocked on `wait` (the caller's timing of those arrays is then spoilt)."""
    return _timeline is not None and _timeline.mark(label, wait)


def report() -> str | None:
    """The breakdown so far, or None when profiling is off."""
    return None if _timeline is None else _timeline.report()
