"""Checks of config fields: types against the schema, ranges, choices, and each section's rules.

`jaxae.config.validate` runs them in order; each failure is one ConfigError line naming the field
and the fix.
"""

from __future__ import annotations

import math
from typing import Any

import ml_collections

from jaxae.errors import UserError

CORRUPTIONS = ("none", "gaussian", "masking", "salt_pepper", "blur", "downsample")
CONTRACTIVE_METHODS = ("exact", "hutchinson", "closed_form")
BINARIZATIONS = ("none", "static", "dynamic")
CODEC_QUANTIZATIONS = ("noise", "ste")
MAX_INT = 2**31 - 1  # sizes, steps and seeds beyond int32 overflow inside JAX


class ConfigError(UserError, ValueError):
    """A config that cannot run; the message is one line naming the field and the fix."""


def check_schema(config: ml_collections.ConfigDict, schema: ml_collections.ConfigDict, prefix=""):
    for key in config:
        path = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(
                f"unknown config field {path!r}; known fields here: {', '.join(sorted(schema))}"
            )
        value, default = config[key], schema[key]
        if isinstance(default, ml_collections.ConfigDict):
            if not isinstance(value, ml_collections.ConfigDict):
                raise ConfigError(f"config field {path!r} must be a group of fields, got {value!r}")
            if key != "model":
                check_schema(value, default, prefix=path + ".")
            continue
        want = type(default)
        ok = isinstance(value, want) or (want is float and isinstance(value, int))
        if isinstance(value, bool) and want is not bool:
            ok = False
        if not ok:
            raise ConfigError(
                f"config field {path!r} must be {want.__name__}, got {value!r} "
                f"({type(value).__name__}); e.g. --config.{path}={default!r}"
            )
        check_number(value, path)


def check_number(value: Any, path: str) -> None:
    """Floats must be finite, ints fit in int32: NaN, inf or 10**40 would fail deep in JAX."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config field {path!r} must be a finite number, got {value}")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise ConfigError(f"config field {path!r} is {value}; it must be at most {MAX_INT}")


def check_model_sizes(model: ml_collections.ConfigDict) -> None:
    """Every integer of a model field is a size (width, features, stride, latent dim): > 0."""
    for key in model:
        value = model[key]
        path = f"model.{key}"
        if isinstance(value, bool) or not isinstance(value, int | float | tuple):
            continue
        numbers = value if isinstance(value, tuple) else (value,)
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, int | float):
                continue
            check_number(number, path)
            if key.endswith("_rate"):
                if not 0 <= number < 1:
                    raise ConfigError(f"config field {path!r} must be in [0, 1), got {value}")
            elif isinstance(number, int) and number <= 0:
                raise ConfigError(f"config field {path!r} must hold sizes > 0, got {value!r}")


def positive(config, *paths, allow_zero=False):
    for path in paths:
        value = config
        for part in path.split("."):
            value = value[part]
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ConfigError(f"config field {path!r} must be {bound}, got {value}")


def choice(value, name, choices):
    if value not in choices:
        raise ConfigError(f"config field {name!r} is {value!r}; choose one of {', '.join(choices)}")


def validate_selection(config: ml_collections.ConfigDict) -> None:
    """The validation split and early stopping: a fraction in [0, 1), patience only with one."""
    fraction = config.dataset.validation_fraction
    if not 0 <= fraction < 1:
        raise ConfigError(
            f"config field 'dataset.validation_fraction' must be in [0, 1), got {fraction}; "
            f"e.g. --config.dataset.validation_fraction=0.1"
        )
    positive(config, "early_stopping.patience", allow_zero=True)
    if config.early_stopping.patience and not fraction:
        raise ConfigError(
            "early stopping watches a validation loss, never test: add "
            "--config.dataset.validation_fraction=0.1 (or set --config.early_stopping.patience=0)"
        )


def validate_dataset(fields: ml_collections.ConfigDict) -> None:
    """The dataset's name (a built-in name or `kind:path`) and the fields that source reads."""
    from jaxae.data import load, scaling, stream

    try:
        key, _ = load.parse_name(fields.name)
    except ValueError as e:
        raise ConfigError(f"config field 'dataset.name': {e}") from None
    choice(fields.scaling, "dataset.scaling", scaling.SCALINGS)
    choice(fields.stream, "dataset.stream", stream.STREAM_MODES)
    if fields.split_seed < 0:
        raise ConfigError(
            f"config field 'dataset.split_seed' must be >= 0, got {fields.split_seed}"
        )
    if not 0 < fields.test_fraction < 1:
        raise ConfigError(
            f"config field 'dataset.test_fraction' must be in (0, 1), got {fields.test_fraction}"
        )
    load.check_fields(key, {f: fields[f] for f in load.OPTIONS if f in fields})


