"""The autoencoder models (Flax Linen): encode, decode and __call__ on NHWC images; logits out."""

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

Array = jax.Array
ImageShape = tuple[int, int, int]  # (H, W, C)

UPSAMPLE_MODES = ("transpose", "resize")
DOWNSAMPLE_MODES = ("maxpool", "strided")
RESIZE_METHODS = ("nearest", "bilinear")
ACTIVATIONS = {"sigmoid": nn.sigmoid, "relu": nn.relu}
BN_MOMENTUM = 0.9  # PyTorch's BatchNorm momentum 0.1 written the Flax way
# UpConv inputs of at most this many pixels use the overlap-add form, larger ones the phase
# convs: the faster of the two on XLA:CPU for 3×3 and 7×7 inputs (benchmarks/README.md).
OVERLAP_ADD_MAX_PIXELS = 16


# ----------------------------------------------------------------------------------------------
# Small helpers


def max_pool_2x2(x: Array, *, ceil: bool = False) -> Array:
    """2×2 max-pool, stride 2: x [B, H, W, C] → [B, ⌊H/2⌋, ⌊W/2⌋, C] (ceil=True: ⌈H/2⌉, ⌈W/2⌉).

    The same values and gradients as `nn.max_pool` (odd edges padded with -inf for ceil), much
    faster on CPU than reduce_window's select-and-scatter gradient: the elementwise maximum of
    the four window corners, with a custom gradient that goes to the first maximum of each
    window in row-major order, exactly as `nn.max_pool` and PyTorch do, ties included.

    Not reshape-and-max: XLA:CPU compiled that form's autodiff gradient (which compares the
    input with the maximum) wrongly after BatchNorm, off by up to 48% in conv_deep's encoder
    gradients against float64 (tests/test_fast_ops.py, benchmarks/README.md attempt 11).
    """
    b, h, w, c = x.shape
    if ceil:
        x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
    else:
        x = x[:, : h - h % 2, : w - w % 2]
    return _max_pool_corners(x)


