"""Settings that make training on XLA:CPU faster with the same math.

Two are process-wide: `for_training()` applies both; `train.py`, `jaxae.sweep` and the
benchmarks call it first thing, before JAX compiles or runs anything. A library import never
does: they change the process. One is per compilation: `step_compiler_options()`, which the
train and eval steps are always compiled with (parallel.compile_step, train.py).

- `reuse_freed_memory()`: XLA:CPU allocates each execution's temporaries as one block (88 MB
  for a conv_deep step at batch 128) with posix_memalign on a worker thread. glibc serves a
  block that large from a fresh mmap and unmaps it when the step ends, so every step touched
  new pages: 21,000 page faults and half a core of kernel time per conv_deep step. With one
  malloc arena, no mmap and no trimming, the next step reuses the freed block. The process
  keeps its peak heap until it exits.
- `unroll_threefry()`: JAX lowers the threefry2x32 hash (every jax.random call: dropout masks,
  fold_in, VAE noise) to a 5-iteration while loop on CPU and to straight-line code elsewhere.
  The loop costs thunks and copies each iteration; the straight-line form computes the same
  bits (tests/test_tuning.py) and made the deep_fc step 19% faster. XLA then fuses the ops
  around it differently, so float results may differ in the last bits from an untuned run.
- `step_compiler_options()`: XLA:CPU hands convolutions to YNNPACK by default; its kernels
  were slower than XLA's own (Eigen) ones for the weight gradients of these small NHWC convs,
  so on CPU the steps keep YNNPACK for dots and reductions only. Same math, other rounding.

Measurements: benchmarks/README.md, attempts 5, 6 and 11.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8


def reuse_freed_memory() -> bool:
    """Tell glibc's malloc to keep and reuse freed memory. False (and no change) off glibc.

    Call it before the first JAX computation: the arena limit applies to threads that have
    not allocated yet, such as the XLA:CPU thread pool.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl without mallopt)
        return False
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))
    return all(mallopt(param, value) == 1 for param, value in settings)


def unroll_threefry() -> bool:
    """Lower threefry2x32 on CPU with JAX's own unrolled rule, as on GPU and TPU. Same bits.

    Uses JAX internals (the lowering rule JAX registers for other platforms); returns False
    and changes nothing if a JAX version no longer has them. Affects later compilations only.
    """
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as threefry

        primitive, rule = threefry.threefry2x32_p, threefry._threefry2x32_lowering_rule
    except (ImportError, AttributeError):
        return False
    mlir.register_lowering(primitive, rule, platform="cpu")
    return True


def for_training() -> dict[str, bool]:
    """Both settings; which ones took effect."""
    return {"reuse_freed_memory": reuse_freed_memory(), "unroll_threefry": unroll_threefry()}


# XLA:CPU's default YNNPACK fusion kinds are individual dots, individual convolutions and
# reductions (compiled HLO compared with each combination); this drops the convolutions.
YNN_FUSION_TYPES = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"


@functools.cache
def step_compiler_options() -> dict[str, str]:
    """XLA compile options for the train and eval steps: {} off CPU or where this XLA lacks them.

    Probed once per process with a tiny compilation, so a jaxlib that renames the option
    compiles the steps with XLA's defaults instead of failing.
    """
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
