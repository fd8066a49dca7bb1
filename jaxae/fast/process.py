"""Process and compile settings that make training on XLA:CPU faster with the same math.

They come with the fast ops (`fast_ops`); with them off nothing here changes the process (a
run without them only puts JAX's threefry rule back after one with them in the same process).
Two are process-wide and last until it exits, and a library import sets neither: the malloc
setting has to come before JAX's backend starts, so train.py chooses it from the config's mode
and the step memory its last run measured (`before_jax`); the threefry lowering comes with
`for_training(fast)`, which the training loop calls once it has resolved the mode, before the
first step compiles, and which says what applies. One is per compilation:
`step_compiler_options(fast)`, which the train and eval steps are compiled with
(parallel.compile_step, jaxae.train).

- `reuse_freed_memory()`: XLA:CPU allocates each execution's temporaries as one block (88 MB
  for a conv_deep step at batch 128) with posix_memalign on a worker thread. glibc serves a
  block that large from a fresh mmap and unmaps it when the step ends, so every step touched
  new pages: 21,000 page faults and half a core of kernel time per conv_deep step. With one
  malloc arena, no mmap and no trimming, the next step reuses the freed block. The process
  keeps its peak heap until it exits, and its compilations are slower (the threads share one
  arena), so it applies only to a step whose temporaries exceed a thread's heap.
- `unroll_threefry()`: JAX lowers the threefry2x32 hash (every jax.random call: dropout masks,
  fold_in, VAE noise) to a 5-iteration while loop on CPU and to straight-line code elsewhere.
  The loop costs thunks and copies each iteration; the straight-line form computes the same
  bits (tests/fast/test_process.py), made a dispatched deep_fc step 19% faster and compiles
  the initialisation in a third of the time (3.5 against 1.3 s for deep_fc: a loop per
  parameter). Inside a lax.scan epoch it made no step faster and added 1.0-1.5 s to deep_fc's
  epoch compile, so scan epochs compile with JAX's loop (`threefry_lowering`). XLA fuses the
  ops around it differently, so float results may differ in the last bits from an untuned run. It
  re-registers a lowering rule from jax._src, so it applies only to the JAX versions the
  tests cover (THREEFRY_JAX_VERSIONS) and only where those internals are found.
- `step_compiler_options()`: XLA:CPU hands convolutions to YNNPACK by default; its kernels
  were slower than XLA's own (Eigen) ones for the weight gradients of these small NHWC convs,
  so on CPU the steps keep YNNPACK for dots and reductions only. Same math, other rounding.

Measurements: benchmarks/ATTEMPTS.md, attempts 5, 6, 11, 20, 22 and 28.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import functools
import hashlib
import json
import os
import pathlib
from collections.abc import Iterator

from jaxae import config as config_lib

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8


# glibc's largest heap of a thread's malloc arena on 64-bit (HEAP_MAX_SIZE): a larger block
# that a worker thread allocates comes from a fresh mmap whatever mallopt says, unless every
# thread shares the main arena
THREAD_HEAP_BYTES = 64 << 20

# before_jax's note for the start-up line, and where this run's step memory is kept: None
# until before_jax is called
_malloc_note: str | None = None
_step_memory: StepMemory | None = None


def reuse_freed_memory() -> bool:
    """Tell glibc's malloc to keep and reuse freed memory, with one arena for every thread.
    False (and no change) off glibc.

    Only effective before JAX's backend starts: its worker threads take their own malloc
    arenas then, and a block freed in those is unmapped whatever is set later (the page faults
    come back in full; tests/fast/test_process.py). Hence `before_jax`.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl without mallopt)
        return False
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))
    return all(mallopt(param, value) == 1 for param, value in settings)


