"""Adversarial training: a critic on the code (adversarial autoencoder, Makhzani et al. 2015) or
on the image (VAE-GAN, Larsen et al. 2016), trained in the same jitted step as the autoencoder.

The critic's parameters, its Optax state and its PRNG key live in `TrainState.disc`
({'params', 'opt_state', 'rng'}), so checkpoints hold them and a resumed run is exact. One step
differentiates `ae_loss + disc_loss` with respect to (autoencoder params, critic params):
the autoencoder's generator term sees the critic through `stop_gradient`, and the critic sees
the autoencoder's outputs through `stop_gradient`, so each gradient is that of its own loss
only (tests/test_adversarial.py checks both) while the forward pass runs once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from jaxae import models
from jaxae.rng import stream

KINDS = ("none", "code", "image")
# models whose code may be matched to a standard normal: unbounded codes only (a ReLU or
# sigmoid code cannot take negative values); vanilla needs code_activation='linear'
CODE_MODELS = ("linear", "vanilla", "vae", "conv_vae")
Array = jax.Array
# hook(variables, logits, aux, target) -> (penalty [B], terms {name: [B]}), called by the objective
Hook = Callable[..., tuple[Array, dict[str, Array]]]


class CodeCritic(nn.Module):
    """MLP on the flattened code: z [B, ...] → (logit [B], last hidden features [B, h])."""

    hidden: tuple[int, ...] = (256, 256)

    @nn.compact
    def __call__(self, z: Array) -> tuple[Array, Array]:
        h = z.reshape(z.shape[0], -1)
        for width in self.hidden:
            h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
        return nn.Dense(1)(h)[:, 0], h


class ImageCritic(nn.Module):
    """Strided 3×3 convs with LeakyReLU on images in [0, 1]: x [B, H, W, C] → (logit [B],
    the last conv's activations [B, H', W', F], Larsen's 'learned similarity' layer)."""

    features: tuple[int, ...] = (32, 64)

    @nn.compact
    def __call__(self, x: Array) -> tuple[Array, Array]:
        h = 2.0 * x - 1.0
        for width in self.features:
            h = nn.leaky_relu(nn.Conv(width, (3, 3), strides=2, padding="SAME")(h), 0.2)
        return nn.Dense(1)(h.reshape(h.shape[0], -1))[:, 0], h


def _bce(logit: Array, label: float) -> Array:
    return optax.sigmoid_binary_cross_entropy(logit, jnp.full_like(logit, label))


def prior_sample(key: Array, shape: tuple[int, ...], axis_name: str | None) -> Array:
    """N(0, I) draws [B, ...] of this device's batch. Under shard_map every device draws the
    global batch and keeps its own slice, so 1 device, jit and pmap see the same samples."""
    if axis_name is None:
        return jax.random.normal(key, shape)
    n = lax.psum(1, axis_name)
    full = jax.random.normal(key, (n * shape[0], *shape[1:]))
    return lax.dynamic_slice_in_dim(full, lax.axis_index(axis_name) * shape[0], shape[0])


@dataclasses.dataclass(frozen=True)
class Adversary:
    """The critic of one run, its optimizer and the weights of its terms (built by `build`)."""

    kind: str  # 'code' or 'image'
    critic: nn.Module
    tx: optax.GradientTransformation
    model: nn.Module  # the autoencoder (decodes prior samples)
    weight: float  # of adv_loss in the autoencoder's loss
    feature_weight: float  # image: of disc_feature_loss (feature matching on the critic's features)
    prior_samples: bool  # image: prior codes decoded are fakes too (VAEs)

    def init(self, seed: int, variables: dict, image_shape: tuple[int, ...]) -> dict[str, Any]:
        """{'params', 'opt_state', 'rng'} of a fresh critic for `variables` of the model."""
        init_key, rng = jax.random.split(stream(jax.random.PRNGKey(seed), "adversary"))
        x = jnp.zeros((1, *image_shape), jnp.float32)
        if self.kind == "code":
            aux = jax.eval_shape(lambda: self.model.apply(variables, x, train=False)[1])
            x = jnp.zeros(aux["z"].shape, jnp.float32)
        params = self.critic.init(init_key, x)["params"]
        return {"params": params, "opt_state": self.tx.init(params), "rng": rng}

    def hook(self, critic_params: Any, key: Array, axis_name: str | None) -> Hook:
        """The objective's adversarial hook for this step (`key` draws the prior samples)."""
        frozen = lax.stop_gradient(critic_params)

        def critic(params, inputs):
            return self.critic.apply({"params": params}, inputs)

        def hook(variables, logits, aux, target):
            if self.kind == "code":  # real: prior draws; fake: the encoder's codes
                real, fakes = prior_sample(key, aux["z"].shape, axis_name), [aux["z"]]
            else:  # real: the images; fake: their reconstructions (and decoded prior draws)
                real, fakes = target, [jax.nn.sigmoid(logits)]
                if self.prior_samples:
                    z = prior_sample(key, aux["mu"].shape, axis_name)
                    decoded = self.model.apply(variables, z, train=True, method="decode")
                    fakes.append(jax.nn.sigmoid(decoded))
            real_logit, real_features = critic(critic_params, real)
            fake_logits = [critic(critic_params, lax.stop_gradient(f))[0] for f in fakes]
            disc_loss = _bce(real_logit, 1.0) + sum(_bce(f, 0.0) for f in fake_logits)
            fooled = [critic(frozen, f) for f in fakes]  # gradients reach the autoencoder only
            terms = {
                "disc_loss": disc_loss,
                "adv_loss": sum(_bce(logit, 1.0) for logit, _ in fooled),
                "disc_real": (real_logit > 0).astype(jnp.float32),  # accuracy on real
                "disc_fake": (fake_logits[0] < 0).astype(jnp.float32),  # and on fakes[0]
            }
            penalty = self.weight * terms["adv_loss"]
            if self.feature_weight:
                diff = fooled[0][1] - lax.stop_gradient(real_features)
                terms["disc_feature_loss"] = jnp.mean(diff.reshape(diff.shape[0], -1) ** 2, axis=1)
                penalty = penalty + self.feature_weight * terms["disc_feature_loss"]
            return penalty, terms

        return hook

    def gradients(self, objective, state, x: Array, rng: Array, axis_name: str | None):
        """(loss, terms, batch_stats, autoencoder grads, critic grads, next critic key).

        One forward and backward pass of `ae_loss + mean(disc_loss)` with respect to both
        parameter sets; the stop_gradients in `hook` keep each gradient to its own loss.
        """
        key, next_rng = jax.random.split(state.disc["rng"])

        def total(params, critic_params):
            hook = self.hook(critic_params, key, axis_name)
            loss, (terms, batch_stats, _) = objective(
                params, state.batch_stats, x, rng, train=True, step=state.step, adversary=hook
            )
            return loss + jnp.mean(terms["disc_loss"]), (loss, terms, batch_stats)

        grad_fn = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)
        (_, (loss, terms, batch_stats)), (grads, critic_grads) = grad_fn(
            state.params, state.disc["params"]
        )
        return loss, terms, batch_stats, grads, critic_grads, next_rng

    def apply_gradients(self, disc: dict, grads: Any, next_rng: Array, norm) -> tuple[dict, dict]:
        """The critic's Optax update: (new disc state, {'disc_grad_norm'})."""
        updates, opt_state = self.tx.update(grads, disc["opt_state"], disc["params"])
        params = optax.apply_updates(disc["params"], updates)
        new = {"params": params, "opt_state": opt_state, "rng": next_rng}
        return new, {"disc_grad_norm": norm(grads)}


def build(config: ml_collections.ConfigDict, model: nn.Module) -> Adversary | None:
    """The run's Adversary from `config.adversarial`, or None when kind is 'none'."""
    a = config.adversarial
    if a.kind == "none":
        return None
    if a.kind == "code":
        critic = CodeCritic(hidden=tuple(a.hidden))
    else:
        critic = ImageCritic(features=tuple(a.features))
    # Adam with beta1 = 0.5, the usual choice for GAN critics (Radford et al. 2015): a long
    # momentum lags behind a generator that keeps moving
    tx = optax.adam(float(a.learning_rate), b1=0.5)
    if config.skip_nonfinite:  # as the autoencoder's: a NaN update is dropped, not applied
        tx = optax.apply_if_finite(tx, max_consecutive_errors=config.skip_nonfinite)
    return Adversary(
        kind=a.kind,
        critic=critic,
        tx=tx,
        model=model,
        weight=float(a.weight),
        feature_weight=float(a.feature_weight),
        prior_samples=bool(a.prior_samples) and models.is_vae(model),
    )
