"""Keep freed host memory for reuse, so XLA:CPU's per-step buffers do not page-fault every step.

XLA:CPU allocates each execution's temporaries as one block (88 MB for a conv_deep step at batch
128) with posix_memalign on a worker thread. glibc serves a block that large from a fresh mmap
and returns it with munmap when the step ends, so every step touches new pages: 21,000 page
faults and half a core of kernel time per conv_deep step (benchmarks/README.md, attempt 5).
With one malloc arena, no mmap and no trimming, freed blocks stay in the heap and the next
step reuses them. `train.py` and the benchmarks call `reuse_freed_memory()` before JAX starts
its threads; the price is that the process keeps its peak heap until it exits.
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
