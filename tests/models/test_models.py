"""jaxae.models: shapes, encode/decode, BatchNorm, the VAE's sampling, the table and errors."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_testing import CIFAR, MNIST, abstract_init, images, random_variables

from jaxae import models

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
SHAPE_CASES = (
    [
        (name, fields, shape)
        for name in models.MODELS
        for fields in CONV_OPTIONS.get(name, [{}])
        for shape in (MNIST, CIFAR)
    ]
    + [
        # odd and non-square sizes exercise the VALID/SAME choice and the final crop
        (name, fields, (27, 30, 2))
        for name in CONV_OPTIONS
        for fields in CONV_OPTIONS[name][:2] + CONV_OPTIONS[name][3:5]
    ]
    + [
        # a 5×5 conv_deep: the strided padding and the transposed conv's centred crop
        ("conv_deep", {"kernel_size": 5, **fields}, shape)
        for fields in ({}, {"upsample": "resize", "downsample": "strided", "skip": True})
        for shape in (MNIST, CIFAR, (27, 30, 2))
    ]
)


@pytest.mark.parametrize("name, fields, shape", SHAPE_CASES)
def test_logits_have_the_input_shape(name, fields, shape):
    model = models.create_model(name, image_shape=shape, **fields)
    (logits, aux), variables = abstract_init(model, shape, train=True)
    assert logits.shape == (2, *shape) and logits.dtype == jnp.float32
    assert "z" in aux
    if models.is_vae(model):
        assert aux["mu"].shape == aux["logvar"].shape == aux["z"].shape
    # decode alone (with zero skips for skip=True) gives the same shape from z
    decode = functools.partial(model.apply, train=False, method=model.decode)
    assert jax.eval_shape(decode, variables, aux["z"]).shape == logits.shape


def test_conv_deep_code_sizes():
    for shape, code in ((MNIST, (3, 3, 64)), (CIFAR, (4, 4, 64))):
        (_, aux), _ = abstract_init(models.create_model("conv_deep", image_shape=shape), shape)
        assert aux["z"].shape == (2, *code)
    (_, aux), _ = abstract_init(models.create_model("conv_keras"), MNIST)
    assert aux["z"].shape == (2, 4, 4, 8)


def test_a_5x5_transposed_conv_is_cropped_to_its_centre():
    """3→7 with k=5: 'SAME' gives 6, 'VALID' 9; the centre 7 is lax padding (3, 3), which
    keeps each tap's centre at 2·p + 1 as with k=3 (cropping one side would shift it)."""
    from jaxae.models.layers import UpBlock

    block = UpBlock(4, kernel=5)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 3, 3, 2))
    variables = block.init(jax.random.PRNGKey(1), x, (7, 7), train=False)
    got = block.apply(variables, x, (7, 7), train=False)
    up = variables["params"]["up"]
    want = jax.lax.conv_transpose(x, up["kernel"], (2, 2), ((3, 3), (3, 3)))
    np.testing.assert_allclose(got, jax.nn.relu(want + up["bias"]), rtol=1e-5, atol=1e-6)


def test_an_even_conv_deep_kernel_is_refused():
    with pytest.raises(ValueError, match=r"kernel_size must be odd \(3, 5, ...\); got 4"):
        models.create_model("conv_deep", kernel_size=4)


def test_wrong_image_shape_is_a_clear_error():
    model = models.create_model("conv_deep")
    with pytest.raises(ValueError, match=r"expects images \[B, 28, 28, 1\].*\(2, 32, 32, 3\)"):
        abstract_init(model, CIFAR)


# ---------------------------------------------------------------------------------------------
# Numerics (small batch, one compilation per model)


def _encode_decode_and_call(model: nn.Module, variables, x: jax.Array):
    logits, aux = model.apply(variables, x, train=False)
    z = model.apply(variables, x, train=False, method=model.encode)
    if models.is_vae(model):
        z = z[0]  # eval mode decodes the mean
    return logits, aux, z, model.apply(variables, z, train=False, method=model.decode)


def _slow_unless(quick, cases):
    return [c if c[0] in quick else pytest.param(*c, marks=pytest.mark.slow) for c in cases]


@pytest.mark.parametrize(
    "name, fields",
    _slow_unless(
        ("vanilla", "conv_deep", "vae"),
        [(name, {}) for name in models.MODELS]
        + [("conv_deep", {"upsample": "resize", "downsample": "strided", "image_shape": CIFAR})],
    ),
)
def test_encode_then_decode_equals_call_in_eval_mode(name, fields):
    model = models.create_model(name, **fields)
    shape = fields.get("image_shape", MNIST)
    run = jax.jit(functools.partial(_encode_decode_and_call, model))
    logits, aux, z, decoded = run(random_variables(model, shape), images(shape))
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

    variables, updates, logits, evaluated = run(random_variables(model, MNIST), images(MNIST, 4))
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

    a, b, ev = run(random_variables(model, MNIST), images(MNIST, 3))
    assert not np.allclose(a["z"], b["z"])  # a fresh key, a fresh sample
    np.testing.assert_array_equal(a["mu"], b["mu"])
    eps = (a["z"] - a["mu"]) / jnp.exp(0.5 * a["logvar"])  # z = mu + exp(logvar/2)·eps
    assert abs(float(eps.mean())) < 0.5 and 0.6 < float(eps.std()) < 1.4
    np.testing.assert_array_equal(ev["z"], ev["mu"])


