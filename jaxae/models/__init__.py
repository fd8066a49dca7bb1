"""The autoencoder models (Flax Linen): encode, decode and __call__ on NHWC images; logits out.

`create_model(name, **fields)` builds MODELS[name] from a config's model section. Every model
is plain Flax by default (`layers.PLAIN`); `fast=True` builds it from `jaxae.fast.OPS`, forms
that XLA:CPU runs faster, with the same parameters and values.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax

from jaxae.models.codec import Codec
from jaxae.models.conv import ConvDeep, ConvFlat, ConvKeras, ConvSimple, ConvVAE
from jaxae.models.fc import VAE, DeepFC, Hinton, Linear, Vanilla
from jaxae.models.layers import (
    ACTIVATIONS,
    BN_MOMENTUM,
    COMPUTE_DTYPES,
    DOWNSAMPLE_MODES,
    INIT_SCHEMES,
    PLAIN,
    RESIZE_METHODS,
    UPSAMPLE_MODES,
    DenseBlock,
    DownBlock,
    Model,
    Ops,
    UpBlock,
    compute_dtype,
)
from jaxae.models.vq import ConvVQ

__all__ = [
    "ACTIVATIONS",
    "BN_MOMENTUM",
    "COMPUTE_DTYPES",
    "DOWNSAMPLE_MODES",
    "INIT_SCHEMES",
    "MODELS",
    "PLAIN",
    "RESIZE_METHODS",
    "UPSAMPLE_MODES",
    "VAE",
    "Codec",
    "ConvDeep",
    "ConvFlat",
    "ConvKeras",
    "ConvSimple",
    "ConvVAE",
    "ConvVQ",
    "DeepFC",
    "DenseBlock",
    "DownBlock",
    "Hinton",
    "Linear",
    "Model",
    "Ops",
    "UpBlock",
    "Vanilla",
    "count_params",
    "create_model",
    "is_vae",
    "is_vq",
    "model_fields",
]

MODELS: dict[str, type[Model]] = {
    "linear": Linear,
    "vanilla": Vanilla,
    "deep_fc": DeepFC,
    "hinton": Hinton,
    "conv_simple": ConvSimple,
    "conv_deep": ConvDeep,
    "conv_keras": ConvKeras,
    "conv_flat": ConvFlat,
    "vae": VAE,
    "conv_vae": ConvVAE,
    "vqvae": ConvVQ,
    "codec": Codec,
}

# Constructor fields that are no model config values: Flax's own, the ops bundle (create_model's
# `fast` picks it) and the compute dtype (its `dtype`, from the run's config.compute_dtype).
_NOT_CONFIG = ("parent", "name", "ops", "dtype")


def is_vae(model: nn.Module | type[nn.Module]) -> bool:
    """True for the variational models, whose encode returns (mu, logvar)."""
    cls = model if isinstance(model, type) else type(model)
    return issubclass(cls, VAE | ConvVAE)


def is_vq(model: nn.Module | type[nn.Module]) -> bool:
    """True for the vector-quantized models, whose aux holds z_e, z_q and the code indices."""
    cls = model if isinstance(model, type) else type(model)
    return issubclass(cls, ConvVQ)


def model_fields(cls: type[nn.Module]) -> list[str]:
    """The config fields of a model class, its own first, then the shared `init_scheme`
    (without Flax's `parent` and `name`, and without `ops` and `dtype`)."""
    names = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in _NOT_CONFIG]
    shared = [f.name for f in dataclasses.fields(Model) if f.name in names]
    return [n for n in names if n not in shared] + shared


def create_model(
    name: str, *, fast: bool = False, dtype: str = "float32", **fields: Any
) -> nn.Module:
    """MODELS[name](**fields) with plain Flax ops, or with `jaxae.fast.OPS` when `fast`; lists
    become tuples (configs read back from JSON hold lists). `dtype` ('float32' or 'bfloat16') is
    the compute dtype; parameters are float32 either way, so a checkpoint loads into both.

    Raises ValueError with one line for an unknown name, an unknown field or a bad option value.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    cls = MODELS[name]
    valid = model_fields(cls)
    unknown = sorted(set(fields) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)} for model {name!r}; "
            f"valid fields: {', '.join(valid)}"
        )
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    fields["dtype"] = compute_dtype(dtype)
    if fast:
        from jaxae.fast import OPS  # jaxae.fast builds its bundle from this package's Ops

        fields["ops"] = OPS
    return cls(**fields)


def count_params(params: Any) -> int:
    """Number of scalars in a pytree of arrays or ShapeDtypeStructs (pass variables['params'])."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))
