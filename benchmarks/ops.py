"""Per-op profile of the conv models' hot spots: forward vs forward+backward time, batch 128.

    python benchmarks/ops.py

Plain XLA ops (lax.conv_transpose, reduce_window max-pool) next to the forms of the fast ops
(jaxae/fast/: one stride-1 conv per output phase, the four-corner max-pool), and the C=1
input/output convs, all compiled with the fast train step's options
(fast.process.step_compiler_options).
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from jaxae.fast import process  # noqa: E402
from jaxae.fast.conv_transpose import conv_transpose_by_phases  # noqa: E402
from jaxae.fast.pool import max_pool_2x2  # noqa: E402

BATCH = 128
NHWC = ("NHWC", "HWIO", "NHWC")


def milliseconds(f, *args, reps: int = 7) -> float:
    """Median wall time of jit(f)(*args), compiled as the fast train step is, compilation
    excluded."""
    f = jax.jit(f, compiler_options=process.step_compiler_options(True))
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def with_backward(op, n_args: int):
    """op(*args) → the gradients of sum(op(*args)) with respect to its `n_args` arguments."""
    return jax.grad(lambda *a: jnp.sum(op(*a)), argnums=tuple(range(n_args)))


def row(label: str, op, *args) -> None:
    print(
        f"{label:<44} fwd {milliseconds(op, *args):7.1f} ms   "
        f"fwd+bwd {milliseconds(with_backward(op, len(args)), *args):7.1f} ms",
        flush=True,
    )


def main() -> None:
    key = jax.random.PRNGKey(0)
    for h, c_in, f, padding in [(3, 64, 64, "VALID"), (7, 64, 32, "SAME"), (14, 32, 16, "SAME")]:
        x = jax.random.normal(key, (BATCH, h, h, c_in))
        w = 0.1 * jax.random.normal(key, (3, 3, c_in, f))
        name = f"convT 3x3 s2 {h}x{h}x{c_in}->{f} {padding}"

        def plain(x, w, padding=padding):
            return jax.lax.conv_transpose(x, w, (2, 2), padding, dimension_numbers=NHWC)

        def phases(x, w, padding=padding):
            return conv_transpose_by_phases(x, w, (2, 2), padding)

        row(name + " lax", plain, x, w)
        row(name + " phases", phases, x, w)
    x = jax.random.normal(key, (BATCH, 28, 28, 16))
    row("maxpool 2x2 28x28x16 reduce_window", lambda x: nn.max_pool(x, (2, 2), (2, 2)), x)
    row("maxpool 2x2 28x28x16 corners (fast)", lambda x: max_pool_2x2(x), x)
    for c_in, f in [(1, 16), (16, 1)]:
        x = jax.random.normal(key, (BATCH, 28, 28, c_in))
        w = jax.random.normal(key, (3, 3, c_in, f))

        def conv(x, w):
            return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)

        row(f"conv 3x3 28x28 {c_in}->{f}", conv, x, w)


if __name__ == "__main__":
    main()
