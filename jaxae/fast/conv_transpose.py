"""Transposed convs as stride-1 phase convs, an overlap-add or a depth-to-space matmul, and
`ConvTranspose`: nn.ConvTranspose's parameters and values, whichever form is fastest on XLA:CPU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.fast.conv import conv_nhwc
from jaxae.fast.dense import matmul

Array = jax.Array
# Inputs of at most this many pixels use the overlap-add form, larger ones the phase convs:
# the faster of the two on XLA:CPU for 3×3 and 7×7 inputs (benchmarks/ATTEMPTS.md).
OVERLAP_ADD_MAX_PIXELS = 16


def lax_padding(k: int, s: int, padding: str) -> tuple[int, int]:
    """(before, after) zero padding of the stride-dilated input in `lax.conv_transpose` for a
    'SAME' or 'VALID' transposed conv of kernel size k and stride s."""
    if padding == "VALID":
        total = k + s - 2 + max(k - s, 0)
        return k - 1, total - (k - 1)
    total = k + s - 2
    before = k - 1 if s > k - 1 else -(-total // 2)
    return before, total - before


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
    convolution; for larger inputs the strided overlap-add's gradient is slower (ConvTranspose
    picks).
    """
    b, h, w, _ = x.shape
    kh, kw, _, f = kernel.shape
    (sh, sw), zero = tuple(strides), jnp.zeros((), x.dtype)
    (lo_h, hi_h), (lo_w, hi_w) = lax_padding(kh, sh, padding), lax_padding(kw, sw, padding)
    out_h, out_w = (h - 1) * sh + lo_h + hi_h - kh + 2, (w - 1) * sw + lo_w + hi_w - kw + 2
    full_h, full_w = (h - 1) * sh + kh, (w - 1) * sw + kw
    flipped = _tap_matrix(kernel)
    # matmul: its kernel gradient reads the overlap-add's gradient row-major (no fused transpose)
    taps = matmul(x.reshape(b * h * w, -1), flipped).reshape(b, h, w, kh, kw, f)
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


class ConvTranspose(nn.Module):
    """`nn.ConvTranspose` for 2-D NHWC inputs, 'SAME' or 'VALID' padding and transpose_kernel
    False: x [B, h, w, C_in] → [B, h', w', features] ('SAME' s·h, 'VALID' (h-1)·s + k).

    The same fields (the ones the models use), the same parameters, kernel [kh, kw, C_in,
    features] then bias, drawn in the same order, so a checkpoint of either loads into the
    other. The body is whichever form is fastest on XLA:CPU: one matmul and a depth-to-space
    reshape when kernel = stride, one matmul and an overlap-add for tiny inputs
    (≤ OVERLAP_ADD_MAX_PIXELS), otherwise s_h·s_w stride-1 phase convs.
    """

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: Sequence[int] = (2, 2)
    padding: str = "SAME"
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()
    dtype: Any = None  # compute dtype, as nn.ConvTranspose's (None: the inputs' and parameters')

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel_shape = (*self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, kernel_shape)
        bias = self.param("bias", self.bias_init, (self.features,))
        x, kernel, bias = nn.dtypes.promote_dtype(
            x, kernel, bias, dtype=self.dtype
        )  # as nn.ConvTranspose
        if tuple(self.kernel_size) == tuple(self.strides):
            y = conv_transpose_by_depth_to_space(x, kernel)
        elif x.shape[1] * x.shape[2] <= OVERLAP_ADD_MAX_PIXELS:
            y = conv_transpose_by_overlap_add(x, kernel, self.strides, self.padding)
        else:
            y = conv_transpose_by_phases(x, kernel, self.strides, self.padding)
        return y + bias
