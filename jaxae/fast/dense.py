"""nn.Dense whose kernel gradient is a row-major matmul on XLA:CPU; the same values otherwise."""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

Array = jax.Array


def dense_dot_general(
    lhs: Array,
    rhs: Array,
    dimension_numbers: Any,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> Array:
    """`lax.dot_general` for `nn.Dense` (its `dot_general` hook): x [..., I] · W [I, O] → [..., O].

    The same values and derivatives in every mode; only the kernel gradient's form changes.
    Autodiff writes it as xᵀ·g with x's batch axis contracted, a dot that XLA:CPU runs in its
    own kernel; here x is transposed into a row-major xᵀ first, so the gradient is a plain
    matmul that goes to XLA:CPU's faster library kernels (benchmarks/ATTEMPTS.md, attempt 12).
    Any other contraction goes to `lax.dot_general` unchanged.
    """
    (lc, rc), (lb, rb) = dimension_numbers
    plain = tuple(lc) == (lhs.ndim - 1,) and tuple(rc) == (0,) and not lb and not rb
    if not plain or rhs.ndim != 2 or precision is not None or preferred_element_type is not None:
        return jax.lax.dot_general(
            lhs, rhs, dimension_numbers, precision, preferred_element_type=preferred_element_type
        )
    out = matmul(lhs.reshape(-1, lhs.shape[-1]), rhs)
    return out.reshape(*lhs.shape[:-1], rhs.shape[1])


@jax.custom_jvp
def matmul(x: Array, w: Array) -> Array:
    """x [N, I] @ w [I, O] → [N, O], whose reverse-mode kernel gradient reads a row-major xᵀ."""
    return x @ w


@functools.partial(matmul.defjvp, symbolic_zeros=True)
def _matmul_jvp(primals: tuple[Array, Array], tangents: tuple[Any, Any]) -> tuple[Array, Array]:
    (x, w), (dx, dw) = primals, tangents
    terms = [] if isinstance(dx, SymbolicZero) else [dx @ w]
    if not isinstance(dw, SymbolicZero):
        # The barrier keeps XLA from folding the transpose back into the dot, so reverse mode
        # computes the kernel gradient from a row-major xᵀ.
        x_t = jax.lax.optimization_barrier(x.T).T
        terms.append(x_t @ dw)
    y = x @ w
    return y, sum(terms[1:], start=terms[0]) if terms else jnp.zeros_like(y)


def dense(features: int, **kwargs: Any) -> nn.Dense:
    """`nn.Dense(features, ...)` with `dense_dot_general`: the same parameters and values."""
    return nn.Dense(features, dot_general=dense_dot_general, **kwargs)