def _corners(x: Array) -> tuple[Array, Array, Array, Array]:
    """The four corners of every 2×2 window of x [B, 2h, 2w, C], row-major: 4 × [B, h, w, C]."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c)
    return x[:, :, 0, :, 0], x[:, :, 0, :, 1], x[:, :, 1, :, 0], x[:, :, 1, :, 1]


@jax.custom_jvp
def _max_pool_corners(x: Array) -> Array:
    a, b, c, d = _corners(x)
    return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))


@_max_pool_corners.defjvp
def _max_pool_corners_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    # A JVP rule, not a VJP one, so that forward mode (jax.jvp, jacfwd: the contractive
    # penalties) works too; reverse mode transposes it into one select at full resolution.
    (x,), (dx,) = primals, tangents
    y = _max_pool_corners(x)
    a, b, c, _ = _corners(x)
    # row-major index 0..3 of each window's first maximum; the tangent is taken from there
    first = jnp.where(a == y, 0, jnp.where(b == y, 1, jnp.where(c == y, 2, 3))).astype(jnp.int8)
    corner = np.arange(4, dtype=np.int8).reshape(1, 1, 2, 1, 2, 1)  # [B, h, 2, w, 2, C] order
    take = corner == first[:, :, None, :, None, :]
    n, h, w, ch = y.shape
    windows = dx.reshape(n, h, 2, w, 2, ch)
    return y, jnp.sum(jnp.where(take, windows, jnp.zeros((), dx.dtype)), axis=(2, 4))


def dense_dot_general(
    lhs: Array,
    rhs: Array,
    dimension_numbers: Any,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> Array:
    """`lax.dot_general` for `nn.Dense` (its `dot_general` hook): x [..., I] · W [I, O] → [..., O].

    The same values and derivatives in every mode; only the kernel gradient's form changes.
    Autodiff writes it as xᵀ·g with x's batch axis contracted, a dot that XLA:CPU runs in its
    own kernel; here x is transposed into a row-major xᵀ first, so the gradient is a plain
    matmul that goes to XLA:CPU's faster library kernels (benchmarks/README.md, attempt 12).
    Any other contraction goes to `lax.dot_general` unchanged.
    """
    (lc, rc), (lb, rb) = dimension_numbers
    plain = tuple(lc) == (lhs.ndim - 1,) and tuple(rc) == (0,) and not lb and not rb
    if not plain or rhs.ndim != 2 or precision is not None or preferred_element_type is not None:
        return jax.lax.dot_general(
            lhs, rhs, dimension_numbers, precision, preferred_element_type=preferred_element_type
        )
    out = _matmul(lhs.reshape(-1, lhs.shape[-1]), rhs)
    return out.reshape(*lhs.shape[:-1], rhs.shape[1])


@jax.custom_jvp
def _matmul(x: Array, w: Array) -> Array:  # x [N, I] @ w [I, O] → [N, O]
    return x @ w


@functools.partial(_matmul.defjvp, symbolic_zeros=True)
def _matmul_jvp(primals: tuple[Array, Array], tangents: tuple[Any, Any]) -> tuple[Array, Array]:
    (x, w), (dx, dw) = primals, tangents
    terms = [] if isinstance(dx, SymbolicZero) else [dx @ w]
    if not isinstance(dw, SymbolicZero):
        # The barrier keeps XLA from folding the transpose back into the dot, so reverse mode
        # computes the kernel gradient from a row-major xᵀ.
        x_t = jax.lax.optimization_barrier(x.T).T
        terms.append(x_t @ dw)
    y = x @ w
    return y, sum(terms[1:], start=terms[0]) if terms else jnp.zeros_like(y)


NHWC = ("NHWC", "HWIO", "NHWC")


def conv_nhwc(
    lhs: Array,
    rhs: Array,
    window_strides: Sequence[int],
    padding: Any,
    lhs_dilation: Any = None,
    rhs_dilation: Any = None,
    dimension_numbers: Any = NHWC,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> Array:
    """`lax.conv_general_dilated` for `nn.Conv` (its `conv_general_dilated` hook) and the phase
    convs: x [B, H, W, C] * kernel [kh, kw, C, F] → [B, H', W', F].

    The same values and derivatives in every mode (to float rounding), other forms on XLA:CPU.
    XLA:CPU computes a kernel gradient as a conv whose input is x transposed to [C, H, W, B],
    and it fuses that transpose with x's producers (BatchNorm, ReLU, the pool, the phase
    interleave or the overlap-add before it), which it then recomputes in transposed order, one
    cache miss per element and input: 42 ms of a 125 ms conv_deep step in a profile on an Intel
    CPU. Here the kernel term of the JVP reads x transposed by a matmul with the identity,
    which XLA cannot fuse with anything: x is read in its own order and the transpose copies
    the matmul's output. Convs with one input channel (the images) are one matmul of the
    shifted images, and stride-1 convs with one output channel one matmul and a sum of shifted
    maps: XLA:CPU's convs are slowest at C = 1 (benchmarks/README.md, attempts 15-16). Any other
    conv goes to `lax`.
    """
    plain = (
        jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC)
        and all(d == 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
        and feature_group_count == 1
        and batch_group_count == 1
        and precision is None
        and preferred_element_type is None
    )
    if not plain:
        return jax.lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation,
            rhs_dilation,
            dimension_numbers,
            feature_group_count,
            batch_group_count,
            precision,
            preferred_element_type,
        )
    strides = tuple(window_strides)
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
    padding = tuple(tuple(p) for p in padding)  # hashable, for nondiff_argnums
    if lhs.shape[-1] == 1:
        return _conv_one_channel_in(lhs, rhs, strides, padding)
    if rhs.shape[-1] == 1 and strides == (1, 1):
        return _conv_one_channel_out(lhs, rhs, padding)
    return _conv(lhs, rhs, strides, padding)


def _conv_one_channel_in(x: Array, w: Array, strides: tuple[int, int], padding: Any) -> Array:
    """x [B, H, W, 1] * w [kh, kw, 1, F]: the kh·kw shifted images as columns, one matmul."""
    b, h, wd, _ = x.shape
    kh, kw, _, f = w.shape
    (sh, sw), ((lo_h, hi_h), (lo_w, hi_w)) = strides, padding
    oh, ow = (h + lo_h + hi_h - kh) // sh + 1, (wd + lo_w + hi_w - kw) // sw + 1
    zero = jnp.zeros((), x.dtype)  # lax.pad: a negative pad crops (phase convs use that)
    xp = jax.lax.pad(x[..., 0], zero, ((0, 0, 0), (lo_h, hi_h, 0), (lo_w, hi_w, 0)))
    taps = [
        xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    patches = jnp.stack(taps, axis=-1).reshape(b * oh * ow, kh * kw)
    return _matmul(patches, w.reshape(kh * kw, f)).reshape(b, oh, ow, f)


def _conv_one_channel_out(x: Array, w: Array, padding: Any) -> Array:
    """x [B, H, W, C] * w [kh, kw, C, 1], stride 1: one matmul gives every tap's map, then the
    kh·kw shifted maps are summed."""
    b, h, wd, c = x.shape
    kh, kw, _, _ = w.shape
    ((lo_h, hi_h), (lo_w, hi_w)) = padding
    oh, ow = h + lo_h + hi_h - kh + 1, wd + lo_w + hi_w - kw + 1
    z = _matmul(x.reshape(b * h * wd, c), w[..., 0].transpose(2, 0, 1).reshape(c, kh * kw))
    pads = ((0, 0, 0), (lo_h, hi_h, 0), (lo_w, hi_w, 0), (0, 0, 0))  # negative: a crop
    zp = jax.lax.pad(z.reshape(b, h, wd, kh * kw), jnp.zeros((), z.dtype), pads)
    y = sum(zp[:, i : i + oh, j : j + ow, i * kw + j] for i in range(kh) for j in range(kw))
    return y[..., None]


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _conv(x: Array, w: Array, strides: tuple[int, ...], padding: Any) -> Array:
    return jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)


def _to_chwn(x: Array) -> Array:
    """x [B, H, W, C] → [C, H, W, B], through a matmul with the identity (exact: every output
    is one product with 1 plus zeros), so that x is materialised in its own order."""
    b, h, w, c = x.shape
    eye = jnp.eye(c, dtype=x.dtype)
    xt = jax.lax.dot_general(  # [C, B·H·W]; HIGHEST: no reduced-precision passes on any backend
        eye, x.reshape(b * h * w, c), (((1,), (1,)), ((), ())), precision="highest"
    )
    return xt.reshape(c, b, h, w).transpose(0, 2, 3, 1)


@functools.partial(_conv.defjvp, symbolic_zeros=True)
def _conv_jvp(
    strides: tuple[int, ...],
    padding: Any,
    primals: tuple[Array, Array],
    tangents: tuple[Any, Any],
) -> tuple[Array, Array]:
    (x, w), (dx, dw) = primals, tangents
    terms = []
    if not isinstance(dx, SymbolicZero):
        terms.append(jax.lax.conv_general_dilated(dx, w, strides, padding, dimension_numbers=NHWC))
    if not isinstance(dw, SymbolicZero):
        # reverse mode transposes this into the kernel-gradient conv, reading x as [C, H, W, B]
        chwn = ("CHWN", "HWIO", "NHWC")
        terms.append(
            jax.lax.conv_general_dilated(_to_chwn(x), dw, strides, padding, dimension_numbers=chwn)
        )
    y = _conv(x, w, strides, padding)
    return y, sum(terms[1:], start=terms[0]) if terms else jnp.zeros_like(y)


def _conv2d(features: int, kernel_size: Sequence[int], **kwargs: Any) -> nn.Conv:
    """`nn.Conv(features, kernel_size, ...)` with `conv_nhwc`: the same parameters and values."""
    return nn.Conv(features, kernel_size, conv_general_dilated=conv_nhwc, **kwargs)


def _dense(features: int, **kwargs: Any) -> nn.Dense:
    """`nn.Dense(features, ...)` with `dense_dot_general`: the same parameters and values."""
    return nn.Dense(features, dot_general=dense_dot_general, **kwargs)


def _phase_taps(k: int, s: int, pad_lo: int, r: int) -> tuple[list[int], int]:
    """Output phase r of a 1-D transposed conv (kernel k, stride s, `pad_lo` on the dilated input):
    the kernel taps t it uses, and the input offset d of the first one, so that
    y[s·q + r] = Σ_j x[q + d + j] · w[taps[j]]."""
    taps = [t for t in range(k) if (r + t - pad_lo) % s == 0]
    return taps, (r + taps[0] - pad_lo) // s if taps else 0


def conv_transpose_by_phases(
    x: Array, kernel: Array, strides: Sequence[int], padding: str = "SAME"
) -> Array:
    """`lax.conv_transpose(x, kernel, strides, padding)` (Flax ConvTranspose, no bias) as s_h·s_w
    stride-1 convs, one per output phase, interleaved: x [B, h, w, C_in], kernel [kh, kw, C_in,
    F] → [B, h', w', F] ('SAME': s·h; 'VALID': (h-1)·s + k).

    Same sums, no multiplications by the inserted zeros, and a backward pass made of stride-1
    convs, which XLA's CPU backend runs far faster than the gradient of a strided transpose.
    """
    b, h, w, _ = x.shape
    kh, kw, _, f = kernel.shape
    (sh, sw), hw, ks = tuple(strides), (h, w), (kh, kw)
    pads = [lax_padding(k, s, padding) for k, s in zip(ks, (sh, sw), strict=True)]
    out = [
        (n - 1) * s + 1 + lo + hi - k + 1
        for n, s, k, (lo, hi) in zip(hw, (sh, sw), ks, pads, strict=True)
    ]
    per_phase = [-(-o // s) for o, s in zip(out, (sh, sw), strict=True)]  # ⌈out / s⌉
    rows = []
    for rh in range(sh):
        cols = []
        for rw in range(sw):
            (taps_h, dh), (taps_w, dw) = (
                _phase_taps(k, s, lo, r)
                for k, s, (lo, _), r in zip(ks, (sh, sw), pads, (rh, rw), strict=True)
            )
            if not taps_h or not taps_w:  # a phase no tap reaches (kernel smaller than stride)
                cols.append(jnp.zeros((b, *per_phase, f), x.dtype))
                continue
            sub = kernel[jnp.array(taps_h)][:, jnp.array(taps_w)]
            # pad (or crop, when negative) x so a VALID conv gives per_phase outputs from offset d
            conv_pads = [
                (-d, n_out - 1 + len(taps) - n + d)
                for d, taps, n, n_out in zip((dh, dw), (taps_h, taps_w), hw, per_phase, strict=True)
            ]
            cols.append(conv_nhwc(x, sub, (1, 1), conv_pads))
        rows.append(jnp.stack(cols, axis=3))  # [B, n_h, n_w, s_w, F]
    y = jnp.stack(rows, axis=2)  # [B, n_h, s_h, n_w, s_w, F]
    y = y.reshape(b, per_phase[0] * sh, per_phase[1] * sw, f)
    return y[:, : out[0], : out[1]]


def _tap_matrix(kernel: Array) -> Array:
    """kernel [kh, kw, C_in, F] → [C_in, kh·kw·F], taps flipped: x @ it gives, for every input
    pixel, its contribution to each of the kh×kw output pixels a transposed conv spreads it to."""
    kh, kw, c, f = kernel.shape
    return kernel[::-1, ::-1].transpose(2, 0, 1, 3).reshape(c, kh * kw * f)


def conv_transpose_by_depth_to_space(x: Array, kernel: Array) -> Array:
    """`lax.conv_transpose` for kernel size = stride ('SAME' and 'VALID' agree then): the taps
    never overlap, so it is one matmul x [B, h, w, C_in] @ [C_in, kh·kw·F] whose columns are
    laid out as kh×kw output blocks: → [B, kh·h, kw·w, F]. No convolution in either direction.
    """
    b, h, w, _ = x.shape
    kh, kw, _, f = kernel.shape
    flipped = _tap_matrix(kernel)
    y = jnp.dot(x, flipped).reshape(b, h, w, kh, kw, f).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, h * kh, w * kw, f)


def conv_transpose_by_overlap_add(
    x: Array, kernel: Array, strides: Sequence[int], padding: str = "SAME"
) -> Array:
    """`lax.conv_transpose(x, kernel, strides, padding)` as one matmul and an overlap-add:
    x [B, h, w, C_in] @ kernel [C_in, kh·kw·F] gives every tap's contribution, and tap (i, j) of
    input pixel (p, q) lands on output (s·p + i', s·q + j') of the full (h-1)·s + k map (i' the
    flipped tap), which is then cropped (or zero-padded) to the 'SAME'/'VALID' size.

    Fastest for tiny inputs (conv_deep's 3×3 → 7×7: fwd+bwd 5-7 ms against 12-14 ms for the
    phase convs), whose weight gradient the phase convs leave to XLA:CPU's slow kernel-gradient
    convolution; for larger inputs the strided overlap-add's gradient is slower (UpConv picks).
    """
    b, h, w, _ = x.shape
    kh, kw, _, f = kernel.shape
    (sh, sw), zero = tuple(strides), jnp.zeros((), x.dtype)
    (lo_h, hi_h), (lo_w, hi_w) = lax_padding(kh, sh, padding), lax_padding(kw, sw, padding)
    out_h, out_w = (h - 1) * sh + lo_h + hi_h - kh + 2, (w - 1) * sw + lo_w + hi_w - kw + 2
    full_h, full_w = (h - 1) * sh + kh, (w - 1) * sw + kw
    flipped = _tap_matrix(kernel)
    # _matmul: its kernel gradient reads the overlap-add's gradient row-major (no fused transpose)
    taps = _matmul(x.reshape(b * h * w, -1), flipped).reshape(b, h, w, kh, kw, f)
    full = sum(
        jax.lax.pad(
            taps[:, :, :, i, j],
            zero,
            ((0, 0, 0), (i, kh - 1 - i, sh - 1), (j, kw - 1 - j, sw - 1), (0, 0, 0)),
        )
        for i in range(kh)
        for j in range(kw)
    )
    crop_h, crop_w = kh - 1 - lo_h, kw - 1 - lo_w
    return jax.lax.pad(
        full,
        zero,
        (
            (0, 0, 0),
            (-crop_h, out_h + crop_h - full_h, 0),
            (-crop_w, out_w + crop_w - full_w, 0),
            (0, 0, 0),
        ),
    )


def lax_padding(k: int, s: int, padding: str) -> tuple[int, int]:
    """(before, after) zero padding of the stride-dilated input in `lax.conv_transpose` for a
    'SAME' or 'VALID' transposed conv of kernel size k and stride s."""
    if padding == "VALID":
        total = k + s - 2 + max(k - s, 0)
        return k - 1, total - (k - 1)
    total = k + s - 2
    before = k - 1 if s > k - 1 else -(-total // 2)
    return before, total - before


def upsample_2x(x: Array, method: str = "nearest") -> Array:
    """x [B, h, w, C] → [B, 2h, 2w, C]; 'nearest' repeats pixels exactly (Keras UpSampling2D)."""
    if method == "nearest":
        return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), method)


def _fit(x: Array, hw: Sequence[int]) -> Array:
    """Crop (or edge-pad) x [B, h, w, C] to [B, *hw, C]; a no-op when the sizes already match."""
    h, w = hw
    x = x[:, :h, :w]
    pad_h, pad_w = h - x.shape[1], w - x.shape[2]
    if pad_h or pad_w:
        x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return x


def _halve(hw: Sequence[int], *, ceil: bool) -> tuple[int, int]:
    return tuple(-(-n // 2) if ceil else n // 2 for n in hw)


def _level_sizes(hw: Sequence[int], strides: Sequence[int], *, ceil: bool) -> list[tuple[int, int]]:
    """Spatial size at each encoder level: [input (H, W), after block 0, ..., after block n-1]."""
    sizes = [tuple(hw)]
    for s in strides:
        sizes.append(_halve(sizes[-1], ceil=ceil) if s == 2 else sizes[-1])
    return sizes


def _flatten(x: Array) -> Array:
    return x.reshape(x.shape[0], -1)  # [B, H, W, C] → [B, H·W·C]


def _check_images(x: Array, image_shape: Sequence[int], owner: str) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(image_shape):
        h, w, c = image_shape
        raise ValueError(
            f"{owner} expects images [B, {h}, {w}, {c}] (its image_shape), got shape "
            f"{tuple(x.shape)}; build the model with image_shape matching the data"
        )


def _check_choice(owner: str, field: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}.{field} must be one of {', '.join(choices)}; got {value!r}")


def _batch_norm(axis_name: str | None, name: str = "bn") -> nn.BatchNorm:
    return nn.BatchNorm(momentum=BN_MOMENTUM, axis_name=axis_name, name=name)


class _Model(nn.Module):
    """Base of the models: checks option fields when the module is constructed."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        shape = getattr(self, "image_shape", (1, 1, 1))
        if len(tuple(shape)) != 3 or not all(isinstance(n, int) and n > 0 for n in shape):
            raise ValueError(f"{owner}.image_shape must be (H, W, C) positive ints; got {shape!r}")
        for field, choices in (
            ("upsample", UPSAMPLE_MODES),
            ("downsample", DOWNSAMPLE_MODES),
            ("resize_method", RESIZE_METHODS),
            ("activation", tuple(ACTIVATIONS)),
            ("code_activation", tuple(ACTIVATIONS)),
        ):
            if hasattr(self, field):
                _check_choice(owner, field, getattr(self, field), choices)
        super().__post_init__()


