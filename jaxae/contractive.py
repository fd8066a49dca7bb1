"""The contractive penalty ‖J_f(x)‖²_F of an encoder per example: exact, Hutchinson, closed form."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

METHODS = ("exact", "hutchinson", "closed_form")

# encode_fn: x [B, ...] -> codes [B, K], each example's code depending on that example only.
EncodeFn = Callable[[jax.Array], jax.Array]


def _flat_codes(encode_fn: EncodeFn) -> EncodeFn:
    """encode_fn with its codes flattened to [B, K] (conv codes [B, h, w, c] are allowed)."""
    return lambda x: encode_fn(x).reshape(x.shape[0], -1)


def exact_penalty(encode_fn: EncodeFn, x: jax.Array) -> jax.Array:
    """Σ_ij (∂f_i/∂x_j)² per example from the full Jacobian: x [B, ...] -> [B].

    Each example is encoded alone (a batch of one) and differentiated with `jax.jacrev` when the
    code is smaller than the input (K reverse passes) or `jax.jacfwd` otherwise (D forward passes).
    """
    f = _flat_codes(encode_fn)
    in_size = math.prod(x.shape[1:])
    out_size = jax.eval_shape(f, x[:1]).shape[-1]
    jac = jax.jacrev if out_size <= in_size else jax.jacfwd

    def one(xi: jax.Array) -> jax.Array:  # xi [...] -> scalar
        j = jac(lambda v: f(v[None])[0])(xi)  # [K, ...]
        return jnp.sum(j**2)

    return jax.vmap(one)(x)


def hutchinson_penalty(
    encode_fn: EncodeFn, x: jax.Array, key: jax.Array, num_probes: int = 1
) -> jax.Array:
    """Unbiased estimate of ‖J‖²_F per example: mean over m probes v ~ N(0, I) of ‖J v‖².

    E[‖J v‖²] = tr(Jᵀ J) = ‖J‖²_F. One probe costs one forward-mode pass (`jax.jvp`) through the
    encoder for the whole batch; v has the shape of x, so examples get independent probes.
    x [B, ...] -> [B].
    """
    f = _flat_codes(encode_fn)
    probes = jax.random.normal(key, (num_probes, *x.shape), x.dtype)

    def one(v: jax.Array) -> jax.Array:  # v [B, ...] -> ‖J v‖² [B]
        _, jv = jax.jvp(f, (x,), (v,))
        return jnp.sum(jv**2, axis=-1)

    return jnp.mean(jax.vmap(one)(probes), axis=0)


def closed_form_penalty(h: jax.Array, kernel: jax.Array) -> jax.Array:
    """‖J‖²_F of one sigmoid layer h = σ(x W + b) (Rifai et al. 2011): h [B, K], W [D, K] -> [B].

    ∂h_j/∂x_i = h_j (1 - h_j) W_ij, so ‖J‖²_F = Σ_j (h_j (1 - h_j))² Σ_i W_ij².
    """
    return jnp.sum((h * (1.0 - h)) ** 2 * jnp.sum(kernel**2, axis=0), axis=-1)


def contractive_penalty(
    encode_fn: EncodeFn,
    x: jax.Array,
    *,
    method: str,
    num_probes: int = 1,
    key: jax.Array | None = None,
    kernel: jax.Array | None = None,
) -> jax.Array:
    """Squared Frobenius norm of the encoder's Jacobian at each example: x [B, ...] -> [B].

    encode_fn maps a batch [B, ...] to codes [B, K] (or [B, h, w, c], flattened here), examples
    independent (no BatchNorm batch statistics). method: 'exact' (jacrev/jacfwd per example),
    'hutchinson' (`num_probes` Gaussian probes through jvp, needs `key`; unbiased) or
    'closed_form' (encode_fn must be one sigmoid layer σ(x W + b); needs its `kernel` W [D, K]).
    """
    if method == "exact":
        return exact_penalty(encode_fn, x)
    if method == "hutchinson":
        if key is None:
            raise ValueError("contractive_penalty(method='hutchinson') needs key=a PRNG key")
        return hutchinson_penalty(encode_fn, x, key, num_probes)
    if method == "closed_form":
        if kernel is None:
            raise ValueError(
                "contractive_penalty(method='closed_form') needs kernel=W [D, K] of the sigmoid "
                "layer"
            )
        return closed_form_penalty(_flat_codes(encode_fn)(x), kernel)
    raise ValueError(
        f"contractive_penalty: method must be one of {', '.join(METHODS)}; got {method!r}"
    )
