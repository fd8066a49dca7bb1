"""The pure steps: `train_step(state, batch, rng) -> (state, metrics)` and the masked eval step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxae import adversarial, data, losses, models, objectives, optim
from jaxae.rng import stream
from jaxae.runtime import parallel

Metrics = dict[str, jax.Array]
Norm = Callable[[Any], jax.Array]


class TrainState(struct.PyTreeNode):
    """Everything that changes during training. The optimizer itself is bound by closure."""

    step: jax.Array  # int32 scalar: number of updates applied
    params: Any
    batch_stats: Any  # BatchNorm running statistics ({} for models without BatchNorm)
    opt_state: Any


class AdversarialState(TrainState):
    """TrainState of adversarial runs: with the critic's {'params', 'opt_state', 'rng'}
    (jaxae/adversarial.py), so checkpoints hold it. Other runs keep TrainState and with it the
    layout of their checkpoints."""

    disc: Any


def init_state(
    model: nn.Module,
    tx: optax.GradientTransformation,
    image_shape: tuple[int, ...],
    seed: int,
    adversary: adversarial.Adversary | None = None,
) -> TrainState:
    """Initial parameters from `seed` for inputs of `image_shape` (H, W, C), and with an
    `adversary` its critic's."""
    key = stream(jax.random.PRNGKey(seed), "init")
    x = jnp.zeros((1, *image_shape), jnp.float32)
    variables = model.init({"params": key, "dropout": key, "sample": key}, x, train=False)
    params = variables["params"]
    fields = {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "batch_stats": variables.get("batch_stats", {}),
        "opt_state": tx.init(params),
    }
    if adversary is None:
        return TrainState(**fields)
    return AdversarialState(**fields, disc=adversary.init(seed, variables, image_shape))


def make_train_step(
    objective: objectives.Objective,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    axis_name: str | None = None,
    norm: Norm = optim.global_norm,
    adversary: adversarial.Adversary | None = None,
) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """The pure step `train_step(state, batch, rng) -> (state, metrics)`.

    batch: [B, H, W, C] uint8. rng is the run's train key; the step uses fold_in(rng, step), so a
    resumed run draws exactly the keys an uninterrupted one would. With `axis_name` the step runs
    per device (shard_map, batch [B/n]) and averages gradients, metrics and BatchNorm statistics
    over that axis (parallel.sync); without it, jit's SPMD sharding does the same. `norm` gives
    the logged gradient and update norms. With an `adversary` the same step also updates its
    critic (state.disc) from gradients averaged the same way.
    """

    def train_step(state: TrainState, batch: jax.Array, rng: jax.Array):
        step_rng = parallel.device_rng(jax.random.fold_in(rng, state.step), axis_name)
        x = data.to_float(batch)
        if adversary is None:
            grad_fn = jax.value_and_grad(objective, has_aux=True)
            (loss, (terms, batch_stats, _)), grads = grad_fn(
                state.params, state.batch_stats, x, step_rng, train=True, step=state.step
            )
        else:
            loss, terms, batch_stats, grads, critic_grads, next_rng = adversary.gradients(
                objective, state, x, step_rng, axis_name
            )
        grads, batch_stats = parallel.sync((grads, batch_stats), axis_name)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {name: jnp.mean(value) for name, value in terms.items()}
        metrics["loss"] = loss
        metrics = parallel.sync(metrics, axis_name)
        metrics["grad_norm"] = norm(grads)
        metrics["update_norm"] = norm(updates)
        metrics["learning_rate"] = schedule(state.step)
        critic = {}
        if adversary is not None:
            critic_grads = parallel.sync(critic_grads, axis_name)
            disc, disc_metrics = adversary.apply_gradients(state.disc, critic_grads, next_rng, norm)
            critic, metrics = {"disc": disc}, {**metrics, **disc_metrics}
        if isinstance(opt_state, optax.ApplyIfFiniteState):  # config.skip_nonfinite > 0
            # a rejected update is all zeros (finite); one applied after too many NaNs is not
            skipped = ~opt_state.last_finite & jnp.isfinite(metrics["update_norm"])
            batch_stats = jax.tree.map(
                lambda new, old: jnp.where(skipped, old, new), batch_stats, state.batch_stats
            )
            metrics["update_skipped"] = skipped.astype(jnp.float32)
            metrics["skipped_updates"] = opt_state.total_notfinite.astype(jnp.float32)
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            batch_stats=batch_stats,
            opt_state=opt_state,
            **critic,
        )
        return new_state, metrics

    return train_step


def image_metrics(logits: jax.Array, x: jax.Array, fast: bool = False) -> Metrics:
    """Per-example mse, psnr (dB) and ssim of sigmoid(logits) against x [B, H, W, C]: [B] each.

    With `fast`, SSIM's Gaussian window runs as matrix products (jaxae.fast.blur), the same
    values to float rounding."""
    import dm_pix  # here, not at the top: it takes 0.2-1.7 s to import; the train step needs none

    from jaxae.fast import blur

    recon = jax.nn.sigmoid(logits)
    filter_size = min(11, x.shape[1], x.shape[2])
    window = blur.valid_gaussian_blur(filter_size) if fast else None
    return {
        "mse": losses.mse(logits, x),
        "psnr": losses.psnr(recon, x),
        "ssim": dm_pix.ssim(recon, x, filter_size=filter_size, filter_fn=window),
    }


def make_eval_step(
    objective: objectives.Objective, model: nn.Module, fast: bool = False
) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array], Metrics]:
    """`eval_step(state, batch, mask, rng) -> sums`: masked sums of every per-example metric
    (`fast`: SSIM by the fast ops' blur).

    batch [B, H, W, C] uint8, mask [B]. The loss terms come from the objective (for a VAE the
    ELBO from a sampled code); mse, psnr and ssim score the reconstruction the model gives in
    eval mode, which for a VAE decodes the mean code, as `jaxae.load(...).reconstruct` does.
    """

    def eval_step(state: TrainState, batch: jax.Array, mask: jax.Array, rng: jax.Array):
        x = data.to_float(batch)
        _, (terms, _, logits) = objective(state.params, state.batch_stats, x, rng, train=False)
        if models.is_vae(model):
            variables = {"params": state.params, "batch_stats": state.batch_stats}
            logits, _ = model.apply({k: v for k, v in variables.items() if v}, x, train=False)
        terms = {**terms, **image_metrics(logits, x, fast)}
        return {name: jnp.sum(value * mask) for name, value in terms.items()}

    return eval_step
