"""Forms of the models' operations that XLA:CPU runs faster, opt-in through `fast_ops`.

`OPS` is the bundle `models.create_model(..., fast=True)` builds with: nn.Dense, nn.Conv and
nn.ConvTranspose with the same parameters and values (to float rounding) in every autodiff mode,
and a 2×2 max-pool with nn.max_pool's values and gradients; `blur` is SSIM's window for the
eval step. `resolve(config.fast_ops)` says whether a run uses them; `process` holds the process
and compile settings that come with them.
"""

from __future__ import annotations

from jaxae.errors import UserError
from jaxae.fast import blur, conv, conv_transpose, dense, norm, pool, process
from jaxae.models.layers import Ops

__all__ = [
    "MODES",
    "OPS",
    "FastOpsDtypeError",
    "blur",
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


class FastOpsDtypeError(UserError, ValueError):
    """fast_ops='on' with a compute dtype other than float32."""


def resolve(mode: str, compute_dtype: str = "float32") -> tuple[bool, str]:
    """(use the fast ops, a short reason for the start-up line) for a `fast_ops` mode:
    'on' and 'off' as given, 'auto' on the CPU backend only (the forms were measured there).

    The forms are measured and proven equal in float32 only: with a bfloat16 `compute_dtype`
    'auto' turns them off and 'on' raises FastOpsDtypeError.
    """
    if mode not in MODES:
        raise ValueError(f"fast_ops must be one of {', '.join(MODES)}; got {mode!r}")
    if compute_dtype != "float32" and mode != "off":
        if mode == "on":
            raise FastOpsDtypeError(
                f"fast_ops='on' is for float32 compute only, not compute_dtype={compute_dtype!r}; "
                f"use --config.fast_ops=off (or auto) with bfloat16"
            )
        return False, f"fast ops off (auto: {compute_dtype} compute)"
    if mode == "on":
        return True, "fast ops on"
    if mode == "off":
        return False, "fast ops off"
    import jax

    backend = jax.default_backend()
    if backend == "cpu":
        return True, "fast ops on (auto: CPU backend)"
    return False, f"fast ops off (auto: {backend} backend)"