# ----------------------------------------------------------------------------------------------
# Building blocks


class UpConv(nn.Module):
    """Transposed conv x [B, h, w, C_in] → [B, h', w', features], exactly `nn.ConvTranspose`.

    The kernel [kh, kw, C_in, features] and bias live in this module (not in a child), so the
    body can use whichever form is fastest without changing the parameter tree or checkpoints:
    one matmul and a depth-to-space reshape when kernel = stride, one matmul and an overlap-add
    for tiny inputs (≤ OVERLAP_ADD_MAX_PIXELS), otherwise s_h·s_w stride-1 phase convs.
    Output size: 'SAME' s·h, 'VALID' (h-1)·s + k.
    """

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (2, 2)
    padding: str = "SAME"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel_shape = (*self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), kernel_shape)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        if tuple(self.kernel_size) == tuple(self.strides):
            y = conv_transpose_by_depth_to_space(x, kernel)
        elif x.shape[1] * x.shape[2] <= OVERLAP_ADD_MAX_PIXELS:
            y = conv_transpose_by_overlap_add(x, kernel, self.strides, self.padding)
        else:
            y = conv_transpose_by_phases(x, kernel, self.strides, self.padding)
        return y + bias


class DownBlock(nn.Module):
    """Conv 3×3 → ReLU [→ BatchNorm], then halve: x [B, H, W, C_in] → [B, H', W', features].

    downsample: 'maxpool' (conv, then 2×2 max-pool), 'strided' (one 3×3 stride-2 conv) or 'none'.
    ceil: halve to ⌈H/2⌉ (Keras 'same' pooling) instead of ⌊H/2⌋ (PyTorch MaxPool2d); both
    modes give the same sizes, so decoders do not depend on the choice.
    """

    features: int
    downsample: str = "maxpool"
    ceil: bool = False
    batch_norm: bool = False
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        if self.downsample == "strided":
            # padding (0, 1) gives ⌊H/2⌋ for every H, like the floor pool; 'SAME' gives ⌈H/2⌉.
            padding = "SAME" if self.ceil else ((0, 1), (0, 1))
            x = _conv2d(self.features, (3, 3), strides=(2, 2), padding=padding, name="conv")(x)
        else:
            x = _conv2d(self.features, (3, 3), padding="SAME", name="conv")(x)
        x = nn.relu(x)
        if self.batch_norm:
            x = _batch_norm(self.bn_axis_name)(x, use_running_average=not train)
        if self.downsample == "maxpool":
            x = max_pool_2x2(x, ceil=self.ceil)
        return x


