"""The config schema: every field a run accepts, its default, and validation before compiling."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from typing import Any

import ml_collections

from jaxae.errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
RECONSTRUCTION_LOSSES = ("mse", "bce", "l1")
LIKELIHOODS = ("bernoulli", "gaussian")
PARALLEL_MODES = ("jit", "pmap")  # jaxae.parallel.MODES
SCAN_MODES = ("auto", "on", "off")  # scan_epoch
FAST_OPS_MODES = ("auto", "on", "off")  # fast_ops
COMPUTE_DTYPES = ("float32", "bfloat16")  # compute_dtype (jaxae.models.COMPUTE_DTYPES)
CORRUPTIONS = ("none", "gaussian", "masking", "salt_pepper", "blur", "downsample")
CONTRACTIVE_METHODS = ("exact", "hutchinson", "closed_form")
BINARIZATIONS = ("none", "static", "dynamic")
CODEC_QUANTIZATIONS = ("noise", "ste")
MAX_INT = 2**31 - 1  # sizes, steps and seeds beyond int32 overflow inside JAX


class ConfigError(UserError, ValueError):
    """A config that cannot run; the message is one line naming the field and the fix."""


def default_config() -> ml_collections.ConfigDict:
    """Every field a run understands, with its default. Config files start from this."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = 10
    c.num_steps = 0  # > 0 overrides num_epochs
    c.learning_rate = 1e-3
    c.optimizer = "adam"
    c.weight_decay = 0.0
    c.momentum = 0.9  # sgd only
    c.schedule = "constant"
    c.warmup_steps = 0
    c.grad_clip = 0.0  # global-norm clip; 0 = off
    c.skip_nonfinite = 0  # > 0: skip up to this many NaN/inf updates in a row (counted); 0 = stop
    c.loss = "mse"  # reconstruction loss for non-VAE models
    c.eval_every = 0  # steps; 0 = once per epoch
    c.checkpoint_every = 0  # steps; 0 = at every evaluation
    c.keep_checkpoints = 3
    c.log_every = 50  # steps between train lines in metrics.jsonl / TensorBoard
    c.progress = True  # progress bar on stderr
    c.parallel = "jit"  # 'jit': SPMD over a device mesh; 'pmap': the same step under shard_map
    # 'on': dataset on the device(s) once, lax.scan over steps per dispatch; 'off': one step per
    # dispatch from a host iterator; 'auto': 'on' unless convolutions on XLA:CPU (parallel.py)
    c.scan_epoch = "auto"
    c.steps_per_dispatch = 0  # scan_epoch only: steps per dispatch; 0 = up to a whole epoch
    # 'on': the XLA:CPU forms of jaxae/fast (same parameters, same math); 'off': plain Flax
    # layers; 'auto': 'on' only when the default backend is the CPU
    c.fast_ops = "auto"
    # the dtype the layers compute in; parameters, optimizer state, BatchNorm statistics, losses
    # and metrics stay float32. 'bfloat16' turns fast_ops 'auto' off ('on' is refused).
    c.compute_dtype = "float32"
    # train.py: XLA's persistent compilation cache in $JAXAE_CACHE_DIR/xla (~/.cache/jaxae/xla),
    # so a rerun of a config compiles nothing; and a breakdown of the start-up seconds
    c.compilation_cache = True
    c.profile_startup = False

    c.dataset = ml_collections.ConfigDict()
    c.dataset.name = "fashion_mnist"
    c.dataset.data_dir = ""  # prepared TFDS directory; '' = $TFDS_DATA_DIR or the TFDS default
    c.dataset.max_train_examples = 0  # 0 = all
    c.dataset.max_test_examples = 0  # 0 = all
    c.dataset.exclude_class = -1  # >= 0: drop this class from train (anomaly detection)
    # Own data: name 'folder:DIR', 'array:FILE.npy|.npz', 'csv:FILE', 'parquet:FILE',
    # 'sklearn:NAME' or 'tfds:NAME'.
    # A field the chosen source does not read must stay at its default (jaxae.data.load.FIELDS).
    c.dataset.test_path = ""  # a separate test file or folder; '' = split the one source
    c.dataset.test_fraction = 0.2  # of one source's rows held out as test (seeded by split_seed)
    c.dataset.split_seed = 0  # the train/test split's own seed: the same rows for every run seed
    c.dataset.label_column = ""  # tables: the column of class labels
    c.dataset.anomaly_column = ""  # tables: 0/1 column; 1 = anomaly, never trained on
    c.dataset.scaling = "minmax"  # vectors: per-feature [0, 1] from train's range, or 'none'
    c.dataset.resize = False  # folder: resize images to model.image_shape instead of refusing
    c.dataset.stream = "auto"  # array .npy: memory-map from disk ('auto': when it would not fit)
    # > 0: hold out this fraction of train (seeded by `seed`) for evaluation during training,
    # the best checkpoint and early stopping; test is then scored only at the end. 0 = evaluate
    # on test during training (monitoring only: no best checkpoint, no early stopping)
    c.dataset.validation_fraction = 0.0

    c.early_stopping = ml_collections.ConfigDict()
    c.early_stopping.patience = 0  # stop after this many evaluations without a better
    # validation loss; 0 = off (needs dataset.validation_fraction > 0)

    c.vae = ml_collections.ConfigDict()
    c.vae.beta = 1.0
    c.vae.likelihood = "bernoulli"
    c.vae.gaussian_sigma = 0.1  # fixed decoder std for the Gaussian likelihood
    c.vae.kl_warmup_steps = 0  # KL weight rises linearly 0 -> beta over these steps; 0 = off
    c.vae.binarize = "none"  # Bernoulli data: 'static' (x > 0.5) or 'dynamic' (resampled)
    c.vae.nll_samples = 100  # importance samples K of the test NLL in summary.json
    c.vae.nll_examples = 1000  # test images scored for the NLL; 0 = no NLL

    # Regularizers added to the objective (jaxae/objectives.py); every default is off.
    c.denoise = ml_collections.ConfigDict()
    c.denoise.kind = "none"  # gaussian, masking, salt_pepper, blur or downsample (×2)
    c.denoise.sigma = 0.3  # gaussian noise std; blur: the kernel std in pixels
    c.denoise.p = 0.25  # fraction of pixels masked (masking) or set to 0/1 (salt_pepper)

    c.sparse = ml_collections.ConfigDict()
    c.sparse.l1 = 0.0  # lambda of the L1 penalty on the code; 0 = off
    c.sparse.kl_beta = 0.0  # beta of the KL(rho || rho_hat) penalty on a sigmoid code; 0 = off
    c.sparse.rho = 0.05  # target mean activation of each code unit

    c.contractive = ml_collections.ConfigDict()
    c.contractive.weight = 0.0  # lambda of ||J_f(x)||_F^2; 0 = off
    c.contractive.method = "exact"  # exact, hutchinson or closed_form (one sigmoid layer)
    c.contractive.num_probes = 1  # Gaussian probes of the hutchinson estimate

    # Perceptual terms added to any image model's objective (jaxae/perceptual.py); 0 = off.
    # The weights multiply per-image values: 1 − SSIM is in [0, 2], while a VAE's loss is in
    # nats per image (hundreds), so a VAE needs weights near the number of pixels to feel them.
    c.perceptual = ml_collections.ConfigDict()
    c.perceptual.ssim_weight = 0.0  # weight of 1 − SSIM
    c.perceptual.ms_ssim_weight = 0.0  # weight of 1 − MS-SSIM (3 scales on 28×28)

    c.vq = ml_collections.ConfigDict()  # vector-quantized models (conv_vq) only
    c.vq.commitment = 0.25  # beta of the commitment loss beta ||z_e - sg(e)||^2

    # The learned codec (model 'codec'): loss = bpp + lmbda * MSE on the 0..255 scale.
    c.codec = ml_collections.ConfigDict()
    c.codec.lmbda = 0.01
    c.codec.quantization = "noise"  # training: uniform noise, or 'ste' (rounding, identity grad)

    c.pretrain = ml_collections.ConfigDict()
    c.pretrain.steps_per_layer = 0  # greedy layer-wise pretraining (hinton model); 0 = off
    c.pretrain.learning_rate = 1e-3

    # Model fields depend on the model; configs fill them from the model's own defaults.
    c.model = ml_collections.ConfigDict({"name": "vanilla"})
    return c