def validate_regularizers(config: ml_collections.ConfigDict) -> None:
    """The denoise, sparse, contractive, pretrain and new vae fields, with the model they need."""
    from jaxae import models

    positive(
        config,
        "denoise.sigma",
        "denoise.p",
        "sparse.l1",
        "sparse.kl_beta",
        "contractive.weight",
        "pretrain.steps_per_layer",
        "vae.kl_warmup_steps",
        "vae.nll_examples",
        "perceptual.ssim_weight",
        "perceptual.ms_ssim_weight",
        "perceptual.feature_weight",
        "vq.commitment",
        allow_zero=True,
    )
    positive(config, "contractive.num_probes", "pretrain.learning_rate", "vae.nll_samples")
    choice(config.denoise.kind, "denoise.kind", CORRUPTIONS)
    choice(config.contractive.method, "contractive.method", CONTRACTIVE_METHODS)
    choice(config.vae.binarize, "vae.binarize", BINARIZATIONS)
    if config.denoise.p > 1:
        raise ConfigError(f"config field 'denoise.p' must be in [0, 1], got {config.denoise.p}")
    if not 0 < config.sparse.rho < 1:
        raise ConfigError(f"config field 'sparse.rho' must be in (0, 1), got {config.sparse.rho}")
    name = config.model.get("name")
    sigmoid_code = name == "vanilla" and config.model.get("code_activation") == "sigmoid"
    is_vae = name in models.MODELS and models.is_vae(models.MODELS[name])
    if is_vae and (config.sparse.l1 or config.sparse.kl_beta):
        raise ConfigError(
            "sparse penalties act on a deterministic code, not a VAE's; set --config.sparse.l1=0 "
            "and --config.sparse.kl_beta=0 or pick a non-VAE model"
        )
    if config.sparse.kl_beta and not sigmoid_code:
        raise ConfigError(
            "sparse.kl_beta needs a code in (0, 1): use --config.model.name=vanilla with "
            "--config.model.code_activation=sigmoid"
        )
    single_layer = sigmoid_code and tuple(config.model.get("hidden", (0,))) == ()
    closed_form = config.contractive.method == "closed_form" and config.contractive.weight
    if closed_form and not single_layer:
        raise ConfigError(
            "contractive.method='closed_form' holds for one sigmoid layer only: use model vanilla "
            "with hidden=() and code_activation='sigmoid', or --config.contractive.method=exact"
        )
    if config.pretrain.steps_per_layer and name != "hinton":
        raise ConfigError(
            f"greedy layer-wise pretraining needs the stacked 'hinton' model, not {name!r}; set "
            f"--config.pretrain.steps_per_layer=0"
        )


def validate_feature_loss(config: ml_collections.ConfigDict) -> None:
    """perceptual.feature_weight > 0 needs feature_workdir: a trained classifier (its
    classifier.json) of the model's image shape."""
    fields = config.perceptual
    if not fields.feature_weight:
        return
    make = "train one with: python -m jaxae.classifier --workdir DIR"
    if not fields.feature_workdir:
        raise ConfigError(
            f"perceptual.feature_weight={fields.feature_weight} needs the feature network: set "
            f"--config.perceptual.feature_workdir=DIR ({make})"
        )
    from jaxae import classifier  # here: it imports flax, which only this loss needs

    try:
        info = classifier.read_info(fields.feature_workdir)
    except classifier.ClassifierError as e:
        raise ConfigError(f"perceptual.feature_workdir: {e}") from None
    shape = tuple(config.model.get("image_shape", (28, 28, 1)))
    if tuple(info["image_shape"]) != shape:
        have = "×".join(map(str, info["image_shape"]))
        raise ConfigError(
            f"the classifier in {fields.feature_workdir} takes {have} images but the model "
            f"makes {'×'.join(map(str, shape))}; train one on this data: python -m "
            f"jaxae.classifier --workdir DIR --config.dataset.name={config.dataset.name}"
        )


