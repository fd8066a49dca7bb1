"""nn.Conv through `conv_nhwc`: the same values and derivatives, forms XLA:CPU runs faster."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jaxae.fast.dense import matmul

Array = jax.Array
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
    the matmul's output. Both gradients come out as convs in XLA:CPU's canonical NHWC/HWIO/NHWC
    form, which it runs with its library kernels inside a scan too (it rewrites other forms
    only outside loops; attempt 31). Convs with one input channel (the images) are one matmul
    of the shifted images, and stride-1 convs with one output channel one matmul and a sum of
    shifted maps: XLA:CPU's convs are slowest at C = 1 (benchmarks/ATTEMPTS.md, attempts
    15-16). Any other conv goes to `lax`.
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
    return matmul(patches, w.reshape(kh * kw, f)).reshape(b, oh, ow, f)


def _conv_one_channel_out(x: Array, w: Array, padding: Any) -> Array:
    """x [B, H, W, C] * w [kh, kw, C, 1], stride 1: one matmul gives every tap's map, then the
    kh·kw shifted maps are summed."""
    b, h, wd, c = x.shape
    kh, kw, _, _ = w.shape
    ((lo_h, hi_h), (lo_w, hi_w)) = padding
    oh, ow = h + lo_h + hi_h - kh + 1, wd + lo_w + hi_w - kw + 1
    z = matmul(x.reshape(b * h * wd, c), w[..., 0].transpose(2, 0, 1).reshape(c, kh * kw))
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
        # the kernel as [kh, kw, F, C]: reverse mode transposes this term into the input-gradient
        # conv in XLA:CPU's canonical form (NHWC, HWIO, NHWC)
        hwoi = ("NHWC", "HWOI", "NHWC")
        w_hwoi = w.transpose(0, 1, 3, 2)
        terms.append(
            jax.lax.conv_general_dilated(dx, w_hwoi, strides, padding, dimension_numbers=hwoi)
        )
    if not isinstance(dw, SymbolicZero):
        # x as [C, H, W, B], dw as [C, kh, kw, F], the term as [H', W', B, F]: reverse mode
        # transposes this into the kernel-gradient conv in the canonical form too
        dims = ("CHWN", "IHWO", "HWNC")
        term = jax.lax.conv_general_dilated(
            _to_chwn(x), dw.transpose(2, 0, 1, 3), strides, padding, dimension_numbers=dims
        )
        terms.append(term.transpose(2, 0, 1, 3))
    y = _conv(x, w, strides, padding)
    return y, sum(terms[1:], start=terms[0]) if terms else jnp.zeros_like(y)


def conv(features: int, kernel_size: Sequence[int], **kwargs: Any) -> nn.Conv:
    """`nn.Conv(features, kernel_size, ...)` with `conv_nhwc`: the same parameters and values."""
    return nn.Conv(features, kernel_size, conv_general_dilated=conv_nhwc, **kwargs)