def model_defaults(name: str) -> dict[str, Any]:
    """The JSON form of model `name`'s fields at their defaults (tuples as lists)."""
    return json.loads(json.dumps(dict(model_config(name))))


def model_config(name: str, **overrides: Any) -> ml_collections.ConfigDict:
    """`{'name': name, **the model's fields with their defaults, **overrides}` as a ConfigDict."""
    from jaxae import models

    if name not in models.MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(models.MODELS)}")
    fields = {"name": name}
    config_fields = models.model_fields(models.MODELS[name])  # not Flax's parent/name, nor ops
    for f in dataclasses.fields(models.MODELS[name]):
        if f.name in config_fields and f.default is not dataclasses.MISSING:
            fields[f.name] = f.default
    unknown = set(overrides) - set(fields)
    if unknown:
        raise ConfigError(
            f"model {name!r} has no field(s) {sorted(unknown)}; fields: {sorted(fields)}"
        )
    fields.update(overrides)
    return ml_collections.ConfigDict(fields)


def _check_schema(config: ml_collections.ConfigDict, schema: ml_collections.ConfigDict, prefix=""):
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
                _check_schema(value, default, prefix=path + ".")
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
        _check_number(value, path)


def _check_number(value: Any, path: str) -> None:
    """Floats must be finite, ints fit in int32: NaN, inf or 10**40 would fail deep in JAX."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config field {path!r} must be a finite number, got {value}")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise ConfigError(f"config field {path!r} is {value}; it must be at most {MAX_INT}")


def _check_model_sizes(model: ml_collections.ConfigDict) -> None:
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
            _check_number(number, path)
            if key.endswith("_rate"):
                if not 0 <= number < 1:
                    raise ConfigError(f"config field {path!r} must be in [0, 1), got {value}")
            elif isinstance(number, int) and number <= 0:
                raise ConfigError(f"config field {path!r} must hold sizes > 0, got {value!r}")


def _positive(config, *paths, allow_zero=False):
    for path in paths:
        value = config
        for part in path.split("."):
            value = value[part]
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ConfigError(f"config field {path!r} must be {bound}, got {value}")


def _choice(value, name, choices):
    if value not in choices:
        raise ConfigError(f"config field {name!r} is {value!r}; choose one of {', '.join(choices)}")


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Refuses unknown fields, wrong types and impossible values with one clear line.

    Runs before any data is read or anything compiles. Returns the config unchanged.
    """
    from jaxae import models

    _check_schema(config, default_config())
    _positive(config, "batch_size", "eval_batch_size", "learning_rate", "keep_checkpoints")
    _positive(config, "log_every")
    _positive(
        config,
        "num_epochs",
        "num_steps",
        "weight_decay",
        "warmup_steps",
        "grad_clip",
        "eval_every",
        "checkpoint_every",
        "steps_per_dispatch",
        "skip_nonfinite",
        "seed",
        "dataset.max_train_examples",
        "dataset.max_test_examples",
        "vae.beta",
        allow_zero=True,
    )
    _positive(config, "vae.gaussian_sigma")
    _validate_regularizers(config)
    _validate_selection(config)
    _validate_codec(config)
    if config.num_steps == 0 and config.num_epochs == 0:
        raise ConfigError("nothing to train: set --config.num_epochs or --config.num_steps > 0")
    _choice(config.optimizer, "optimizer", OPTIMIZERS)
    _choice(config.parallel, "parallel", PARALLEL_MODES)
    _choice(config.scan_epoch, "scan_epoch", SCAN_MODES)
    _choice(config.fast_ops, "fast_ops", FAST_OPS_MODES)
    _choice(config.compute_dtype, "compute_dtype", COMPUTE_DTYPES)
    _choice(config.schedule, "schedule", SCHEDULES)
    _choice(config.loss, "loss", RECONSTRUCTION_LOSSES)
    _choice(config.vae.likelihood, "vae.likelihood", LIKELIHOODS)
    _validate_dataset(config.dataset)
    _check_model_sizes(config.model)
    model_fields = dict(config.model)
    name = model_fields.pop("name", None)
    try:
        models.create_model(name, **model_fields)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    return config