class UpBlock(nn.Module):
    """Upsample, convolve [→ ReLU → BatchNorm]: x [B, h, w, C_in] → [B, *out_hw, features].

    upsample: 'transpose' (UpConv k×k, stride `strides`; padding 'SAME' or 'VALID', whichever
    lands on out_hw, e.g. 3→7 needs 'VALID'), or 'resize' (resize to out_hw, then a 3×3 stride-1
    conv: no checkerboard artefacts; the same parameter count when kernel=3).
    """

    features: int
    upsample: str = "transpose"
    kernel: int = 3
    strides: int = 2
    relu: bool = True
    batch_norm: bool = False
    bn_axis_name: str | None = None
    resize_method: str = "nearest"

    @nn.compact
    def __call__(self, x: Array, out_hw: Sequence[int], *, train: bool) -> Array:
        b, h, w, c = x.shape
        out_hw = tuple(out_hw)
        if self.upsample == "transpose":
            k, s = self.kernel, self.strides
            valid_hw = ((h - 1) * s + k, (w - 1) * s + k)
            padding = "VALID" if valid_hw == out_hw and (h * s, w * s) != out_hw else "SAME"
            x = UpConv(self.features, (k, k), (s, s), padding, name="up")(x)
            x = _fit(x, out_hw)  # only odd sizes need it: crop one row/column
        else:
            if (h, w) != out_hw:
                x = jax.image.resize(x, (b, *out_hw, c), self.resize_method)
            x = _conv2d(self.features, (3, 3), padding="SAME", name="conv")(x)
        if self.relu:
            x = nn.relu(x)
        if self.batch_norm:
            x = _batch_norm(self.bn_axis_name)(x, use_running_average=not train)
        return x


