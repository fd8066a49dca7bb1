"""Streaming from disk: a row view over an np.memmap that reads only the rows asked for.

Why not Grain: training already gathers each batch from a host array by sorted indices
(jaxae.runtime.feeding.host_batches), so any array-like that reads rows on demand streams; a
memmap of the .npy file does that with no new dependency, and the batches are the same ones
the in-memory array gives. Grain would replace the feeder itself for the same batches.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

STREAM_MODES = ("auto", "on", "off")
# 'auto' streams a file larger than this fraction of the memory the machine has free.
AUTO_FRACTION = 0.5


class Rows:
    """Rows `index` [n] (sorted) of `base` [N, ...] (e.g. an np.memmap), read on access.

    transform(raw rows [b, ...]) -> rows [b, *shape[1:]] of `dtype` (e.g. scale and reshape
    features); the identity by default. Supports len, .shape/.dtype/.ndim/.nbytes and indexing
    by int, slice or index array, like the ndarray it stands for.
    """

    def __init__(
        self,
        base: Any,
        index: np.ndarray,
        *,
        shape: tuple[int, ...] | None = None,
        dtype: Any = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.base, self.index = base, np.asarray(index, np.int64)
        self.transform = transform or (lambda rows: rows)
        self.shape = (len(self.index), *(shape or base.shape[1:]))
        self.dtype = np.dtype(dtype or base.dtype)

    ndim = property(lambda self: len(self.shape))
    nbytes = property(lambda self: math.prod(self.shape) * self.dtype.itemsize)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer):
            return self[np.array([key])][0]
        rows = self.index[key]
        if isinstance(key, slice) or np.all(np.diff(rows) >= 0):
            out = self.base[rows]
        else:  # memmaps read fastest in file order: read sorted, then restore the order
            order = np.argsort(rows, kind="stable")
            out = np.empty_like(self.base[rows[:0]], shape=(len(rows), *self.base.shape[1:]))
            out[order] = self.base[rows[order]]
        return np.ascontiguousarray(self.transform(np.asarray(out)), self.dtype)

    def subset(self, key: Any) -> Rows:
        """The rows self.index[key] as another streaming view (nothing is read)."""
        return Rows(self.base, self.index[key], shape=self.shape[1:], dtype=self.dtype,
                    transform=self.transform)  # fmt: skip

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def take(x: Any, key: Any) -> Any:
    """x[key] for a Dataset array, keeping a streaming view a view (nothing read from disk)."""
    return x.subset(key) if isinstance(x, Rows) else x[key]


def is_streamed(array: Any) -> bool:
    """Whether a Dataset array reads from disk (training must then feed it from the host)."""
    return isinstance(array, Rows | np.memmap)


def should_stream(mode: str, nbytes: int) -> bool:
    """'on'/'off' decide; 'auto' streams when nbytes exceeds AUTO_FRACTION of free memory."""
    if mode != "auto":
        return mode == "on"
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no sysconf: keep in memory
        return False
    return nbytes > AUTO_FRACTION * free