def _validate_selection(config: ml_collections.ConfigDict) -> None:
    """The validation split and early stopping: a fraction in [0, 1), patience only with one."""
    fraction = config.dataset.validation_fraction
    if not 0 <= fraction < 1:
        raise ConfigError(
            f"config field 'dataset.validation_fraction' must be in [0, 1), got {fraction}; "
            f"e.g. --config.dataset.validation_fraction=0.1"
        )
    _positive(config, "early_stopping.patience", allow_zero=True)
    if config.early_stopping.patience and not fraction:
        raise ConfigError(
            "early stopping watches a validation loss, never test: add "
            "--config.dataset.validation_fraction=0.1 (or set --config.early_stopping.patience=0)"
        )


def _validate_dataset(fields: ml_collections.ConfigDict) -> None:
    """The dataset's name (a built-in name or `kind:path`) and the fields that source reads."""
    from jaxae.data import load, scaling, stream

    try:
        key, _ = load.parse_name(fields.name)
    except ValueError as e:
        raise ConfigError(f"config field 'dataset.name': {e}") from None
    _choice(fields.scaling, "dataset.scaling", scaling.SCALINGS)
    _choice(fields.stream, "dataset.stream", stream.STREAM_MODES)
    if fields.split_seed < 0:
        raise ConfigError(
            f"config field 'dataset.split_seed' must be >= 0, got {fields.split_seed}"
        )
    if not 0 < fields.test_fraction < 1:
        raise ConfigError(
            f"config field 'dataset.test_fraction' must be in (0, 1), got {fields.test_fraction}"
        )
    load.check_fields(key, {f: fields[f] for f in load.OPTIONS if f in fields})


