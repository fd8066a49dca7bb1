"""Tests for jaxae.models: exact parameter counts, shapes, encode/decode, BatchNorm and errors."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import models

MNIST = (28, 28, 1)
CIFAR = (32, 32, 3)
RNGS = {k: jax.random.key(0) for k in ("params", "dropout", "sample")}


def _abstract_init(model: nn.Module, image_shape, *, train: bool = False, batch: int = 2):
    """((logits, aux), variables) as ShapeDtypeStructs: traces, never compiles or runs."""
    x = jax.ShapeDtypeStruct((batch, *image_shape), jnp.float32)
    return jax.eval_shape(lambda x: model.init_with_output(RNGS, x, train=train), x)


def _variables(model: nn.Module, image_shape, seed: int = 0):
    """Random variables of the model's shapes, drawn by numpy: no RNG kernels to compile."""
    _, abstract = _abstract_init(model, image_shape)
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        a = rng.normal(0.0, 0.1, leaf.shape).astype(np.float32)
        is_var = jax.tree_util.keystr(path).endswith("['var']")
        return np.abs(a) + 0.5 if is_var else a  # running variances must be positive

    return jax.tree_util.tree_map_with_path(draw, abstract)


def _images(image_shape, batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(batch, *image_shape)).astype(np.float32)


def _num_params(name: str, **fields) -> int:
    model = models.create_model(name, **fields)
    _, variables = _abstract_init(model, fields.get("image_shape", MNIST))
    return models.count_params(variables["params"])


def dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv(k: int, c_in: int, c_out: int) -> int:  # also a transposed conv
    return k * k * c_in * c_out + c_out


# ---------------------------------------------------------------------------------------------
# Parameter counts (trainable only: the params collection, BatchNorm scale and bias included)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("vanilla", 484_944),
        ("deep_fc", 1_144_880),
        ("conv_simple", 225),
        ("conv_deep", 83_905),
        ("conv_keras", 4_385),
    ],
)
def test_spec_parameter_counts(name, expected):
    assert _num_params(name) == expected


CONV_DEEP_BN = 2 * (16 + 32 + 64) * 2  # encoder and decoder BatchNorm scale + bias

HAND_COUNTS = [
    ("linear", {}, dense(784, 32) + dense(32, 784)),
    ("linear", {"tied": True}, dense(784, 32) + 784),
    ("linear", {"latent_dim": 10, "tied": True}, dense(784, 10) + 784),
    (
        "hinton",
        {},
        dense(784, 1000)
        + dense(1000, 500)
        + dense(500, 250)
        + dense(250, 30)
        + dense(30, 250)
        + dense(250, 500)
        + dense(500, 1000)
        + dense(1000, 784),
    ),
    (
        "conv_flat",
        {},
        conv(3, 1, 32)
        + conv(3, 32, 64)
        + dense(7 * 7 * 64, 64)
        + dense(64, 7 * 7 * 64)
        + conv(3, 64, 32)
        + conv(3, 32, 1),
    ),
    (
        "vae",
        {},
        dense(784, 512)
        + dense(512, 256)
        + 2 * dense(256, 16)
        + dense(16, 256)
        + dense(256, 512)
        + dense(512, 784),
    ),
    (
        "conv_vae",
        {},
        conv(3, 1, 16)
        + conv(3, 16, 32)
        + conv(3, 32, 64)
        + 2 * dense(3136, 128)
        + dense(128, 3136)
        + conv(3, 64, 32)
        + conv(3, 32, 16)
        + conv(3, 16, 1),
    ),
    # the conv_deep breakdown from the spec: encoder 23,520 incl. BN, decoder convs 60,161
    (
        "conv_deep",
        {},
        conv(3, 1, 16)
        + conv(3, 16, 32)
        + conv(3, 32, 64)
        + conv(3, 64, 64)
        + conv(3, 64, 32)
        + conv(3, 32, 16)
        + conv(3, 16, 1)
        + CONV_DEEP_BN,
    ),
    # options that only change the operation keep the 3×3 parameters
    ("conv_deep", {"upsample": "resize"}, 83_905),
    ("conv_deep", {"downsample": "strided"}, 83_905),
    ("conv_flat", {"upsample": "resize", "downsample": "maxpool"}, 442_177),
    ("conv_vae", {"upsample": "resize", "downsample": "maxpool"}, 1_254_145),
    ("conv_keras", {"downsample": "strided"}, 4_385),
    # skips widen the decoder inputs: dec_1 takes 64+32 channels, dec_2 32+16
    ("conv_deep", {"skip": True}, 83_905 + 9 * 32 * 32 + 9 * 16 * 16),
    ("conv_flat", {"skip": True}, 442_177 + 9 * 32 * 1),
    ("conv_simple", {"upsample": "resize"}, conv(3, 1, 16) + conv(3, 16, 1)),
    # CIFAR: only the first and the last conv see the 3 channels
    ("conv_deep", {"image_shape": CIFAR}, 83_905 - 145 - 160 + conv(3, 3, 16) + conv(3, 16, 3)),
    ("vanilla", {"image_shape": CIFAR}, 484_944 + (3072 - 784) * (256 + 257)),
]


