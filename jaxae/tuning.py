"""Process-wide settings that make training on XLA:CPU faster with the same math.

`for_training()` applies both; `train.py`, `jaxae.sweep` and the benchmarks call it first thing,
before JAX compiles or runs anything. A library import never does: they change the process.

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

Measurements: benchmarks/README.md, attempts 5 and 6.
"""

from __future__ import annotations

import ctypes
import ctypes.util

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