class DenseBlock(nn.Module):
    """Dense → ReLU → BatchNorm → Dropout: h [B, D_in] → [B, features]."""

    features: int
    dropout_rate: float = 0.2
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, h: Array, *, train: bool) -> Array:
        h = nn.relu(_dense(self.features, name="dense")(h))
        h = _batch_norm(self.bn_axis_name)(h, use_running_average=not train)
        return nn.Dropout(self.dropout_rate, deterministic=not train)(h)


# ----------------------------------------------------------------------------------------------
# Fully connected models: flatten [B, H, W, C] → [B, D], D = H·W·C; decoders reshape back.


class Linear(_Model):
    """D→k→D with no activations; tied=True decodes with the encoder kernel transposed (W' = Wᵀ).

    Parameters: enc_kernel [D, k], enc_bias [k], dec_kernel [k, D] (untied only), dec_bias [D].
    """

    latent_dim: int = 32
    tied: bool = False
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        d, k = math.prod(self.image_shape), self.latent_dim
        init, zeros = nn.initializers.lecun_normal(), nn.initializers.zeros_init()
        self.enc_kernel = self.param("enc_kernel", init, (d, k))
        self.enc_bias = self.param("enc_bias", zeros, (k,))
        if not self.tied:
            self.dec_kernel = self.param("dec_kernel", init, (k, d))
        self.dec_bias = self.param("dec_bias", zeros, (d,))

    def encode(self, x: Array, *, train: bool = False) -> Array:  # [B, H, W, C] → z [B, k]
        _check_images(x, self.image_shape, type(self).__name__)
        return _flatten(x) @ self.enc_kernel + self.enc_bias

    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        kernel = self.enc_kernel.T if self.tied else self.dec_kernel
        return (z @ kernel + self.dec_bias).reshape(z.shape[0], *self.image_shape)

    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class Vanilla(_Model):
    """D→256→128→64→128→256→D with ReLU after every layer but the last (logits).

    code_activation='sigmoid' gives a code in (0, 1) (sparse-KL and contractive AEs); with
    hidden=() the encoder is the single layer h = σ(x W + b) of Rifai et al. (2011).
    """

    hidden: tuple[int, ...] = (256, 128)
    latent_dim: int = 64
    image_shape: ImageShape = (28, 28, 1)
    code_activation: str = "relu"

    def setup(self) -> None:
        self.enc = [_dense(f) for f in (*self.hidden, self.latent_dim)]
        self.dec = [_dense(f) for f in (*reversed(self.hidden), math.prod(self.image_shape))]

    def encode(self, x: Array, *, train: bool = False) -> Array:  # [B, H, W, C] → z [B, k]
        _check_images(x, self.image_shape, type(self).__name__)
        h = _flatten(x)
        for layer in self.enc[:-1]:
            h = nn.relu(layer(h))
        return ACTIVATIONS[self.code_activation](self.enc[-1](h))

    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        h = z
        for layer in self.dec[:-1]:
            h = nn.relu(layer(h))
        return self.dec[-1](h).reshape(z.shape[0], *self.image_shape)

    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class DeepFC(_Model):
    """D→512→256→128→32 and mirror: hidden blocks Dense→ReLU→BatchNorm→Dropout, code Dense→ReLU.

    Layers: enc_0..enc_{n-1} (DenseBlock), code, dec_0..dec_{n-1} (DenseBlock), out (logits).
    """

    hidden: tuple[int, ...] = (512, 256, 128)
    latent_dim: int = 32
    dropout_rate: float = 0.2
    bn_axis_name: str | None = None
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        def block(f: int) -> DenseBlock:
            return DenseBlock(f, self.dropout_rate, self.bn_axis_name)

        self.enc = [block(f) for f in self.hidden]
        self.code = _dense(self.latent_dim)
        self.dec = [block(f) for f in reversed(self.hidden)]
        self.out = _dense(math.prod(self.image_shape))

    def encode(self, x: Array, *, train: bool) -> Array:  # [B, H, W, C] → z [B, k]
        _check_images(x, self.image_shape, type(self).__name__)
        h = _flatten(x)
        for block in self.enc:
            h = block(h, train=train)
        return nn.relu(self.code(h))

    def decode(self, z: Array, *, train: bool) -> Array:  # z [B, k] → [B, H, W, C]
        h = z
        for block in self.dec:
            h = block(h, train=train)
        return self.out(h).reshape(z.shape[0], *self.image_shape)

    def __call__(self, x: Array, *, train: bool) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class Hinton(_Model):
    """D→1000→500→250→30 (linear code) and mirror, Hinton & Salakhutdinov (2006).

    Layers enc_0..enc_n and dec_0..dec_n, n = len(hidden): enc_n is the linear code layer and
    dec_n gives the logits; every other layer is followed by `activation`. Greedy layer-wise
    pretraining trains pair i = (enc_i, dec_{n-i}) on h_i = encode_to(x, i), with
    `reconstruct_layer(h_i, i)` (apply with method=), then fine-tunes the whole stack.
    """

    hidden: tuple[int, ...] = (1000, 500, 250)
    latent_dim: int = 30
    activation: str = "sigmoid"
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        self.enc = [_dense(f) for f in (*self.hidden, self.latent_dim)]
        self.dec = [_dense(f) for f in (*reversed(self.hidden), math.prod(self.image_shape))]

    def _enc_layer(self, h: Array, i: int) -> Array:  # [B, D_i] → [B, D_{i+1}]
        y = self.enc[i](h)
        return y if i == len(self.hidden) else ACTIVATIONS[self.activation](y)

    def encode_to(self, x: Array, depth: int) -> Array:
        """h_depth [B, D_depth]: x [B, H, W, C] through enc_0..enc_{depth-1} (depth 0: flat x)."""
        _check_images(x, self.image_shape, type(self).__name__)
        h = _flatten(x)
        for i in range(depth):
            h = self._enc_layer(h, i)
        return h

    def reconstruct_layer(self, h: Array, index: int) -> Array:
        """Pair `index`: h [B, D_index] → enc_index → dec_{n-index} → pre-activation [B, D_index].

        For index 0 this is the flat image logits; above, apply `activation` to compare with h.
        """
        return self.dec[len(self.hidden) - index](self._enc_layer(h, index))

    def encode(self, x: Array, *, train: bool = False) -> Array:  # [B, H, W, C] → z [B, k]
        return self.encode_to(x, len(self.hidden) + 1)

    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        h = z
        for layer in self.dec[:-1]:
            h = ACTIVATIONS[self.activation](layer(h))
        return self.dec[-1](h).reshape(z.shape[0], *self.image_shape)

    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class VAE(_Model):
    """Gaussian-encoder VAE: D→512→256 ReLU → (mu, logvar) [B, k]; decoder k→256→512→D logits."""

    hidden: tuple[int, ...] = (512, 256)
    latent_dim: int = 16
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        self.enc = [_dense(f) for f in self.hidden]
        self.mu = _dense(self.latent_dim)
        self.logvar = _dense(self.latent_dim)
        self.dec = [_dense(f) for f in (*reversed(self.hidden), math.prod(self.image_shape))]

    def encode(self, x: Array, *, train: bool = False) -> tuple[Array, Array]:
        """x [B, H, W, C] → (mu [B, k], logvar [B, k])."""
        _check_images(x, self.image_shape, type(self).__name__)
        h = _flatten(x)
        for layer in self.enc:
            h = nn.relu(layer(h))
        return self.mu(h), self.logvar(h)

    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        h = z
        for layer in self.dec[:-1]:
            h = nn.relu(layer(h))
        return self.dec[-1](h).reshape(z.shape[0], *self.image_shape)

    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        mu, logvar = self.encode(x, train=train)
        z = _sample(self, mu, logvar, train)
        return self.decode(z, train=train), {"z": z, "mu": mu, "logvar": logvar}


