"""The training objective: a pure function of (params, batch_stats, x, rng) built from a config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxae import contractive, corruption, losses, models, perceptual, vae
from jaxae.rng import stream

# objective(params, batch_stats, x, rng, train=..., step=None, adversary=None)
#   -> (loss, (terms, new_batch_stats, logits))
#   x: [B, H, W, C] float32 in [0, 1]; terms: name -> [B] per-example values; step: the update
#   count (int32 scalar) during training, for schedules inside the loss such as KL warm-up;
#   adversary: an adversarial hook (jaxae/adversarial.py, training only) whose penalty [B] is
#   added and whose terms (adv_loss, disc_loss, ...) are logged.
Objective = Callable[..., tuple[jax.Array, tuple[dict[str, jax.Array], Any, jax.Array]]]


def _vae_forward(module: nn.Module, x: jax.Array, key: jax.Array, train: bool):
    """Encode, draw z = mu + sigma * eps with an explicit key, decode. Used as `apply(method=)`."""
    mu, logvar = module.encode(x, train=train)
    eps = jax.random.normal(key, mu.shape, mu.dtype)
    z = mu + jnp.exp(0.5 * logvar) * eps
    return module.decode(z, train=train), {"z": z, "mu": mu, "logvar": logvar}


def make_objective(config: ml_collections.ConfigDict, model: nn.Module) -> Objective:
    """Builds the loss for `model` from the config's `loss`, `vae`, `denoise`, `sparse` and
    `contractive` fields.

    Non-VAE models: mean over pixels of the reconstruction loss (`mse`, `bce` or `l1`).
    VAEs: negative ELBO in nats per image, recon + beta * KL, with the ELBO itself as a term; the
    KL weight warms up over `vae.kl_warmup_steps` and Bernoulli data can be binarized.
    Denoising corrupts the input during training only (evaluation scores clean inputs); the loss
    is always against the clean input. Sparse and contractive penalties are added with their
    weights and logged by name (`l1`, `sparsity_kl`, `mean_activation`, `contractive`).
    The contractive penalty encodes in eval mode (BatchNorm running statistics, no dropout), so
    that each example's Jacobian depends on that example only.
    Vector-quantized models add the codebook loss and `vq.commitment` times the commitment
    loss, and log both with the batch's code `perplexity` and codebook `usage`.
    SSIM and MS-SSIM losses (`perceptual.ssim_weight`, `perceptual.ms_ssim_weight`) add
    weight · (1 − SSIM) of the reconstruction against the target, logged as `ssim_loss` and
    `ms_ssim_loss` (the eval metric `ssim` stays the SSIM itself). The feature-matching loss
    (`perceptual.feature_weight`) adds weight · the classifier's activation distance
    (perceptual.feature_loss; the classifier of `perceptual.feature_workdir`, read here once),
    logged as `feature_loss`.
    Every term is returned per example so the step can log it and evaluation can sum it.
    The learned codec has its own objective (rate + λ · distortion, jaxae/codec/objective.py).
    """
    if isinstance(model, models.Codec):
        from jaxae.codec import objective as codec_objective

        return codec_objective.make_objective(config, model)
    is_vae = models.is_vae(model)
    is_vq = models.is_vq(model) and model.quantized
    commitment = float(config.vq.commitment)
    recon_loss = losses.RECONSTRUCTION[config.loss]
    beta = float(config.vae.beta)
    likelihood = config.vae.likelihood
    sigma = float(config.vae.gaussian_sigma)
    warmup = int(config.vae.kl_warmup_steps)
    binarization = config.vae.binarize if is_vae else "none"
    denoise = config.denoise
    sparse_l1, sparse_beta, rho = (
        float(config.sparse.l1),
        float(config.sparse.kl_beta),
        float(config.sparse.rho),
    )
    cae = config.contractive
    cae_weight = float(cae.weight)
    distortions = {  # term name -> (weight, loss of (logits, target) -> [B])
        "ssim_loss": (float(config.perceptual.ssim_weight), perceptual.ssim_loss),
        "ms_ssim_loss": (float(config.perceptual.ms_ssim_weight), perceptual.ms_ssim_loss),
    }
    if config.perceptual.feature_weight:
        distortions["feature_loss"] = (
            float(config.perceptual.feature_weight),
            perceptual.feature_loss(config.perceptual.feature_workdir),
        )

    def encode_fn(variables):
        """x [B, ...] -> codes [B, K] in eval mode (the mean for VAEs)."""

        def f(xb):
            z = model.apply(variables, xb, train=False, method=model.encode)
            return z[0] if is_vae else z

        return f

    def objective(params, batch_stats, x, rng, *, train: bool, step=None, adversary=None):
        variables = {"params": params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        dropout_key, sample_key = stream(rng, "dropout"), stream(rng, "sample")
        target = vae.binarize(x, binarization, stream(rng, "binarize"))
        inputs = target
        if train:
            inputs = corruption.corrupt(
                target,
                stream(rng, "noise"),
                denoise.kind,
                sigma=float(denoise.sigma),
                p=float(denoise.p),
            )
        mutable = ["batch_stats"] if (train and batch_stats) else False
        if is_vae:
            args, kwargs = (inputs, sample_key, train), {"method": _vae_forward}
        else:
            args, kwargs = (inputs,), {"train": train}
        out = model.apply(
            variables, *args, rngs={"dropout": dropout_key}, mutable=mutable, **kwargs
        )
        (logits, aux), updates = out if mutable else (out, {})
        new_batch_stats = updates.get("batch_stats", batch_stats)

        if is_vae:
            recon = -vae.log_likelihood(logits, target, likelihood, sigma)
            kl = losses.gaussian_kl(aux["mu"], aux["logvar"])
            weight = vae.kl_weight(beta, warmup, step if train else None)
            per_example = recon + weight * kl
            terms = {"recon": recon, "kl": kl, "elbo": -(recon + kl)}
            if warmup and train:
                terms["kl_weight"] = jnp.broadcast_to(weight, kl.shape)
        else:
            per_example = recon_loss(logits, target)
            terms = {config.loss: per_example}
            z = aux["z"]
            if sparse_l1 or sparse_beta:
                terms["mean_activation"] = losses.mean_activation(z)
            if sparse_l1:
                terms["l1"] = losses.code_l1(z)
                per_example = per_example + sparse_l1 * terms["l1"]
            if sparse_beta:
                terms["sparsity_kl"] = losses.sparsity_kl(z, rho)
                per_example = per_example + sparse_beta * terms["sparsity_kl"]
            if is_vq:
                vq_terms = losses.vq_terms(aux, model.num_embeddings)
                per_example = (
                    per_example + vq_terms["codebook"] + commitment * vq_terms["commitment"]
                )
                terms.update(vq_terms)
        if adversary is not None:
            penalty, adversarial_terms = adversary(variables, logits, aux, target)
            per_example = per_example + penalty
            terms.update(adversarial_terms)
        for name, (weight, distortion) in distortions.items():
            if weight:
                terms[name] = distortion(logits, target)
                per_example = per_example + weight * terms[name]
        if cae_weight:
            closed_form = cae.method == "closed_form"  # one sigmoid layer: Vanilla, hidden=()
            kernel = params[model.code_layer_name()]["kernel"] if closed_form else None
            terms["contractive"] = contractive.contractive_penalty(
                encode_fn(variables),
                inputs,
                method=cae.method,
                num_probes=int(cae.num_probes),
                key=stream(rng, "probe"),
                kernel=kernel,
            )
            per_example = per_example + cae_weight * terms["contractive"]
        if "mse" not in terms:
            terms["mse"] = losses.mse(logits, x)
        terms["loss"] = per_example
        return jnp.mean(per_example), (terms, new_batch_stats, logits)

    return objective
