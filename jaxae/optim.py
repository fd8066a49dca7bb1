"""The Optax optimizer and learning-rate schedule named by a config."""

from __future__ import annotations

import ml_collections
import optax


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
        tx = optax.chain(optax.clip_by_global_norm(config.grad_clip), tx)
    if config.skip_nonfinite:  # outermost, so the train step can read its counters
        tx = optax.apply_if_finite(tx, max_consecutive_errors=config.skip_nonfinite)
    return tx, schedule