@pytest.mark.parametrize("name, fields, expected", HAND_COUNTS)
def test_hand_computed_parameter_counts(name, fields, expected):
    assert _num_params(name, **fields) == expected


def test_count_params_ignores_batch_stats_when_given_params():
    model = models.create_model("conv_deep")
    _, variables = _abstract_init(model, MNIST)
    assert models.count_params(variables["batch_stats"]) == CONV_DEEP_BN
    assert models.count_params(variables["params"]) == 83_905


# ---------------------------------------------------------------------------------------------
# Shapes: logits have the input's shape for every model, option and image shape


CONV_OPTIONS = {
    "conv_simple": [{}, {"upsample": "resize"}, {"downsample": "strided"}],
    "conv_deep": [
        {},
        {"upsample": "resize"},
        {"upsample": "resize", "resize_method": "bilinear"},
        {"downsample": "strided"},
        {"skip": True},
        {"skip": True, "upsample": "resize", "downsample": "strided"},
    ],
    "conv_keras": [{}, {"downsample": "strided", "resize_method": "bilinear"}],
    "conv_flat": [
        {},
        {"upsample": "resize"},
        {"downsample": "maxpool"},
        {"skip": True},
        {"skip": True, "upsample": "resize", "downsample": "maxpool"},
    ],
    "conv_vae": [{}, {"upsample": "resize", "downsample": "maxpool"}],
}
SHAPE_CASES = [
    (name, fields, shape)
    for name in models.MODELS
    for fields in CONV_OPTIONS.get(name, [{}])
    for shape in (MNIST, CIFAR)
] + [
    # odd and non-square sizes exercise the VALID/SAME choice and the final crop
    (name, fields, (27, 30, 2))
    for name in CONV_OPTIONS
    for fields in CONV_OPTIONS[name][:2] + CONV_OPTIONS[name][3:5]
]


@pytest.mark.parametrize("name, fields, shape", SHAPE_CASES)
def test_logits_have_the_input_shape(name, fields, shape):
    model = models.create_model(name, image_shape=shape, **fields)
    (logits, aux), variables = _abstract_init(model, shape, train=True)
    assert logits.shape == (2, *shape) and logits.dtype == jnp.float32
    assert "z" in aux
    if models.is_vae(model):
        assert aux["mu"].shape == aux["logvar"].shape == aux["z"].shape
    # decode alone (with zero skips for skip=True) gives the same shape from z
    decode = functools.partial(model.apply, train=False, method=model.decode)
    assert jax.eval_shape(decode, variables, aux["z"]).shape == logits.shape


def test_conv_deep_code_sizes():
    for shape, code in ((MNIST, (3, 3, 64)), (CIFAR, (4, 4, 64))):
        (_, aux), _ = _abstract_init(models.create_model("conv_deep", image_shape=shape), shape)
        assert aux["z"].shape == (2, *code)
    (_, aux), _ = _abstract_init(models.create_model("conv_keras"), MNIST)
    assert aux["z"].shape == (2, 4, 4, 8)


def test_wrong_image_shape_is_a_clear_error():
    model = models.create_model("conv_deep")
    with pytest.raises(ValueError, match=r"expects images \[B, 28, 28, 1\].*\(2, 32, 32, 3\)"):
        _abstract_init(model, CIFAR)