def test_linear_tied_decoder_uses_the_transposed_encoder_kernel():
    model = models.create_model("linear", latent_dim=4, tied=True)
    x, variables = images(MNIST), random_variables(model, MNIST)
    p = variables["params"]
    assert set(p) == {"enc_kernel", "enc_bias", "dec_bias"}
    z = model.apply(variables, x, method=model.encode)
    np.testing.assert_allclose(z, x.reshape(2, -1) @ p["enc_kernel"] + p["enc_bias"], atol=1e-5)
    logits = model.apply(variables, z, method=model.decode)
    expected = (z @ p["enc_kernel"].T + p["dec_bias"]).reshape(2, *MNIST)
    np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_hinton_layer_pairs_for_greedy_pretraining():
    model = models.create_model("hinton", hidden=(20, 10), latent_dim=3)
    x, variables = images(MNIST), random_variables(model, MNIST)
    assert set(variables["params"]) == {"enc_0", "enc_1", "enc_2", "dec_0", "dec_1", "dec_2"}
    np.testing.assert_allclose(
        model.apply(variables, x, 3, method=model.encode_to),
        model.apply(variables, x, method=model.encode),
    )
    for index, width in enumerate((784, 20, 10)):
        h = model.apply(variables, x, index, method=model.encode_to)
        assert h.shape == (2, width)
        assert model.apply(variables, h, index, method=model.reconstruct_layer).shape == h.shape


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
        "vqvae",
        "codec",
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
    fields = "hidden, latent_dim, image_shape, code_activation, binary_code, code_noise"
    assert f"valid fields: {fields}, init_scheme" in str(e.value)


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


@pytest.mark.parametrize(
    "name, fast",
    [("vanilla", False), ("conv_simple", True)]
    + [
        pytest.param(name, fast, marks=pytest.mark.slow)
        for name in models.MODELS
        for fast in (False, True)
        if (name, fast) not in (("vanilla", False), ("conv_simple", True))
    ],
)
def test_forward_mode_agrees_with_reverse_mode_through_every_encoder(name, fast):
    """<J v, u> = <v, Jᵀ u>: jax.jvp runs through every encoder, with plain and fast ops (the
    contractive penalties' Hutchinson probes and jacfwd need forward mode) and agrees with
    reverse mode."""
    model = models.create_model(name, fast=fast)
    variables = random_variables(model, MNIST)
    x = jnp.asarray(images(MNIST))
    v = jnp.asarray(images(MNIST, seed=1)) - 0.5

    def f(x):  # codes, with both VAE heads
        return model.apply(variables, x, train=False, method=model.encode)

    codes, jv = jax.jvp(f, (x,), (v,))
    u = jax.tree.map(lambda c: jnp.asarray(np.random.default_rng(2).normal(size=c.shape)), codes)
    (jtu,) = jax.vjp(f, x)[1](u)
    pairs = zip(jax.tree.leaves(jv), jax.tree.leaves(u), strict=True)
    forward = sum(jnp.vdot(a, b) for a, b in pairs)
    np.testing.assert_allclose(forward, jnp.vdot(v, jtu), rtol=1e-4)


def test_ops_bundle_is_chosen_by_fast_and_is_no_config_field():
    from jaxae import fast
    from jaxae.config import model_config

    assert models.create_model("conv_deep").ops is models.PLAIN
    assert models.create_model("conv_deep", fast=True).ops is fast.OPS
    for name, cls in models.MODELS.items():
        assert (
            "ops" not in models.model_fields(cls) and models.model_fields(cls)[-1] == "init_scheme"
        )
        section = model_config(name)
        assert "ops" not in section and section.init_scheme == "flax"
    with pytest.raises(ValueError, match=r"unknown field\(s\) ops"):
        models.create_model("conv_deep", ops=models.PLAIN)
    hash(models.create_model("conv_deep", fast=True))  # both builds are static arguments


def test_vanilla_names_its_code_layer():
    assert models.create_model("vanilla", hidden=()).code_layer_name() == "enc_0"
    model = models.create_model("vanilla")
    _, variables = abstract_init(model, MNIST)
    kernel = variables["params"][model.code_layer_name()]["kernel"]
    assert kernel.shape == (128, 64)  # hidden[-1] → latent_dim


@pytest.mark.parametrize("name", ["conv_deep", "conv_flat", "conv_keras", "vqvae"])
def test_a_conv_stack_of_no_layers_is_refused_by_name(name):
    with pytest.raises(ValueError, match=r"\.features needs at least one width; got \(\)"):
        models.create_model(name, features=())
