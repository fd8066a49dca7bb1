"""The config schema: every field a run accepts, its default, and validation before compiling."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import ml_collections

from jaxae import config_checks as checks
from jaxae.config_checks import (  # noqa: F401  (re-exported: callers catch config.ConfigError)
    BINARIZATIONS,
    CODEC_QUANTIZATIONS,
    CONTRACTIVE_METHODS,
    CORRUPTIONS,
    MAX_INT,
    ConfigError,
)

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
RECONSTRUCTION_LOSSES = ("mse", "bce", "l1")
LIKELIHOODS = ("bernoulli", "gaussian")
PARALLEL_MODES = ("jit", "pmap")  # jaxae.parallel.MODES
SCAN_MODES = ("auto", "on", "off")  # scan_epoch
FAST_OPS_MODES = ("auto", "on", "off")  # fast_ops
COMPUTE_DTYPES = ("float32", "bfloat16")  # compute_dtype (jaxae.models.COMPUTE_DTYPES)
# fields no compiled program reads: a run that only profiles its start-up, hides its progress
# bar or keeps more checkpoints loads the same stored programs (jaxae.runtime.programs)
HOST_ONLY_FIELDS = ("profile_startup", "progress", "compilation_cache", "keep_checkpoints")


def program_fields(settings: dict) -> dict:
    """`settings` (the config as JSON-able dicts) without HOST_ONLY_FIELDS: what keys a run's
    compiled programs and its measured step memory."""
    return {k: v for k, v in settings.items() if k not in HOST_ONLY_FIELDS}


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
    # train.py: XLA's persistent compilation cache in $JAXAE_CACHE_DIR/xla (~/.cache/jaxae/xla)
    # and the steps' executables in $JAXAE_CACHE_DIR/programs, so a rerun of a config compiles
    # and traces nothing; and a breakdown of the start-up seconds
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
    # weight of the feature-matching loss: the mean squared activation difference of the
    # classifier in feature_workdir (trained by python -m jaxae.classifier --workdir DIR)
    c.perceptual.feature_weight = 0.0
    c.perceptual.feature_workdir = ""

    c.vq = ml_collections.ConfigDict()  # vector-quantized models (conv_vq) only
    c.vq.commitment = 0.25  # beta of the commitment loss beta ||z_e - sg(e)||^2

    # Adversarial training (jaxae/adversarial.py): a critic on the code ('code': adversarial
    # autoencoder, N(0, I) prior) or on the image ('image': VAE-GAN), trained in the same step.
    c.adversarial = ml_collections.ConfigDict()
    c.adversarial.kind = "none"  # none, code or image
    c.adversarial.weight = 1.0  # of the generator's adv_loss (per image) in the loss
    c.adversarial.learning_rate = 2e-4  # the critic's Adam (beta1 = 0.5)
    c.adversarial.hidden = (256, 256)  # code: the critic MLP's widths
    c.adversarial.features = (32, 64)  # image: the critic's stride-2 conv widths
    c.adversarial.feature_weight = 0.0  # image: of feature matching on the last conv (Larsen)
    c.adversarial.prior_samples = False  # image, VAEs: decoded N(0, I) codes are fakes too

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


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Refuses unknown fields, wrong types and impossible values with one clear line.

    Runs before any data is read or anything compiles. Returns the config unchanged.
    """
    from jaxae import models

    checks.check_schema(config, default_config())
    checks.positive(config, "batch_size", "eval_batch_size", "learning_rate", "keep_checkpoints")
    checks.positive(config, "log_every")
    checks.positive(
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
    checks.positive(config, "vae.gaussian_sigma")
    checks.validate_regularizers(config)
    checks.validate_feature_loss(config)
    checks.validate_selection(config)
    checks.validate_codec(config)
    checks.validate_adversarial(config)
    if config.num_steps == 0 and config.num_epochs == 0:
        raise ConfigError("nothing to train: set --config.num_epochs or --config.num_steps > 0")
    checks.choice(config.optimizer, "optimizer", OPTIMIZERS)
    checks.choice(config.parallel, "parallel", PARALLEL_MODES)
    checks.choice(config.scan_epoch, "scan_epoch", SCAN_MODES)
    checks.choice(config.fast_ops, "fast_ops", FAST_OPS_MODES)
    checks.choice(config.compute_dtype, "compute_dtype", COMPUTE_DTYPES)
    checks.choice(config.schedule, "schedule", SCHEDULES)
    checks.choice(config.loss, "loss", RECONSTRUCTION_LOSSES)
    checks.choice(config.vae.likelihood, "vae.likelihood", LIKELIHOODS)
    checks.validate_dataset(config.dataset)
    checks.check_model_sizes(config.model)
    model_fields = dict(config.model)
    name = model_fields.pop("name", None)
    try:
        models.create_model(name, **model_fields)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e).splitlines()[0]) from None
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
