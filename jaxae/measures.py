"""Measures of trained runs that the studies and the analysis add to their tables: checkerboard
energy of the reconstructions' spectrum, their sharpness against the originals' (high-frequency
energy), and reconstruction with the code zeroed (is the bottleneck used?)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxae import losses
from jaxae.analysis.load import Run
from jaxae.runtime.batching import map_over_batches


def checkerboard_energy(images: np.ndarray, stride: int = 2) -> float:
    """The fraction of the non-DC spectral energy of images [N, H, W, C] that lies at the
    stride's frequencies: the 2-D DFT bins (a·H/s, b·W/s) for a, b in 0..s−1, not both 0.

    A period-`stride` pattern, the artefact of a stride-`stride` transposed convolution whose
    kernel overlaps unevenly, puts all its energy there (a ±1 checkerboard with stride 2 gives
    1.0); a smooth image puts almost none. Each image's mean is removed first (the DC bin).
    """
    x = np.asarray(images, np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2  # [N, H, W, C]
    h, w = x.shape[1:3]
    rows = [a * h // stride for a in range(stride) if (a * h) % stride == 0]
    cols = [b * w // stride for b in range(stride) if (b * w) % stride == 0]
    at = sum(power[:, r, c].sum() for r in rows for c in cols)  # the DC bin is 0 here
    total = power.sum()
    return float(at / total) if total > 0 else 0.0


def high_frequency_fraction(images: np.ndarray, cutoff: float = 0.5) -> float:
    """The fraction of the non-DC spectral energy of images [N, H, W, C] above `cutoff` times
    the Nyquist frequency (radially: sqrt(fy² + fx²) > cutoff · 1/2 cycles per pixel).

    Blur takes energy from high frequencies to nowhere, so the fraction falls; noise adds
    energy at every frequency, so on natural images it rises. Each image's mean is removed
    (the DC bin); the fraction is over the whole set (energies summed first).
    """
    x = np.asarray(images, np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2  # [N, H, W, C]
    fy, fx = np.fft.fftfreq(x.shape[1]), np.fft.fftfreq(x.shape[2])
    radius = np.hypot(fy[:, None], fx[None, :])  # [H, W] cycles per pixel; Nyquist is 0.5
    total = power.sum()
    return float(power[:, radius > cutoff * 0.5].sum() / total) if total > 0 else 0.0


def sharpness_ratio(recon: np.ndarray, x: np.ndarray, cutoff: float = 0.5) -> float:
    """high_frequency_fraction of reconstructions / that of their originals, [N, H, W, C] each:
    1.0 is as sharp as the data, below 1 blurrier, above 1 noisier (or artefacts). NaN when the
    originals have no such energy (constant images, 1×1 vectors)."""
    reference = high_frequency_fraction(x, cutoff)
    return high_frequency_fraction(recon, cutoff) / reference if reference > 0 else float("nan")


def _zeroed_code_logits(module, x):
    """Decoder logits from a zero code, the encoder's skip connections kept (ConvDeep, ConvFlat
    with skip=True); without skips the decoder sees nothing of x. x [B, H, W, C] → logits."""
    z, skips = module._encode(x, False)  # noqa: SLF001 (the skips travel only inside the model)
    return module.decode(jnp.zeros_like(z), train=False, skips=skips if module.skip else None)


def zeroed_code_mse(run: Run, x: np.ndarray, batch_size: int = 250) -> float:
    """Mean test MSE of reconstructions whose code is zeroed: x [N, H, W, C] in [0, 1].

    Near the normal MSE means the decoder reconstructs through the skips alone (the bottleneck is
    bypassed); near the MSE of a constant image means everything passes through the code.
    """

    def fn(b):
        logits = run.model.apply(run.variables, b, method=_zeroed_code_logits)
        return losses.mse(logits, b)

    return float(np.mean(map_over_batches(fn, x, min(batch_size, len(x)))))
