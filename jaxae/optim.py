"""The Optax optimizer and learning-rate schedule named by a config, and the global norm."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

# Leaves with at least this many entries (and 2+ dimensions) are squared-summed as a
# matrix-vector product; smaller ones by a plain sum.
_MATVEC_MIN_SIZE = 4096


def global_norm(tree: Any) -> jax.Array:
    """‖tree‖₂ over all leaves, the value of `optax.tree.norm(tree)` (to float rounding).

    Each large leaf's sum of squares is a product with a ones vector: as a reduction, XLA:CPU
    rewrites it into a 32×32 tree reduction (a reduce-window, then a reduce), which took 0.5 ms
    of a 2.7 ms vanilla step and 0.9 of 6.9 ms in deep_fc's (benchmarks/README.md, attempt 14).
    The barrier keeps XLA from folding the product back into a reduction.
    """
    total = jnp.zeros((), jnp.float32)
    for leaf in jax.tree.leaves(tree):
        if leaf.ndim >= 2 and leaf.size >= _MATVEC_MIN_SIZE:
            rows = leaf.reshape(-1, leaf.shape[-1])
            ones = jax.lax.optimization_barrier(jnp.ones((rows.shape[1],), rows.dtype))
            squares = jnp.sum(jnp.dot(jnp.square(rows), ones, preferred_element_type=jnp.float32))
        else:
            squares = jnp.sum(jnp.square(leaf))
        total = total + squares.astype(jnp.float32)
    return jnp.sqrt(total)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """`optax.clip_by_global_norm(max_norm)` computed with `global_norm`: the same rule (scale
    the updates by max_norm / norm when norm ≥ max_norm) and the same (empty) state."""

    def update(updates: Any, state: optax.EmptyState, params: Any = None) -> tuple[Any, Any]:
        del params
        norm = global_norm(updates)
        keep = norm < max_norm
        clipped = jax.tree.map(
            lambda t: jnp.where(keep, t, (t / norm.astype(t.dtype)) * max_norm), updates
        )
        return clipped, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def learning_rate_schedule(config: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
    """constant, cosine decay to 0 over the run, or linear warm-up then cosine."""
    lr = float(config.learning_rate)
    if config.schedule == "constant":
        if config.warmup_steps:
            return optax.linear_schedule(0.0, lr, config.warmup_steps)
        return optax.constant_schedule(lr)
    if config.schedule == "cosine":
        return optax.cosine_decay_schedule(lr, max(total_steps, 1))
    return optax.warmup_cosine_decay_schedule(
        0.0,
        lr,
        warmup_steps=config.warmup_steps,
        decay_steps=max(total_steps, config.warmup_steps + 1),
    )


def make_optimizer(
    config: ml_collections.ConfigDict, total_steps: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(optimizer, schedule): adam/adamw/sgd, optional global-norm clipping first.

    With `skip_nonfinite` N > 0 the whole chain is wrapped in optax.apply_if_finite: an update
    with NaN/inf gradients is dropped (up to N in a row) and counted in the optimizer state.
    """
    schedule = learning_rate_schedule(config, total_steps)
    if config.optimizer == "adam":
        tx = optax.adam(schedule)
        if config.weight_decay:  # L2 penalty through the gradient, as torch.optim.Adam does
            tx = optax.chain(optax.add_decayed_weights(config.weight_decay), tx)
    elif config.optimizer == "adamw":
        tx = optax.adamw(schedule, weight_decay=config.weight_decay)
    else:
        tx = optax.sgd(schedule, momentum=config.momentum or None)
        if config.weight_decay:
            tx = optax.chain(optax.add_decayed_weights(config.weight_decay), tx)
    if config.grad_clip:
        tx = optax.chain(clip_by_global_norm(config.grad_clip), tx)
    if config.skip_nonfinite:  # outermost, so the train step can read its counters
        tx = optax.apply_if_finite(tx, max_consecutive_errors=config.skip_nonfinite)
    return tx, schedule
