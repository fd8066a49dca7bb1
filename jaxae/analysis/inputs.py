"""What `Run`'s methods take: images as training scaled them, codes of the model's shape."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxae import data
from jaxae.errors import UserError

_TAKES = "uint8 pixels 0..255 or floats in [0, 1]"


class InputError(UserError, ValueError):
    """An array passed to a Run method that its model cannot take; one line naming the fix."""


def images(x: Any, image_shape: tuple[int, ...], *, check_range: bool = True) -> jax.Array:
    """x [B, H, W, C] uint8 (divided by 255, as training does) or float in [0, 1] → float32.

    Anything else raises InputError: another dtype, floats outside [0, 1] or not finite (with
    `check_range`), a shape other than [B, *image_shape]. Traced values skip the value checks.
    """
    x = _as_array(x)
    want = "[B, " + ", ".join(map(str, image_shape)) + "]"
    if tuple(x.shape[1:]) != tuple(image_shape) or x.shape[0] == 0:
        raise InputError(f"images of shape {tuple(x.shape)}: {_shape_hint(x.shape, image_shape)}")
    if x.dtype == jnp.uint8:
        if not isinstance(x, jax.core.Tracer):  # divided on the host, as the analysis does
            x = np.asarray(x)
        return jnp.asarray(data.to_float(x))
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise InputError(f"images of dtype {x.dtype}: the model takes {want} as {_TAKES}")
    if check_range and not isinstance(x, jax.core.Tracer):
        lo, hi = float(jnp.min(x)), float(jnp.max(x))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError(f"images hold NaN or inf; the model takes {_TAKES}")
        if lo < 0.0 or hi > 1.0:
            hint = " (0..255 pixels as floats? divide by 255)" if hi > 1.0 else ""
            raise InputError(
                f"images span [{lo:g}, {hi:g}]; the model takes {_TAKES}{hint}, scaled as in "
                f"training"
            )
    return jnp.asarray(x, jnp.float32)


def codes(z: Any, code_shape: tuple[int, ...]) -> jax.Array:
    """z [B, *code_shape] float (as `Run.code` returns) → float32; else InputError."""
    z = _as_array(z)
    want = "[B, " + ", ".join(map(str, code_shape)) + "]"
    if tuple(z.shape[1:]) != tuple(code_shape) or z.shape[0] == 0:
        raise InputError(
            f"codes of shape {tuple(z.shape)}: the decoder takes {want}, what run.code returns"
        )
    if not jnp.issubdtype(z.dtype, jnp.floating):
        raise InputError(f"codes of dtype {z.dtype}: the decoder takes floats {want}")
    return jnp.asarray(z, jnp.float32)


def _as_array(x: Any) -> Any:
    """A numpy or jax array as given; lists and scalars through np.asarray."""
    if isinstance(x, np.ndarray | jax.Array):
        return x
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as e:
        raise InputError(f"{type(x).__name__} is not an array ({e}); pass a numpy array") from None


def _shape_hint(shape: tuple[int, ...], image_shape: tuple[int, ...]) -> str:
    """What to change in an array of `shape` to get [B, *image_shape]."""
    want = "[B, " + ", ".join(map(str, image_shape)) + "]"
    shape, image_shape = tuple(shape), tuple(image_shape)
    if shape == image_shape:
        return f"one image; the model takes a batch {want}: pass x[None]"
    if len(shape) == len(image_shape) and shape[1:] == image_shape[:-1] and image_shape[-1] == 1:
        return f"no channel axis; the model takes {want}: pass x[..., None]"
    if len(shape) >= 1 and shape[0] == 0:
        return f"an empty batch; the model takes {want} with B ≥ 1"
    return f"the model takes {want} (batch, height, width, channels)"