# ---------------------------------------------------------------------------------------------
# Numerics (small batch, one compilation per model)


def _encode_decode_and_call(model: nn.Module, variables, x: jax.Array):
    logits, aux = model.apply(variables, x, train=False)
    z = model.apply(variables, x, train=False, method=model.encode)
    if models.is_vae(model):
        z = z[0]  # eval mode decodes the mean
    return logits, aux, z, model.apply(variables, z, train=False, method=model.decode)


@pytest.mark.parametrize(
    "name, fields",
    [(name, {}) for name in models.MODELS]
    + [("conv_deep", {"upsample": "resize", "downsample": "strided", "image_shape": CIFAR})],
)
def test_encode_then_decode_equals_call_in_eval_mode(name, fields):
    model = models.create_model(name, **fields)
    shape = fields.get("image_shape", MNIST)
    run = jax.jit(functools.partial(_encode_decode_and_call, model))
    logits, aux, z, decoded = run(_variables(model, shape), _images(shape))
    np.testing.assert_allclose(z, aux["z"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(decoded, logits, rtol=1e-5, atol=1e-5)
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("name", ["deep_fc", "conv_deep"])
def test_batch_norm_train_updates_batch_stats_and_eval_does_not(name):
    model = models.create_model(name)

    @jax.jit
    def run(variables, x):
        rngs = {"dropout": jax.random.key(1)}
        (logits, _), updates = model.apply(
            variables, x, train=True, rngs=rngs, mutable=["batch_stats"]
        )
        evaluated, _ = model.apply(variables, x, train=False)
        return variables, updates, logits, evaluated

    variables, updates, logits, evaluated = run(_variables(model, MNIST), _images(MNIST, 4))
    assert set(updates) == {"batch_stats"}
    old = jax.tree.leaves(variables["batch_stats"])
    new = jax.tree.leaves(updates["batch_stats"])
    assert len(new) == len(old) > 0
    assert all(not np.allclose(a, b) for a, b in zip(old, new, strict=True))
    assert not np.allclose(logits, evaluated)  # batch statistics (and dropout) in training


def test_vae_samples_with_the_sample_stream_in_training_and_uses_mu_in_eval():
    model = models.create_model("vae")

    @jax.jit
    def run(variables, x):
        sample = lambda k: model.apply(variables, x, train=True, rngs={"sample": k})[1]
        return (
            sample(jax.random.key(2)),
            sample(jax.random.key(3)),
            model.apply(variables, x, train=False)[1],
        )

    a, b, ev = run(_variables(model, MNIST), _images(MNIST, 3))
    assert not np.allclose(a["z"], b["z"])  # a fresh key, a fresh sample
    np.testing.assert_array_equal(a["mu"], b["mu"])
    eps = (a["z"] - a["mu"]) / jnp.exp(0.5 * a["logvar"])  # z = mu + exp(logvar/2)·eps
    assert abs(float(eps.mean())) < 0.5 and 0.6 < float(eps.std()) < 1.4
    np.testing.assert_array_equal(ev["z"], ev["mu"])


def test_linear_tied_decoder_uses_the_transposed_encoder_kernel():
    model = models.create_model("linear", latent_dim=4, tied=True)
    x, variables = _images(MNIST), _variables(model, MNIST)
    p = variables["params"]
    assert set(p) == {"enc_kernel", "enc_bias", "dec_bias"}
    z = model.apply(variables, x, method=model.encode)
    np.testing.assert_allclose(z, x.reshape(2, -1) @ p["enc_kernel"] + p["enc_bias"], atol=1e-5)
    logits = model.apply(variables, z, method=model.decode)
    expected = (z @ p["enc_kernel"].T + p["dec_bias"]).reshape(2, *MNIST)
    np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_hinton_layer_pairs_for_greedy_pretraining():
    model = models.create_model("hinton", hidden=(20, 10), latent_dim=3)
    x, variables = _images(MNIST), _variables(model, MNIST)
    assert set(variables["params"]) == {"enc_0", "enc_1", "enc_2", "dec_0", "dec_1", "dec_2"}
    np.testing.assert_allclose(
        model.apply(variables, x, 3, method=model.encode_to),
        model.apply(variables, x, method=model.encode),
    )
    for index, width in enumerate((784, 20, 10)):
        h = model.apply(variables, x, index, method=model.encode_to)
        assert h.shape == (2, width)
        assert model.apply(variables, h, index, method=model.reconstruct_layer).shape == h.shape


@pytest.mark.parametrize(
    "kernel, strides, padding, size",
    [(3, 2, "VALID", 3), (3, 2, "SAME", 7), (3, 1, "SAME", 7), (2, 2, "SAME", 5)],
)
def test_upconv_equals_flax_conv_transpose(kernel, strides, padding, size):
    k, s = (kernel, kernel), (strides, strides)
    up = models.UpConv(5, k, s, padding)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, size, size, 4)).astype(np.float32)
    abstract = jax.eval_shape(up.init, jax.random.key(0), x)
    assert abstract["params"]["kernel"].shape == (*k, 4, 5)  # nn.ConvTranspose's layout
    variables = jax.tree.map(lambda a: rng.normal(size=a.shape).astype(np.float32), abstract)
    reference = nn.ConvTranspose(5, k, s, padding).apply(variables, x)
    np.testing.assert_allclose(up.apply(variables, x), reference, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The table and the errors


def test_models_table_and_is_vae():
    assert list(models.MODELS) == [
        "linear",
        "vanilla",
        "deep_fc",
        "hinton",
        "conv_simple",
        "conv_deep",
        "conv_keras",
        "conv_flat",
        "vae",
        "conv_vae",
    ]
    vaes = {name for name, cls in models.MODELS.items() if models.is_vae(cls())}
    assert vaes == {"vae", "conv_vae"}


def test_create_model_unknown_name():
    with pytest.raises(ValueError, match=r"unknown model 'resnet'; valid names: linear, ") as e:
        models.create_model("resnet")
    assert "conv_vae" in str(e.value) and "\n" not in str(e.value)


def test_create_model_unknown_field():
    with pytest.raises(ValueError, match=r"unknown field\(s\) skip for model 'vanilla'") as e:
        models.create_model("vanilla", skip=True)
    assert "valid fields: hidden, latent_dim, image_shape" in str(e.value)


@pytest.mark.parametrize(
    "name, fields, message",
    [
        ("conv_deep", {"upsample": "pixelshuffle"}, "ConvDeep.upsample must be one of"),
        ("conv_flat", {"downsample": "avgpool"}, "ConvFlat.downsample must be one of"),
        ("hinton", {"activation": "tanh"}, "Hinton.activation must be one of sigmoid, relu"),
        ("vae", {"image_shape": (28, 28)}, r"VAE.image_shape must be \(H, W, C\)"),
        ("conv_vae", {"strides": (2, 3, 1)}, "ConvVAE.strides must give 1 or 2"),
    ],
)
def test_create_model_bad_values(name, fields, message):
    with pytest.raises(ValueError, match=message):
        models.create_model(name, **fields)


def test_create_model_turns_lists_into_tuples():
    model = models.create_model("conv_deep", image_shape=[32, 32, 3], features=[8, 16, 32])
    assert model.image_shape == (32, 32, 3) and model.features == (8, 16, 32)
    hash(model)  # usable as a static argument


@pytest.mark.parametrize("name", list(models.MODELS))
def test_forward_mode_agrees_with_reverse_mode_through_every_encoder(name):
    """<J v, u> = <v, Jᵀ u>: jax.jvp runs through every encoder (the contractive penalties'
    Hutchinson probes and jacfwd need forward mode) and agrees with reverse mode."""
    model = models.create_model(name)
    variables = _variables(model, MNIST)
    x = jnp.asarray(_images(MNIST))
    v = jnp.asarray(_images(MNIST, seed=1)) - 0.5

    def f(x):  # codes, with both VAE heads
        return model.apply(variables, x, train=False, method=model.encode)

    codes, jv = jax.jvp(f, (x,), (v,))
    u = jax.tree.map(lambda c: jnp.asarray(np.random.default_rng(2).normal(size=c.shape)), codes)
    (jtu,) = jax.vjp(f, x)[1](u)
    pairs = zip(jax.tree.leaves(jv), jax.tree.leaves(u), strict=True)
    forward = sum(jnp.vdot(a, b) for a, b in pairs)
    np.testing.assert_allclose(forward, jnp.vdot(v, jtu), rtol=1e-4)
