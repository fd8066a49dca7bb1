"""The global norm as matrix-vector products (no tree reduction on XLA:CPU), and Optax's
global-norm clipping computed with it."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

# Leaves with at least this many entries (and 2+ dimensions) are squared-summed as a
# matrix-vector product; smaller ones by a plain sum.
MATVEC_MIN_SIZE = 4096


def global_norm(tree: Any) -> jax.Array:
    """‖tree‖₂ over all leaves, the value of `optax.tree.norm(tree)` (to float rounding): [].

    Each large leaf's sum of squares is a product with a ones vector: as a reduction, XLA:CPU
    rewrites it into a 32×32 tree reduction (a reduce-window, then a reduce), which took 0.5 ms
    of a 2.7 ms vanilla step and 0.9 of 6.9 ms in deep_fc's (benchmarks/ATTEMPTS.md, attempt 14).
    The barrier keeps XLA from folding the product back into a reduction.
    """
    total = jnp.zeros((), jnp.float32)
    for leaf in jax.tree.leaves(tree):
        if leaf.ndim >= 2 and leaf.size >= MATVEC_MIN_SIZE:
            rows = leaf.reshape(-1, leaf.shape[-1])
            ones = jax.lax.optimization_barrier(jnp.ones((rows.shape[1],), rows.dtype))
            squares = jnp.sum(jnp.dot(jnp.square(rows), ones, preferred_element_type=jnp.float32))
        else:
            squares = jnp.sum(jnp.square(leaf))
        total = total + squares.astype(jnp.float32)
    return jnp.sqrt(total)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """`optax.clip_by_global_norm(max_norm)` computed with `global_norm`: the same rule (scale
    the updates by max_norm / norm when norm ≥ max_norm) and the same (empty) state, so a
    checkpoint of either optimizer restores into the other."""

    def update(updates: Any, state: optax.EmptyState, params: Any = None) -> tuple[Any, Any]:
        del params
        norm = global_norm(updates)
        keep = norm < max_norm
        clipped = jax.tree.map(
            lambda t: jnp.where(keep, t, (t / norm.astype(t.dtype)) * max_norm), updates
        )
        return clipped, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