@dataclasses.dataclass(frozen=True)
class StepMemory:
    """The bytes of temporaries the train step of one config needed when it last ran, kept in
    a small file across runs (train.py: cache_root()/step_memory), so that the next run can
    choose the malloc setting before JAX starts. Keyed on the config alone (the data's shapes
    are not known yet then): it only chooses a setting, never a result."""

    path: pathlib.Path

    @classmethod
    def for_config(cls, directory: str | pathlib.Path, settings: dict) -> StepMemory:
        """`settings`: the config as JSON-able dicts; fields no program reads do not count."""
        text = json.dumps(config_lib.program_fields(settings), sort_keys=True)
        key = hashlib.sha256(text.encode()).hexdigest()[:32]
        return cls(pathlib.Path(directory) / f"{key}.json")

    def read(self) -> int | None:
        """The recorded bytes, or None when nothing (readable) was recorded."""
        try:
            value = json.loads(self.path.read_text())["temp_bytes"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return value if isinstance(value, int) and value >= 0 else None

    def scanned(self) -> bool:
        """Whether that run's steps ran in lax.scan epochs (False when not recorded)."""
        try:
            return json.loads(self.path.read_text()).get("scanned") is True
        except (OSError, ValueError, AttributeError):
            return False

    def write(self, temp_bytes: int, scanned: bool = False) -> None:
        """Records `temp_bytes` and whether the steps ran in scan epochs (atomically: a
        concurrent run reads the old record or this one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")
        record = {"temp_bytes": int(temp_bytes), "scanned": bool(scanned)}
        partial.write_text(json.dumps(record) + "\n")
        partial.replace(self.path)


def before_jax(fast_ops: str, step_memory: StepMemory | None = None) -> None:
    """The malloc setting for a run with `fast_ops` mode 'on', 'auto' or 'off': call it once the
    config is read and before JAX's backend starts (train.py does).

    One arena for every thread makes each compilation slower (its threads contend for the
    arena's lock: a first run of deep_fc 2-5 s slower on a 2-core CPU) and pays only for a step
    whose temporaries exceed THREAD_HEAP_BYTES (conv_deep's 82 MiB at batch 128: 4 s faster
    per epoch). So it applies where `step_memory`, this config's last run, measured that; a
    first run measures it for the next (`record_step_memory`). Steps that run in lax.scan
    epochs allocate their temporaries once a dispatch, not once a step, and there the single
    arena only slows the step (conv_deep's cached epoch 31-33 s against 30-32 s without it).
    The backend is not known yet,
    so the setting follows the mode: 'on' and 'auto' can set it (on an accelerator it only
    keeps the host heap at its peak), 'off' leaves malloc alone.
    """
    global _malloc_note, _step_memory
    _step_memory = step_memory
    if fast_ops == "off":
        _malloc_note = "malloc unchanged (fast ops off)"
        return
    temp = None if step_memory is None else step_memory.read()
    if step_memory is None:
        _malloc_note = "malloc unchanged (step memory is kept only with the compilation cache)"
    elif temp is None:
        _malloc_note = "malloc unchanged (this config's step memory is measured in this run)"
    elif step_memory.scanned():
        _malloc_note = "malloc unchanged (the steps run in scan epochs)"
    elif temp <= THREAD_HEAP_BYTES:
        _malloc_note = (
            f"malloc unchanged (the step's {_mib(temp)} of temporaries fit a thread heap)"
        )
    elif reuse_freed_memory():
        _malloc_note = f"malloc reuses freed memory (the step's {_mib(temp)} of temporaries)"
    else:
        _malloc_note = "malloc unchanged (not glibc)"


def record_step_memory(temp_bytes: int | None, scanned: bool = False) -> None:
    """Keeps the train step's `temp_bytes`, and whether its steps ran in scan epochs, for the
    next run of this config (see before_jax); nothing without a StepMemory or a measurement."""
    if _step_memory is not None and temp_bytes is not None:
        with contextlib.suppress(OSError):  # a read-only cache: the next run measures again
            _step_memory.write(temp_bytes, scanned)


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.0f} MiB"


# whether unroll_threefry last registered the unrolled rule (False: JAX's own CPU rule)
_threefry_unrolled = False

# (major, minor) of the first and last JAX release the unrolled threefry is tested with
THREEFRY_JAX_VERSIONS = ((0, 10), (0, 12))


def _threefry_internals() -> tuple[object, object, object, object] | str:
    """(mlir module, threefry2x32 primitive, its unrolled lowering rule, JAX's CPU rule), or
    why not."""
    import jax

    version = jax.__version__
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return f"JAX {version} is not a release version"
    (lo_major, lo_minor), (hi_major, hi_minor) = THREEFRY_JAX_VERSIONS
    if not (lo_major, lo_minor) <= major_minor <= (hi_major, hi_minor):
        tested = f"{lo_major}.{lo_minor}-{hi_major}.{hi_minor}"
        return f"JAX {version} is outside the tested {tested}"
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as threefry

        return (
            mlir,
            threefry.threefry2x32_p,
            threefry._threefry2x32_lowering_rule,
            threefry._threefry2x32_cpu_lowering_rule,
        )
    except (ImportError, AttributeError):
        return f"JAX {version} lacks the internal threefry lowering rule"


def unroll_threefry(unroll: bool = True) -> str | None:
    """Lower threefry2x32 on CPU with JAX's own unrolled rule, as on GPU and TPU (same bits);
    with `unroll=False`, with JAX's CPU rule again (its loop).

    Returns None once applied, else the reason it was not (and nothing changes): a JAX outside
    THREEFRY_JAX_VERSIONS, or one without the internals. Affects later compilations only.
    """
    found = _threefry_internals()
    if isinstance(found, str):
        return found
    global _threefry_unrolled
    mlir, primitive, unrolled, looped = found
    mlir.register_lowering(primitive, unrolled if unroll else looped, platform="cpu")
    _threefry_unrolled = unroll
    return None


@contextlib.contextmanager
def threefry_lowering(unroll: bool, fast: bool = True) -> Iterator[None]:
    """With `fast`, what compiles inside lowers threefry2x32 unrolled (`unroll`) or with JAX's
    CPU loop; the rule registered before comes back on exit. Without `fast`, or where
    `unroll_threefry` does not apply, nothing changes.

    parallel.make_scan_dispatch compiles its scan epochs inside `threefry_lowering(False)`.
    """
    before = _threefry_unrolled
    applied = fast and unroll != before and unroll_threefry(unroll) is None
    try:
        yield
    finally:
        if applied:
            unroll_threefry(before)


def for_training(fast: bool, scanned: bool = False) -> list[str]:
    """With `fast`: the threefry lowering and the steps' compile options, and notes for the
    start-up line of what applies and what does not, the malloc setting of `before_jax`
    included. Without `fast`: [], and JAX's threefry rule, should an earlier run in this
    process have unrolled it. Call it before the first step compiles.

    `scanned`: the steps run in lax.scan epochs, which make_scan_dispatch compiles with JAX's
    loop (the note says so); the initialisation and the evaluation compile unrolled still.
    """
    if not fast:
        if _threefry_unrolled:
            unroll_threefry(False)
        return []
    if _malloc_note is None:  # too late now: JAX's backend has started
        notes = ["malloc unchanged (process.before_jax was not called before JAX started)"]
    else:
        notes = [_malloc_note]
    skipped = unroll_threefry(True)
    if skipped is not None:
        notes.append(f"threefry as JAX lowers it ({skipped})")
    elif scanned:
        notes.append("threefry unrolled, in the scan epochs as JAX lowers it (faster to compile)")
    else:
        notes.append("threefry unrolled")
    options = step_compiler_options(True)
    notes.append("XLA's own CPU convolutions" if options else "XLA's default compile options")
    return notes


# XLA:CPU's default YNNPACK fusion kinds are individual dots, individual convolutions and
# reductions (compiled HLO compared with each combination); this drops the convolutions.
YNN_FUSION_TYPES = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"


def step_compiler_options(fast: bool = True) -> dict[str, str]:
    """XLA compile options for the train and eval steps: {} without `fast`, off CPU, or where
    this XLA lacks them.

    Probed once per process with a tiny compilation, so a jaxlib that renames the option
    compiles the steps with XLA's defaults instead of failing.
    """
    return dict(_cpu_compiler_options()) if fast else {}


@functools.cache
def _cpu_compiler_options() -> dict[str, str]:
    import jax
    import jax.numpy as jnp

    if jax.default_backend() != "cpu":
        return {}
    options = {"xla_cpu_experimental_ynn_fusion_type": YNN_FUSION_TYPES}
    try:
        jax.jit(jnp.negative).lower(jnp.zeros(1)).compile(compiler_options=options)
    except jax.errors.JaxRuntimeError:  # "No such compile option" in other XLA versions
        return {}
    return options
