"""Fixed-size, masked batches over a dataset: one compilation for every batch, the last padded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np


def padded_batches(
    x: np.ndarray, batch_size: int, *, multiple: int = 1
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(start, batch [b, ...], mask [b] float32) over x [N, ...], every batch of one size b.

    b = min(batch_size, N) rounded down to a multiple of `multiple` (the device count; at least
    `multiple`); the last batch is zero-padded and its padding has mask 0.
    """
    n = len(x)
    b = max(multiple, min(batch_size, n) // multiple * multiple)
    for start in range(0, n, b):
        batch = np.asarray(x[start : start + b])
        mask = np.ones(b, np.float32)
        if len(batch) < b:
            mask[len(batch) :] = 0
            batch = np.concatenate(
                [batch, np.zeros((b - len(batch), *batch.shape[1:]), batch.dtype)]
            )
        yield start, batch, mask


def mean_over_batches(
    sums_fn: Callable[[Any, Any, jax.Array], dict[str, jax.Array]],
    x: np.ndarray,
    batch_size: int,
    key: jax.Array,
    *,
    put: Callable[[np.ndarray], Any] = np.asarray,
    multiple: int = 1,
) -> dict[str, float]:
    """Mean over x [N, ...] of per-example values, from `sums_fn(batch, mask, key) -> {name:
    masked sum}` (a jitted function that sums on the device, so a sharded run fetches scalars).

    `put` places each batch and mask (e.g. onto a mesh); batch i gets fold_in(key, start).
    """
    totals: dict[str, float] = {}
    for start, batch, mask in padded_batches(x, batch_size, multiple=multiple):
        sums = sums_fn(put(batch), put(mask), jax.random.fold_in(key, start))
        for name, value in jax.device_get(sums).items():
            totals[name] = totals.get(name, 0.0) + float(value)
    return {name: value / len(x) for name, value in totals.items()}


def map_over_batches(
    fn: Callable[..., Any], x: np.ndarray, batch_size: int, *, key: jax.Array | None = None
) -> Any:
    """fn over x [N, ...] in padded batches; its outputs (pytrees of [b, ...]) joined: [N, ...].

    With `key`, fn(batch, fold_in(key, start)) as in `mean_over_batches`; else fn(batch).
    """
    outs = []
    for start, batch, _ in padded_batches(x, batch_size):
        m = min(len(batch), len(x) - start)
        out = fn(batch) if key is None else fn(batch, jax.random.fold_in(key, start))
        outs.append(jax.tree.map(lambda a, m=m: np.asarray(a)[:m], out))
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)