def validate_codec(config: ml_collections.ConfigDict) -> None:
    """codec.* fields: valid values, and set only for the 'codec' model that uses them."""
    positive(config, "codec.lmbda")
    choice(config.codec.quantization, "codec.quantization", CODEC_QUANTIZATIONS)
    from jaxae.config import default_config

    defaults = default_config()
    if config.model.get("name") != "codec":
        if dict(config.codec) != dict(defaults.codec):
            raise ConfigError(
                "codec.lmbda and codec.quantization act on the learned codec only; use "
                "--config.model.name=codec or leave the codec fields at their defaults"
            )
        return
    # the codec's objective is rate + lmbda * MSE alone: fields of other objectives would be
    # silently ignored, so they are refused
    unused = [
        path
        for path in ("loss", "denoise.kind", "sparse.l1", "sparse.kl_beta", "contractive.weight")
        + tuple(f"perceptual.{k}" for k in defaults.get("perceptual", {}))
        if get(config, path) != get(defaults, path)
    ]
    if unused:
        raise ConfigError(
            f"the learned codec trains on bpp + codec.lmbda * MSE only; reset {', '.join(unused)}"
        )
    if config.get("compute_dtype", "float32") != "float32":
        raise ConfigError(
            "the learned codec computes in float32 (its coder tables and decoder must be "
            "reproducible); set --config.compute_dtype=float32"
        )


def get(config: ml_collections.ConfigDict, path: str) -> Any:
    for part in path.split("."):
        config = config[part]
    return config


def validate_adversarial(config: ml_collections.ConfigDict) -> None:
    """adversarial.*: valid values, set only with a kind, and a model the kind can act on."""
    from jaxae import adversarial, models
    from jaxae.config import default_config

    a, defaults = config.adversarial, default_config().adversarial
    choice(a.kind, "adversarial.kind", adversarial.KINDS)
    positive(config, "adversarial.learning_rate")
    positive(config, "adversarial.weight", "adversarial.feature_weight", allow_zero=True)
    for field in ("hidden", "features"):
        if not a[field] or any(
            isinstance(n, bool) or not isinstance(n, int) or n <= 0 for n in a[field]
        ):
            raise ConfigError(
                f"config field 'adversarial.{field}' must hold sizes > 0, got {a[field]!r}; "
                f"e.g. --config.adversarial.{field}={defaults[field]!r}"
            )
    name = config.model.get("name")
    if a.kind == "none":
        changed = sorted(k for k in a if k != "kind" and a[k] != defaults[k])
        if changed:
            raise ConfigError(
                f"adversarial.{changed[0]} acts only with a critic; set "
                f"--config.adversarial.kind=code or image, or leave it at its default"
            )
        return
    if name == "codec" or (name in models.MODELS and models.is_vq(models.MODELS[name])):
        raise ConfigError(
            f"adversarial training needs a continuous code and the common objective, not model "
            f"{name!r}; set --config.adversarial.kind=none"
        )
    if a.kind == "code":
        unbounded = name != "vanilla" or config.model.get("code_activation") == "linear"
        if name not in adversarial.CODE_MODELS or not unbounded:
            raise ConfigError(
                f"adversarial.kind='code' matches the code to N(0, I), which needs an unbounded "
                f"code: use model {', '.join(adversarial.CODE_MODELS)} (vanilla with "
                f"--config.model.code_activation=linear), not {name!r}"
                + (
                    f" with code_activation={config.model.get('code_activation')!r}"
                    if name == "vanilla"
                    else ""
                )
            )
        if a.feature_weight or a.prior_samples:
            raise ConfigError(
                "adversarial.feature_weight and prior_samples act on an image critic; set "
                "--config.adversarial.kind=image or leave them at their defaults"
            )
    is_vae = name in models.MODELS and models.is_vae(models.MODELS[name])
    if a.prior_samples and not is_vae:
        raise ConfigError(
            f"adversarial.prior_samples decodes N(0, I) codes, which needs a VAE, not {name!r}; "
            f"set --config.adversarial.prior_samples=False"
        )
