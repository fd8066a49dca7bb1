"""2×2 max-pool as the maximum of each window's four corners, with a one-select gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def max_pool_2x2(x: Array, *, ceil: bool = False) -> Array:
    """2×2 max-pool, stride 2: x [B, H, W, C] → [B, ⌊H/2⌋, ⌊W/2⌋, C] (ceil=True: ⌈H/2⌉, ⌈W/2⌉).

    The same values and gradients as `nn.max_pool` (odd edges padded with -inf for ceil), much
    faster on CPU than reduce_window's select-and-scatter gradient: the elementwise maximum of
    the four window corners, with a custom gradient that goes to the first maximum of each
    window in row-major order, exactly as `nn.max_pool` and PyTorch do, ties included.

    Not reshape-and-max: XLA:CPU compiled that form's autodiff gradient (which compares the
    input with the maximum) wrongly after BatchNorm, off by up to 48% in conv_deep's encoder
    gradients against float64 (tests/fast/test_fast_ops.py, benchmarks/ATTEMPTS.md attempt 11).
    """
    b, h, w, c = x.shape
    if ceil:
        x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
    else:
        x = x[:, : h - h % 2, : w - w % 2]
    return _max_pool_corners(x)


def _corners(x: Array) -> tuple[Array, Array, Array, Array]:
    """The four corners of every 2×2 window of x [B, 2h, 2w, C], row-major: 4 × [B, h, w, C]."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c)
    return x[:, :, 0, :, 0], x[:, :, 0, :, 1], x[:, :, 1, :, 0], x[:, :, 1, :, 1]


@jax.custom_jvp
def _max_pool_corners(x: Array) -> Array:
    a, b, c, d = _corners(x)
    return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))


@_max_pool_corners.defjvp
def _max_pool_corners_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    # A JVP rule, not a VJP one, so that forward mode (jax.jvp, jacfwd: the contractive
    # penalties) works too; reverse mode transposes it into one select at full resolution.
    (x,), (dx,) = primals, tangents
    y = _max_pool_corners(x)
    a, b, c, _ = _corners(x)
    # row-major index 0..3 of each window's first maximum; the tangent is taken from there
    first = jnp.where(a == y, 0, jnp.where(b == y, 1, jnp.where(c == y, 2, 3))).astype(jnp.int8)
    corner = np.arange(4, dtype=np.int8).reshape(1, 1, 2, 1, 2, 1)  # [B, h, 2, w, 2, C] order
    take = corner == first[:, :, None, :, None, :]
    n, h, w, ch = y.shape
    windows = dx.reshape(n, h, 2, w, 2, ch)
    return y, jnp.sum(jnp.where(take, windows, jnp.zeros((), dx.dtype)), axis=(2, 4))