def _validate_regularizers(config: ml_collections.ConfigDict) -> None:
    """The denoise, sparse, contractive, pretrain and new vae fields, with the model they need."""
    from jaxae import models

    _positive(
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
        "vq.commitment",
        allow_zero=True,
    )
    _positive(config, "contractive.num_probes", "pretrain.learning_rate", "vae.nll_samples")
    _choice(config.denoise.kind, "denoise.kind", CORRUPTIONS)
    _choice(config.contractive.method, "contractive.method", CONTRACTIVE_METHODS)
    _choice(config.vae.binarize, "vae.binarize", BINARIZATIONS)
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


def _validate_codec(config: ml_collections.ConfigDict) -> None:
    """codec.* fields: valid values, and set only for the 'codec' model that uses them."""
    _positive(config, "codec.lmbda")
    _choice(config.codec.quantization, "codec.quantization", CODEC_QUANTIZATIONS)
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
        if _get(config, path) != _get(defaults, path)
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


def _get(config: ml_collections.ConfigDict, path: str) -> Any:
    for part in path.split("."):
        config = config[part]
    return config


def to_json(config: ml_collections.ConfigDict) -> str:
    """The config as indented JSON (tuples become lists)."""
    return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)


def from_dict(d: dict) -> ml_collections.ConfigDict:
    """Inverse of `to_json` after `json.loads`: lists in model fields become tuples again."""
    d = json.loads(json.dumps(d))  # deep copy

    def tuples(x):
        if isinstance(x, dict):
            return {k: tuples(v) for k, v in x.items()}
        if isinstance(x, list):
            return tuple(tuples(v) for v in x)
        return x

    return ml_collections.ConfigDict(tuples(d))


def load_file(path: str | pathlib.Path) -> ml_collections.ConfigDict:
    """Runs `get_config()` of a config file such as configs/conv_deep.py (jaxae/config_file.py);
    a missing or broken file is one ConfigError line."""
    from jaxae import config_file

    return config_file.load_file(path)


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> None:
    """Applies `FIELD=VALUE` strings (dotted paths) in place; unknown fields and values of the
    wrong type are refused with a line that shows the fields and a valid value."""
    from jaxae import config_file

    config_file.apply_overrides(config, overrides)
