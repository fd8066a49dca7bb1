"""What the models are built from: the ops bundle, the initialisation schemes, the blocks
(DownBlock, UpBlock, DenseBlock), the option checks and the shape helpers.

Images are NHWC: [B, H, W, C]. Every layer comes from a model's `ops` (an `Ops` bundle) with
initialisers from its `init_scheme`, so neither changes a parameter tree.

Mixed precision (Flax's `dtype` / `param_dtype`): a model's `dtype` is the dtype its layers
compute in (float32 or bfloat16); parameters and BatchNorm statistics stay float32 whatever it
is, and every public model method returns float32 (`float32_out`), so losses, metrics,
Jacobians and the NLL are computed in float32.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
ImageShape = tuple[int, int, int]  # (H, W, C)
ModuleDef = Any  # a Flax module class, or a function with its constructor's signature
Initializer = nn.initializers.Initializer

UPSAMPLE_MODES = ("transpose", "resize")
DOWNSAMPLE_MODES = ("maxpool", "strided")
RESIZE_METHODS = ("nearest", "bilinear")
INIT_SCHEMES = ("flax", "pytorch", "keras")
ACTIVATIONS = {"sigmoid": nn.sigmoid, "relu": nn.relu, "linear": lambda x: x}
BN_MOMENTUM = 0.9  # PyTorch's BatchNorm momentum 0.1 written the Flax way
# config.compute_dtype → a layer's `dtype`. 'float32' is Flax's None: compute in the dtype of
# the inputs and parameters (float32 in training, float64 where tests enable it).
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str) -> Any:
    """The jnp dtype of a `compute_dtype` name; ValueError (one line) for any other name."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute dtype must be one of {', '.join(COMPUTE_DTYPES)}; got {name!r}")
    return COMPUTE_DTYPES[name]


def _to_float32(a: Any) -> Any:
    low = jnp.issubdtype(a.dtype, jnp.floating) and jnp.dtype(a.dtype).itemsize < 4
    return a.astype(jnp.float32) if low else a


