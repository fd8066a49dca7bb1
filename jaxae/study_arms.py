"""The arms of `jaxae.study`'s studies and the claims about their parameter counts.

Each study is a set of arms (a label and the model section it trains), a sentence about their
parameter counts with a check of it, and the extra measures added per run. jaxae.study trains
and reports them; the counts are checked by shape inference before anything trains.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Arm:
    """One arm: a label and the model section (name and fields) it trains."""

    label: str
    model: dict


@dataclasses.dataclass(frozen=True)
class Study:
    """The arms, the claim about their parameter counts (a sentence and a check that returns
    the failure, or None) and the extra measures added per run (jaxae.study.measure's names)."""

    doc: str
    arms: tuple[Arm, ...]
    claim: str
    check: Callable[[dict[str, int]], str | None]
    measures: tuple[str, ...] = ()


def _equal(params: dict[str, int], pairs) -> str | None:
    bad = [f"{a} {params[a]:,} ≠ {b} {params[b]:,}" for a, b in pairs if params[a] != params[b]]
    return "; ".join(bad) or None


def _within(params: dict[str, int], a: str, b: str, margin: float) -> str | None:
    gap = abs(params[a] - params[b]) / params[b]
    return None if gap <= margin else f"{a} {params[a]:,} vs {b} {params[b]:,}: {gap:.1%}"


DEEP = (256, 128, 64)  # 784→256→128→64→32 and mirror
WIDE_MATCHED = 299  # 784→299→32→299→784: 1634·w + 816 params ≈ DEEP's 489,136 (+0.05%)

# The architecture grid: channels (a quarter or half of conv_deep's 16/32/64) × depth (blocks)
# × kernel size: 2 × 2 × 2 = 8 arms of 1,297 to 58,337 parameters, small so that every arm
# trains in minutes on a CPU. Depth also sets the code: 2 blocks end at 7×7, 3 blocks at 3×3,
# so the report shows code size beside every arm.
CHANNELS = ((4, 8, 16), (8, 16, 32))
DEPTHS = (2, 3)
KERNELS = (3, 5)
GRID = tuple(itertools.product(CHANNELS, DEPTHS, KERNELS))


def grid_label(features: tuple[int, ...], depth: int, kernel: int) -> str:
    """'c8_d3_k5': first block's channels, blocks, kernel size."""
    return f"c{features[0]}_d{depth}_k{kernel}"


def _grows_along_each_axis(params: dict[str, int]) -> str | None:
    """None when every arm has more parameters than the arm one step down any grid axis."""
    bad = []
    for f, d, k in GRID:
        for lower in ((CHANNELS[0], d, k), (f, DEPTHS[0], k), (f, d, KERNELS[0])):
            a, b = grid_label(*lower), grid_label(f, d, k)
            if a != b and not params[b] > params[a]:
                bad.append(f"{b} {params[b]:,} ≤ {a} {params[a]:,}")
    return "; ".join(bad) or None


STUDIES: dict[str, Study] = {
    "stride_vs_pool": Study(
        "max-pool vs strided-conv downsampling on conv_simple and conv_deep",
        tuple(
            Arm(f"{m}_{d}", {"name": m, "downsample": d})
            for m in ("conv_simple", "conv_deep")
            for d in ("maxpool", "strided")
        ),
        "a stride-2 3×3 conv replaces conv + pool: equal parameter counts per family",
        lambda p: _equal(
            p,
            [
                ("conv_simple_maxpool", "conv_simple_strided"),
                ("conv_deep_maxpool", "conv_deep_strided"),
            ],
        ),
    ),
    "depth_vs_width": Study(
        "one wide hidden layer vs three narrow ones, code 32, at matched parameter counts",
        (
            Arm("deep_256_128_64", {"name": "vanilla", "hidden": DEEP, "latent_dim": 32}),
            Arm(
                f"wide_{WIDE_MATCHED}",
                {"name": "vanilla", "hidden": (WIDE_MATCHED,), "latent_dim": 32},
            ),
            Arm("wide_1024", {"name": "vanilla", "hidden": (1024,), "latent_dim": 32}),
        ),
        f"deep and wide_{WIDE_MATCHED} within 1% of each other; wide_1024 (the exercise's "
        "784→1024→32) is 3.4× larger, shown for reference",
        lambda p: _within(p, f"wide_{WIDE_MATCHED}", "deep_256_128_64", 0.01),
    ),
    "skips": Study(
        "conv_deep with U-Net skip connections vs none; MSE with the code zeroed",
        (
            Arm("no_skips", {"name": "conv_deep", "skip": False}),
            Arm("unet_skips", {"name": "conv_deep", "skip": True}),
        ),
        "skips widen the decoder's inputs (concatenated channels), so unet_skips has more",
        lambda p: None if p["unet_skips"] > p["no_skips"] else "skips added no parameters",
        ("zeroed_code_mse",),
    ),
    "upsampling": Study(
        "conv_deep decoders: transposed conv vs nearest resize + conv; checkerboard energy",
        (
            Arm("transpose", {"name": "conv_deep", "upsample": "transpose"}),
            Arm("resize", {"name": "conv_deep", "upsample": "resize"}),
        ),
        "both decoders use 3×3 kernels with the same channels: equal parameter counts",
        lambda p: _equal(p, [("transpose", "resize")]),
        ("checkerboard_energy", "checkerboard_energy_of_originals"),
    ),
    "architecture": Study(
        "conv_deep channel counts × depth × kernel size: first-block channels 4 or 8 "
        "(doubling per block), 2 or 3 blocks, 3×3 or 5×5 kernels",
        tuple(
            Arm(grid_label(f, d, k), {"name": "conv_deep", "features": f[:d], "kernel_size": k})
            for f, d, k in GRID
        ),
        "more channels, blocks or kernel taps, more parameters: each arm has more than the arm "
        "one step down any axis",
        _grows_along_each_axis,
    ),
}