def _sample(module: nn.Module, mu: Array, logvar: Array, train: bool) -> Array:
    """z = mu + exp(logvar/2)·eps with eps from the 'sample' rng stream when training, else mu."""
    if not train:
        return mu
    eps = jax.random.normal(module.make_rng("sample"), mu.shape, mu.dtype)
    return mu + jnp.exp(0.5 * logvar) * eps


# ----------------------------------------------------------------------------------------------
# Convolutional models: channels come from image_shape; logits always have the input's shape.


class ConvSimple(_Model):
    """Conv C→16 3×3 same, ReLU, MaxPool 2 → z [B, H/2, W/2, 16]; ConvTranspose 16→C 2×2 s2.

    upsample='resize' replaces the 2×2 transposed conv by resize + 3×3 conv (more parameters).
    """

    features: int = 16
    upsample: str = "transpose"
    downsample: str = "maxpool"
    resize_method: str = "nearest"
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        self.enc = DownBlock(self.features, self.downsample)
        self.dec = UpBlock(
            self.image_shape[2],
            self.upsample,
            kernel=2,
            relu=False,
            resize_method=self.resize_method,
        )

    def encode(self, x: Array, *, train: bool = False) -> Array:
        _check_images(x, self.image_shape, type(self).__name__)
        return self.enc(x, train=train)

    def decode(self, z: Array, *, train: bool = False) -> Array:
        return self.dec(z, self.image_shape[:2], train=train)

    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class ConvDeep(_Model):
    """Three blocks Conv 3×3 → ReLU → BatchNorm → MaxPool: 28×28×1 → 14×14×16 → 7×7×32 → 3×3×64.

    Decoder: UpBlocks (ConvT 3×3 s2 → ReLU → BN) back through the encoder's sizes (3→7 with
    'VALID', 7→14, 14→28 with 'SAME'; for 32×32: 4→8→16→32), then Conv 3×3 → C logits.
    skip=True concatenates the output of encoder block i (i = 0..n-2) onto the decoder input at
    the same resolution (U-Net); `decode(z)` alone then uses zeros for those features.
    """

    features: tuple[int, ...] = (16, 32, 64)
    upsample: str = "transpose"
    downsample: str = "maxpool"
    skip: bool = False
    resize_method: str = "nearest"
    bn_axis_name: str | None = None
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        self.enc = [
            DownBlock(f, self.downsample, batch_norm=True, bn_axis_name=self.bn_axis_name)
            for f in self.features
        ]
        self.dec = [
            UpBlock(
                f,
                self.upsample,
                batch_norm=True,
                bn_axis_name=self.bn_axis_name,
                resize_method=self.resize_method,
            )
            for f in reversed(self.features)
        ]
        self.out = _conv2d(self.image_shape[2], (3, 3), padding="SAME")

    def _sizes(self) -> list[tuple[int, int]]:  # [(28, 28), (14, 14), (7, 7), (3, 3)]
        return _level_sizes(self.image_shape[:2], [2] * len(self.features), ceil=False)

    def _encode(self, x: Array, train: bool) -> tuple[Array, list[Array]]:
        """x [B, H, W, C] → (z [B, h, w, features[-1]], outputs of blocks 0..n-2 for skips)."""
        _check_images(x, self.image_shape, type(self).__name__)
        feats = []
        for block in self.enc:
            x = block(x, train=train)
            feats.append(x)
        return x, feats[:-1]

    def encode(self, x: Array, *, train: bool) -> Array:
        return self._encode(x, train)[0]

    def decode(self, z: Array, *, train: bool, skips: Sequence[Array] | None = None) -> Array:
        """z [B, h, w, features[-1]] → logits [B, H, W, C]; skips as returned by the encoder."""
        sizes, n = self._sizes(), len(self.features)
        if self.skip and skips is None:
            skips = [
                jnp.zeros((z.shape[0], *sizes[i + 1], f), z.dtype)
                for i, f in enumerate(self.features[:-1])
            ]
        h = z
        for j, block in enumerate(self.dec):
            if self.skip and j > 0:
                h = jnp.concatenate([h, skips[n - 1 - j]], axis=-1)
            h = block(h, sizes[n - 1 - j], train=train)
        return self.out(h)

    def __call__(self, x: Array, *, train: bool) -> tuple[Array, dict[str, Array]]:
        z, skips = self._encode(x, train)
        return self.decode(z, train=train, skips=skips if self.skip else None), {"z": z}