def float32_out(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a model method so that every floating-point array it returns in less than 32 bits
    (bfloat16) comes out float32, and float32 or float64 ones unchanged.

    Under bfloat16 compute this keeps losses, metrics and analyses in float32 (casting a code
    or logits is cheap next to the layers that made them).
    """

    @functools.wraps(method)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        return jax.tree.map(_to_float32, method(self, *args, **kwargs))

    return wrapper


# ----------------------------------------------------------------------------------------------
# The ops bundle


def max_pool_2x2(x: Array, *, ceil: bool = False) -> Array:
    """2×2 max-pool, stride 2: x [B, H, W, C] → [B, ⌊H/2⌋, ⌊W/2⌋, C] (PyTorch's MaxPool2d);
    ceil=True: [B, ⌈H/2⌉, ⌈W/2⌉, C], odd edges padded with -inf (Keras 'same' pooling)."""
    return nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME" if ceil else "VALID")


@dataclasses.dataclass(frozen=True)
class Ops:
    """The layers a model is built from, passed in the way Flax examples pass `conv: ModuleDef`.

    Each entry has the signature, parameters and values of the plain op it stands for, so a
    model's parameter tree and checkpoints do not depend on the bundle:
      dense(features, *, kernel_init, bias_init, name)                      ~ nn.Dense
      conv(features, kernel_size, *, strides, padding, kernel_init, ...)    ~ nn.Conv
      conv_transpose(features, kernel_size, strides, padding, *, ...)       ~ nn.ConvTranspose
      max_pool(x [B, H, W, C], *, ceil) → [B, H/2, W/2, C]                  ~ max_pool_2x2
    The layer constructors also take `dtype` (the compute dtype; parameters stay float32).
    PLAIN is plain Flax; jaxae.fast.OPS has forms that XLA:CPU runs faster.
    """

    dense: ModuleDef
    conv: ModuleDef
    conv_transpose: ModuleDef
    max_pool: Callable[..., Array]


PLAIN = Ops(dense=nn.Dense, conv=nn.Conv, conv_transpose=nn.ConvTranspose, max_pool=max_pool_2x2)


# ----------------------------------------------------------------------------------------------
# Initialisation schemes: 'flax' (lecun_normal kernels, zero biases), 'pytorch' (torch.nn's
# defaults) and 'keras' (Glorot-uniform kernels, zero biases)


def kernel_init(scheme: str, *, transposed: bool = False) -> Initializer:
    """The kernel initialiser of `scheme` for kernels [..., fan-in axis, out axis].

    'pytorch' is kaiming_uniform_(a=√5), U(±gain·√(3/fan_in)) with gain² = 2/(1 + 5): U(±1/√fan_in).
    PyTorch takes fan_in from weight dim 1, which for ConvTranspose2d ([C_in, F, kh, kw]) holds
    the output channels, so `transposed` kernels [kh, kw, C_in, F] count F·kh·kw.
    """
    if scheme == "pytorch":
        axes = {"in_axis": -1, "out_axis": -2} if transposed else {}
        return nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform", **axes)
    if scheme == "keras":
        return nn.initializers.glorot_uniform()  # symmetric in fan_in and fan_out
    return nn.initializers.lecun_normal()


def bias_init(scheme: str, fan_in: int) -> Initializer:
    """The bias initialiser of `scheme`: U(±1/√fan_in) for 'pytorch' (fan_in as its kernel's),
    zeros otherwise."""
    if scheme != "pytorch":
        return nn.initializers.zeros_init()
    bound = 1 / math.sqrt(fan_in)

    def init(key: Array, shape: Sequence[int], dtype: Any = jnp.float32) -> Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def initializers(scheme: str, fan_in: int, *, transposed: bool = False) -> dict[str, Initializer]:
    """{'kernel_init', 'bias_init'} of a layer whose kernel has PyTorch's `fan_in`."""
    return {
        "kernel_init": kernel_init(scheme, transposed=transposed),
        "bias_init": bias_init(scheme, fan_in),
    }


# A module `owner` below is one with fields `ops`, `init_scheme` and `dtype` (the models and
# blocks).


def dense(owner: nn.Module, features: int, fan_in: int, name: str | None = None) -> nn.Module:
    """owner.ops.dense: h [B, fan_in] → [B, features]."""
    init = initializers(owner.init_scheme, fan_in)
    return owner.ops.dense(features, name=name, dtype=owner.dtype, **init)


def conv(
    owner: nn.Module,
    features: int,
    in_channels: int,
    *,
    strides: int = 1,
    padding: Any = "SAME",
    name: str | None = None,
    kernel: int = 3,
) -> nn.Module:
    """owner.ops.conv, kernel×kernel: x [B, H, W, in_channels] → [B, H', W', features]."""
    return owner.ops.conv(
        features,
        (kernel, kernel),
        strides=(strides, strides),
        padding=padding,
        name=name,
        dtype=owner.dtype,
        **initializers(owner.init_scheme, kernel * kernel * in_channels),
    )


# ----------------------------------------------------------------------------------------------
# Option checks and shape helpers


def check_images(x: Array, image_shape: Sequence[int], owner: str) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(image_shape):
        h, w, c = image_shape
        raise ValueError(
            f"{owner} expects images [B, {h}, {w}, {c}] (its image_shape), got shape "
            f"{tuple(x.shape)}; build the model with image_shape matching the data"
        )


def check_choice(owner: str, field: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}.{field} must be one of {', '.join(choices)}; got {value!r}")


def flatten(x: Array) -> Array:
    return x.reshape(x.shape[0], -1)  # [B, H, W, C] → [B, H·W·C]


def fit(x: Array, hw: Sequence[int]) -> Array:
    """Crop (or edge-pad) x [B, h, w, C] to [B, *hw, C]; a no-op when the sizes already match."""
    h, w = hw
    x = x[:, :h, :w]
    pad_h, pad_w = h - x.shape[1], w - x.shape[2]
    if pad_h or pad_w:
        x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return x


def level_sizes(hw: Sequence[int], strides: Sequence[int], *, ceil: bool) -> list[tuple[int, int]]:
    """Spatial size at each encoder level: [input (H, W), after block 0, ..., after block n-1]."""
    sizes = [tuple(hw)]
    for s in strides:
        sizes.append(
            tuple(-(-n // 2) if ceil else n // 2 for n in sizes[-1]) if s == 2 else sizes[-1]
        )
    return sizes


def upsample_2x(x: Array, method: str = "nearest") -> Array:
    """x [B, h, w, C] → [B, 2h, 2w, C]; 'nearest' repeats pixels exactly (Keras UpSampling2D)."""
    if method == "nearest":
        return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), method)


def sample(module: nn.Module, mu: Array, logvar: Array, train: bool) -> Array:
    """z = mu + exp(logvar/2)·eps [B, k] with eps from the 'sample' rng stream when training,
    else mu."""
    if not train:
        return mu
    eps = jax.random.normal(module.make_rng("sample"), mu.shape, mu.dtype)
    return mu + jnp.exp(0.5 * logvar) * eps


def batch_norm(axis_name: str | None, dtype: Any = None, name: str = "bn") -> nn.BatchNorm:
    """BatchNorm whose output is `dtype`; Flax computes its statistics in float32 and keeps the
    running statistics float32 (param_dtype) for any `dtype`."""
    return nn.BatchNorm(momentum=BN_MOMENTUM, axis_name=axis_name, dtype=dtype, name=name)


class Model(nn.Module):
    """Base of the models: the ops bundle, initialisation scheme and compute dtype every model
    has, and the checks of option fields when a model is constructed."""

    init_scheme: str = "flax"
    ops: Ops = PLAIN  # a Python object, not a config value: create_model(fast=...) picks it
    dtype: Any = None  # compute dtype (None: float32); not a model field: create_model sets it

    def __post_init__(self) -> None:
        owner = type(self).__name__
        shape = getattr(self, "image_shape", (1, 1, 1))
        if len(tuple(shape)) != 3 or not all(isinstance(n, int) and n > 0 for n in shape):
            raise ValueError(f"{owner}.image_shape must be (H, W, C) positive ints; got {shape!r}")
        for field, choices in (
            ("init_scheme", INIT_SCHEMES),
            ("upsample", UPSAMPLE_MODES),
            ("downsample", DOWNSAMPLE_MODES),
            ("resize_method", RESIZE_METHODS),
            ("activation", tuple(ACTIVATIONS)),
            ("code_activation", tuple(ACTIVATIONS)),
        ):
            if hasattr(self, field):
                check_choice(owner, field, getattr(self, field), choices)
        for field in ("features", "decoder_features"):  # a conv stack of no layers has no code
            if isinstance(getattr(self, field, None), tuple | list) and not getattr(self, field):
                raise ValueError(f"{owner}.{field} needs at least one width; got ()")
        super().__post_init__()


# ----------------------------------------------------------------------------------------------
# Building blocks (each with its model's `ops` and `init_scheme`)


class DownBlock(nn.Module):
    """Conv k×k → ReLU [→ BatchNorm], then halve: x [B, H, W, C_in] → [B, H', W', features].

    downsample: 'maxpool' (conv, then 2×2 max-pool), 'strided' (one k×k stride-2 conv) or 'none'.
    ceil: halve to ⌈H/2⌉ (Keras 'same' pooling) instead of ⌊H/2⌋ (PyTorch MaxPool2d); both
    modes give the same sizes, so decoders do not depend on the choice. kernel: odd k (3).
    """

    features: int
    downsample: str = "maxpool"
    ceil: bool = False
    kernel: int = 3
    batch_norm: bool = False
    bn_axis_name: str | None = None
    init_scheme: str = "flax"
    ops: Ops = PLAIN
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        c_in, k = x.shape[-1], self.kernel
        if self.downsample == "strided":
            # padding (p, p + 1), p = (k - 3) / 2, gives ⌊H/2⌋ for every H, like the floor pool
            # ((0, 1) for 3×3); 'SAME' gives ⌈H/2⌉.
            p = (k - 3) // 2
            padding = "SAME" if self.ceil else ((p, p + 1), (p, p + 1))
            layer = conv(
                self, self.features, c_in, strides=2, padding=padding, name="conv", kernel=k
            )
        else:
            layer = conv(self, self.features, c_in, name="conv", kernel=k)
        x = layer(x)
        x = nn.relu(x)
        if self.batch_norm:
            x = batch_norm(self.bn_axis_name, self.dtype)(x, use_running_average=not train)
        if self.downsample == "maxpool":
            x = self.ops.max_pool(x, ceil=self.ceil)
        return x


class UpBlock(nn.Module):
    """Upsample, convolve [→ ReLU → BatchNorm]: x [B, h, w, C_in] → [B, *out_hw, features].

    upsample: 'transpose' (a k×k transposed conv of stride `strides`, named 'up'; padding 'SAME'
    or 'VALID', whichever lands on out_hw, e.g. 3→7 needs 'VALID'; a larger kernel's 'VALID'
    map is cropped to its centre), or 'resize' (resize to out_hw, then a resize_kernel²
    stride-1 conv: no checkerboard artefacts; the same parameter count when both are equal).
    """

    features: int
    upsample: str = "transpose"
    kernel: int = 3
    strides: int = 2
    relu: bool = True
    batch_norm: bool = False
    bn_axis_name: str | None = None
    resize_method: str = "nearest"
    resize_kernel: int = 3
    init_scheme: str = "flax"
    ops: Ops = PLAIN
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, out_hw: Sequence[int], *, train: bool) -> Array:
        b, h, w, c = x.shape
        out_hw = tuple(out_hw)
        if self.upsample == "transpose":
            k, s = self.kernel, self.strides
            padding = _transpose_padding((h, w), out_hw, k, s)
            init = initializers(self.init_scheme, self.features * k * k, transposed=True)
            up = self.ops.conv_transpose(
                self.features, (k, k), (s, s), padding, name="up", dtype=self.dtype, **init
            )
            x = up(x)
            if padding == "VALID":  # crop the centre: tap centres land where a 3×3's do
                dh, dw = ((n - o) // 2 for n, o in zip(x.shape[1:3], out_hw, strict=True))
                x = x[:, dh:, dw:]
            x = fit(x, out_hw)  # only odd sizes need it: crop one row/column
        else:
            if (h, w) != out_hw:
                x = jax.image.resize(x, (b, *out_hw, c), self.resize_method)
            x = conv(self, self.features, c, name="conv", kernel=self.resize_kernel)(x)
        if self.relu:
            x = nn.relu(x)
        if self.batch_norm:
            x = batch_norm(self.bn_axis_name, self.dtype)(x, use_running_average=not train)
        return x


def _transpose_padding(hw: tuple[int, int], out_hw: tuple[int, int], k: int, s: int) -> str:
    """'VALID' ((h-1)·s + k) where it lands on out_hw and 'SAME' (s·h) does not, or where 'SAME'
    falls short and 'VALID' overshoots (kernels above 3 on odd sizes, 3→7); else 'SAME'."""
    valid = tuple((n - 1) * s + k for n in hw)
    same = tuple(n * s for n in hw)
    if valid == out_hw and same != out_hw:
        return "VALID"
    short = any(a < o for a, o in zip(same, out_hw, strict=True))
    return "VALID" if short and all(v >= o for v, o in zip(valid, out_hw, strict=True)) else "SAME"


class DenseBlock(nn.Module):
    """Dense → ReLU → BatchNorm → Dropout: h [B, D_in] → [B, features]."""

    features: int
    dropout_rate: float = 0.2
    bn_axis_name: str | None = None
    init_scheme: str = "flax"
    ops: Ops = PLAIN
    dtype: Any = None

    @nn.compact
    def __call__(self, h: Array, *, train: bool) -> Array:
        h = nn.relu(dense(self, self.features, h.shape[-1], name="dense")(h))
        h = batch_norm(self.bn_axis_name, self.dtype)(h, use_running_average=not train)
        return nn.Dropout(self.dropout_rate, deterministic=not train)(h)
