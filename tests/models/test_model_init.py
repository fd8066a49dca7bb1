"""The initialisation schemes: 'flax' (lecun_normal kernels, zero biases), 'pytorch' (torch.nn's
defaults, U(±1/√fan_in) kernels and biases, fan_in as torch computes it) and 'keras'
(Glorot-uniform kernels, zero biases), checked by the bounds and variances of every layer."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_testing import MNIST

from jaxae import models

# the quick tier: Linear's own parameters, dense layers, convs and transposed convs (strides 1
# and 2), BatchNorm; the other models: slow
QUICK = ("linear", "vanilla", "conv_deep", "conv_vae")


def _init(name: str, init_scheme: str, **fields):
    model = models.create_model(name, init_scheme=init_scheme, **fields)
    x = jnp.zeros((2, *MNIST))
    return jax.jit(lambda key: model.init(key, x, train=False))(
        jax.random.key(0, impl="unsafe_rbg")
    )["params"]


def _layers(params) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(path, kind, kernel, bias) of every layer: kind 'dense' (kernel [I, O]), 'conv'
    ([kh, kw, C, F]) or 'transpose' (a transposed conv's [kh, kw, C, F], under 'up')."""
    found = []

    def visit(tree, path):
        if "kernel" in tree:
            kernel = np.asarray(tree["kernel"])
            kind = "transpose" if path.endswith("up") else "dense" if kernel.ndim == 2 else "conv"
            found.append((path, kind, kernel, np.asarray(tree["bias"])))
        for key, sub in tree.items():
            if isinstance(sub, dict):
                visit(sub, f"{path}/{key}")

    visit(params, "")
    if "enc_kernel" in params:  # Linear: its own parameters, as two nn.Linear-like layers
        k = params["enc_kernel"].shape[1]
        decoder = params["dec_kernel"] if "dec_kernel" in params else params["enc_kernel"].T
        found.append(("/enc", "dense", np.asarray(params["enc_kernel"]), params["enc_bias"]))
        found.append(("/dec", "dense", np.asarray(decoder), np.asarray(params["dec_bias"])))
        assert decoder.shape[0] == k
    return found


def torch_fans(kind: str, shape) -> tuple[int, int]:
    """(fan_in, fan_out) as torch.nn.init computes them from the weight of the torch layer
    (Linear [O, I], Conv2d [F, C, kh, kw], ConvTranspose2d [C, F, kh, kw]): dims 1 and 0."""
    if kind == "dense":
        return shape[0], shape[1]
    kh, kw, c, f = shape
    if kind == "conv":
        return c * kh * kw, f * kh * kw
    return f * kh * kw, c * kh * kw


def _assert_uniform(a: np.ndarray, bound: float, what: str) -> None:
    """Samples of U(±bound): inside the bound, reaching near it, variance bound²/3."""
    assert np.abs(a).max() <= bound * (1 + 1e-6), what
    if a.size >= 16:
        assert np.abs(a).max() >= 0.5 * bound, what
    if a.size >= 100:  # sample variance of n uniforms: relative spread √(0.8/n)
        np.testing.assert_allclose(a.var(), bound**2 / 3, rtol=6 * math.sqrt(0.8 / a.size))


def _assert_batch_norm_starts_at_one_and_zero(params) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = [k.key for k in path]
        if "bn" in keys:
            np.testing.assert_array_equal(leaf, 1.0 if keys[-1] == "scale" else 0.0)


@pytest.mark.parametrize(
    "name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in models.MODELS]
)
def test_pytorch_scheme_draws_kernels_and_biases_in_one_over_sqrt_fan_in(name):
    params = _init(name, "pytorch")
    _assert_batch_norm_starts_at_one_and_zero(params)
    layers = _layers(params)
    assert layers
    for path, kind, kernel, bias in layers:
        fan_in, _ = torch_fans(kind, kernel.shape)
        _assert_uniform(kernel, 1 / math.sqrt(fan_in), f"{path} kernel")
        _assert_uniform(bias, 1 / math.sqrt(fan_in), f"{path} bias")


@pytest.mark.parametrize(
    "name",
    ["conv_deep", *(pytest.param(n, marks=pytest.mark.slow) for n in ("linear", "conv_keras"))],
)
def test_keras_scheme_draws_glorot_uniform_kernels_and_zero_biases(name):
    params = _init(name, "keras")
    _assert_batch_norm_starts_at_one_and_zero(params)
    for path, kind, kernel, bias in _layers(params):
        fan_in, fan_out = torch_fans(kind, kernel.shape)  # Glorot: symmetric in the two
        _assert_uniform(kernel, math.sqrt(6 / (fan_in + fan_out)), f"{path} kernel")
        np.testing.assert_array_equal(bias, 0.0)


@pytest.mark.parametrize(
    "name", ["conv_deep", *(pytest.param(n, marks=pytest.mark.slow) for n in ("linear", "vanilla"))]
)
def test_flax_scheme_draws_lecun_normal_kernels_and_zero_biases(name):
    params = _init(name, "flax")
    _assert_batch_norm_starts_at_one_and_zero(params)
    for path, _, kernel, bias in _layers(params):
        # Flax's fan_in: every kernel axis but the last. A normal truncated to ±2σ, σ chosen so
        # that the variance is 1/fan_in: σ = 1/(√fan_in · 0.8796), the std of N(0, 1) in ±2.
        fan_in = math.prod(kernel.shape[:-1])
        sigma = 1 / (math.sqrt(fan_in) * 0.87962566103423978)
        assert np.abs(kernel).max() <= 2 * sigma * (1 + 1e-6), path
        if kernel.size >= 100:
            np.testing.assert_allclose(
                kernel.var(), 1 / fan_in, rtol=6 * math.sqrt(2 / kernel.size)
            )
        np.testing.assert_array_equal(bias, 0.0)


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(
        ValueError, match="ConvDeep.init_scheme must be one of flax, pytorch, keras"
    ):
        models.create_model("conv_deep", init_scheme="xavier")


@pytest.mark.slow
def test_fans_are_torchs_own():
    """torch_fans against torch.nn.init's fan computation on the torch layers' weights."""
    torch = pytest.importorskip("torch")
    fans = torch.nn.init._calculate_fan_in_and_fan_out
    cases = [
        ("dense", (784, 256), torch.nn.Linear(784, 256)),
        ("conv", (3, 3, 16, 32), torch.nn.Conv2d(16, 32, 3)),
        ("transpose", (3, 3, 64, 32), torch.nn.ConvTranspose2d(64, 32, 3)),
    ]
    for kind, shape, layer in cases:
        assert torch_fans(kind, shape) == fans(layer.weight)
        bound = 1 / math.sqrt(torch_fans(kind, shape)[0])
        weight, bias = layer.weight.detach(), layer.bias.detach()
        assert float(weight.abs().max()) <= bound and float(bias.abs().max()) <= bound