class ConvKeras(_Model):
    """The Keras tutorial's conv AE: Conv16-Pool-Conv8-Pool-Conv8-Pool (same) → z [B, 4, 4, 8].

    Decoder Conv8-Up-Conv8-Up-Conv16(valid)-Up-Conv C (3×3, ReLU, nearest ×2 upsampling): the
    16-channel conv is 'VALID' only where that lands on the image size (28: 16→14→28); for 32×32
    it is 'SAME' (16→32). Upsampling is by resize by design, so there is no `upsample` field.
    """

    features: tuple[int, ...] = (16, 8, 8)
    decoder_features: tuple[int, ...] = (8, 8, 16)
    downsample: str = "maxpool"
    resize_method: str = "nearest"
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        self.enc = [DownBlock(f, self.downsample, ceil=True) for f in self.features]
        code_hw = _level_sizes(self.image_shape[:2], [2] * len(self.features), ceil=True)[-1]
        last_in = [n * 2 ** (len(self.decoder_features) - 1) for n in code_hw]
        valid = [2 * (n - 2) for n in last_in] == list(self.image_shape[:2])
        paddings = ["SAME"] * (len(self.decoder_features) - 1) + ["VALID" if valid else "SAME"]
        pairs = zip(self.decoder_features, paddings, strict=True)
        self.dec = [_conv2d(f, (3, 3), padding=p) for f, p in pairs]
        self.out = _conv2d(self.image_shape[2], (3, 3), padding="SAME")

    def encode(self, x: Array, *, train: bool = False) -> Array:
        _check_images(x, self.image_shape, type(self).__name__)
        for block in self.enc:
            x = block(x, train=train)
        return x

    def decode(self, z: Array, *, train: bool = False) -> Array:
        h = z
        for conv in self.dec:
            h = upsample_2x(nn.relu(conv(h)), self.resize_method)
        return self.out(_fit(h, self.image_shape[:2]))

    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class ConvFlat(_Model):
    """Conv C→32 s2, ReLU, Conv 32→64 s2, ReLU (28→14→7), flatten, Dense → z [B, latent_dim].

    Decoder: Dense → 7·7·64, ReLU, reshape, ConvT 64→32 3×3 s2, ReLU, ConvT 32→C 3×3 s2 → logits.
    Sizes halve with ceil (Conv 'SAME'); odd sizes are cropped back after upsampling.
    skip=True concatenates encoder block i's output (i = 0..n-2) onto the decoder input at the
    same resolution; `decode(z)` alone then uses zeros for those features.
    """

    features: tuple[int, ...] = (32, 64)
    latent_dim: int = 64
    upsample: str = "transpose"
    downsample: str = "strided"
    skip: bool = False
    resize_method: str = "nearest"
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        n = len(self.features)
        self.enc = [DownBlock(f, self.downsample, ceil=True) for f in self.features]
        self.to_code = _dense(self.latent_dim)
        self.from_code = _dense(math.prod(self._sizes()[-1]) * self.features[-1])
        out_features = (*self.features[-2::-1], self.image_shape[2])
        self.dec = [
            UpBlock(f, self.upsample, relu=j < n - 1, resize_method=self.resize_method)
            for j, f in enumerate(out_features)
        ]

    def _sizes(self) -> list[tuple[int, int]]:  # [(28, 28), (14, 14), (7, 7)]
        return _level_sizes(self.image_shape[:2], [2] * len(self.features), ceil=True)

    def _encode(self, x: Array, train: bool) -> tuple[Array, list[Array]]:
        """x [B, H, W, C] → (z [B, latent_dim], outputs of blocks 0..n-2 for skips)."""
        _check_images(x, self.image_shape, type(self).__name__)
        feats = []
        for block in self.enc:
            x = block(x, train=train)
            feats.append(x)
        return self.to_code(_flatten(x)), feats[:-1]

    def encode(self, x: Array, *, train: bool = False) -> Array:
        return self._encode(x, train)[0]

    def decode(
        self, z: Array, *, train: bool = False, skips: Sequence[Array] | None = None
    ) -> Array:
        """z [B, latent_dim] → logits [B, H, W, C]; skips as returned by the encoder."""
        sizes, n = self._sizes(), len(self.features)
        if self.skip and skips is None:
            skips = [
                jnp.zeros((z.shape[0], *sizes[i + 1], f), z.dtype)
                for i, f in enumerate(self.features[:-1])
            ]
        h = nn.relu(self.from_code(z)).reshape(z.shape[0], *sizes[-1], self.features[-1])
        for j, block in enumerate(self.dec):
            if self.skip and j > 0:
                h = jnp.concatenate([h, skips[n - 1 - j]], axis=-1)
            h = block(h, sizes[n - 1 - j], train=train)
        return h

    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z, skips = self._encode(x, train)
        return self.decode(z, train=train, skips=skips if self.skip else None), {"z": z}


