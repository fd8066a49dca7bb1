"""Forms of the models' operations that XLA:CPU runs faster, opt-in through `fast_ops`.

`OPS` is the bundle `models.create_model(..., fast=True)` builds with: nn.Dense, nn.Conv and
nn.ConvTranspose with the same parameters and values (to float rounding) in every autodiff mode,
and a 2×2 max-pool with nn.max_pool's values and gradients. `resolve(config.fast_ops)` says
whether a run uses them; `process` holds the process and compile settings that come with them.
"""

from __future__ import annotations

from jaxae.fast import conv, conv_transpose, dense, norm, pool, process
from jaxae.models.layers import Ops

__all__ = [
    "MODES",
    "OPS",
    "conv",
    "conv_transpose",
    "dense",
    "norm",
    "pool",
    "process",
    "resolve",
]

OPS = Ops(
    dense=dense.dense,
    conv=conv.conv,
    conv_transpose=conv_transpose.ConvTranspose,
    max_pool=pool.max_pool_2x2,
)
MODES = ("auto", "on", "off")


def resolve(mode: str) -> tuple[bool, str]:
    """(use the fast ops, a short reason for the start-up line) for a `fast_ops` mode:
    'on' and 'off' as given, 'auto' on the CPU backend only (the forms were measured there)."""
    if mode == "on":
        return True, "fast ops on"
    if mode == "off":
        return False, "fast ops off"
    if mode != "auto":
        raise ValueError(f"fast_ops must be one of {', '.join(MODES)}; got {mode!r}")
    import jax

    backend = jax.default_backend()
    if backend == "cpu":
        return True, "fast ops on (auto: CPU backend)"
    return False, f"fast ops off (auto: {backend} backend)"
