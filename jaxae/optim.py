"""The Optax optimizer and learning-rate schedule named by a config, and the global norm."""

from __future__ import annotations

from typing import Any

import jax
import ml_collections
import optax

from jaxae.fast import norm as fast_norm

# Optax's global norm: optax.tree.norm where this Optax has it, optax.global_norm before
_optax_norm = getattr(getattr(optax, "tree", None), "norm", None) or optax.global_norm


def global_norm(tree: Any, *, fast: bool = False) -> jax.Array:
    """‖tree‖₂ over all leaves: []. Optax's, or with `fast` jaxae.fast.norm's matrix-vector form
    of the same value (to float rounding), which XLA:CPU runs without a tree reduction."""
    if fast:
        return fast_norm.global_norm(tree)
    return _optax_norm(tree)


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
    config: ml_collections.ConfigDict, total_steps: int, *, fast: bool = False
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(optimizer, schedule): adam/adamw/sgd, optional global-norm clipping first.

    The clipping is `optax.clip_by_global_norm`, or with `fast` jaxae.fast.norm's form of it:
    the same rule and the same (empty) state, so the optimizer state, and with it the
    checkpoint layout, does not depend on `fast`.

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
        clip = fast_norm.clip_by_global_norm if fast else optax.clip_by_global_norm
        tx = optax.chain(clip(config.grad_clip), tx)
    if config.skip_nonfinite:  # outermost, so the train step can read its counters
        tx = optax.apply_if_finite(tx, max_consecutive_errors=config.skip_nonfinite)
    return tx, schedule