class ConvVAE(_Model):
    """Conv VAE: Conv C→16 s2, 16→32 s2, 32→64 s1 (ReLU; 28→14→7→7), flatten 3136 → mu, logvar.

    Decoder: Dense k→3136, ReLU, reshape 7×7×64, ConvT 64→32 s1, ReLU, ConvT 32→16 s2, ReLU,
    ConvT 16→C s2 → logits (all 3×3). `strides` gives each encoder conv's stride (1 or 2).
    """

    features: tuple[int, ...] = (16, 32, 64)
    strides: tuple[int, ...] = (2, 2, 1)
    latent_dim: int = 128
    upsample: str = "transpose"
    downsample: str = "strided"
    resize_method: str = "nearest"
    image_shape: ImageShape = (28, 28, 1)

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.features) or set(self.strides) - {1, 2}:
            raise ValueError(
                f"ConvVAE.strides must give 1 or 2 for each of the {len(self.features)} "
                f"features; got {self.strides!r}"
            )
        super().__post_init__()

    def setup(self) -> None:
        n = len(self.features)
        self.enc = [
            DownBlock(f, self.downsample if s == 2 else "none", ceil=True)
            for f, s in zip(self.features, self.strides, strict=True)
        ]
        self.mu = _dense(self.latent_dim)
        self.logvar = _dense(self.latent_dim)
        self.from_code = _dense(math.prod(self._sizes()[-1]) * self.features[-1])
        out_features = (*self.features[-2::-1], self.image_shape[2])
        self.dec = [
            UpBlock(
                f,
                self.upsample,
                strides=self.strides[n - 1 - j],
                relu=j < n - 1,
                resize_method=self.resize_method,
            )
            for j, f in enumerate(out_features)
        ]

    def _sizes(self) -> list[tuple[int, int]]:  # [(28, 28), (14, 14), (7, 7), (7, 7)]
        return _level_sizes(self.image_shape[:2], self.strides, ceil=True)

    def encode(self, x: Array, *, train: bool = False) -> tuple[Array, Array]:
        """x [B, H, W, C] → (mu [B, k], logvar [B, k])."""
        _check_images(x, self.image_shape, type(self).__name__)
        for block in self.enc:
            x = block(x, train=train)
        h = _flatten(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        sizes, n = self._sizes(), len(self.features)
        h = nn.relu(self.from_code(z)).reshape(z.shape[0], *sizes[-1], self.features[-1])
        for j, block in enumerate(self.dec):
            h = block(h, sizes[n - 1 - j], train=train)
        return h

    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        mu, logvar = self.encode(x, train=train)
        z = _sample(self, mu, logvar, train)
        return self.decode(z, train=train), {"z": z, "mu": mu, "logvar": logvar}


# ----------------------------------------------------------------------------------------------
# The name → model table and helpers

MODELS: dict[str, type[nn.Module]] = {
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
}


def is_vae(model: nn.Module | type[nn.Module]) -> bool:
    """True for the variational models, whose encode returns (mu, logvar)."""
    cls = model if isinstance(model, type) else type(model)
    return issubclass(cls, VAE | ConvVAE)


def model_fields(cls: type[nn.Module]) -> list[str]:
    """The constructor fields of a model class (without Flax's `parent` and `name`)."""
    return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")]


def create_model(name: str, **fields: Any) -> nn.Module:
    """MODELS[name](**fields); lists become tuples (configs read back from JSON hold lists).

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
    return cls(**fields)


def count_params(params: Any) -> int:
    """Number of scalars in a pytree of arrays or ShapeDtypeStructs (pass variables['params'])."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))
