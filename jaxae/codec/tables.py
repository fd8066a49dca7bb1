"""The entropy coder's integer probability tables, built once per checkpoint and stored with it.

For every latent channel c the table holds integer counts summing to 2^PRECISION over the
symbols offset_c, offset_c + 1, ..., offset_c + length_c - 2, and one last escape symbol for
integers outside that support (coded after it with a fixed code, jaxae/codec/bitstream.py).
The counts come from the trained entropy model's float bin probabilities, but once written to
workdir/codec/tables_<step>.npz they are the only thing either side of the coder reads: a file
written on one machine decodes to the same integers on any other.
"""

from __future__ import annotations

import hashlib
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxae.errors import UserError

PRECISION = 16  # table counts sum to 2^16; every symbol gets at least 1
SEARCH = 512  # integers -SEARCH..SEARCH are scanned for each channel's support
SUPPORT_MIN = 2.0**-PRECISION  # integers less likely than one count go to the escape symbol


class TablesMismatchError(UserError, ValueError):
    """Stored tables that belong to other parameters than the checkpoint they are keyed to."""


class Tables:
    """counts [C, L] int32 (zero-padded), offsets [C] and lengths [C] int32 (escape included),
    and the model fingerprint (4 bytes) a file header carries."""

    def __init__(self, counts: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, fp: bytes):
        self.counts, self.offsets, self.lengths, self.fingerprint = counts, offsets, lengths, fp
        self._models: list[Any] | None = None

    @property
    def channels(self) -> int:
        return len(self.offsets)

    def models(self) -> list[Any]:
        """constriction Categorical models, one per channel, from the integer counts only."""
        import constriction

        if self._models is None:
            self._models = [
                constriction.stream.model.Categorical(
                    self.counts[c, : self.lengths[c]].astype(np.float64) / 2**PRECISION,
                    perfect=False,
                )
                for c in range(self.channels)
            ]
        return self._models


def quantize_pmf(p: np.ndarray) -> tuple[np.ndarray, int]:
    """Float bin probabilities p [2·SEARCH + 1] (of -SEARCH..SEARCH) -> (counts [L] int32 with
    the escape count last, offset). Counts are >= 1 and sum to exactly 2^PRECISION."""
    keep = np.flatnonzero(p >= SUPPORT_MIN)
    lo, hi = (keep[0], keep[-1]) if len(keep) else (int(np.argmax(p)),) * 2
    probs = np.append(p[lo : hi + 1], max(1.0 - p[lo : hi + 1].sum(), 0.0))
    total = 2**PRECISION
    counts = np.maximum(np.floor(probs / probs.sum() * total), 1).astype(np.int64)
    biggest = int(np.argmax(counts))
    counts[biggest] += total - counts.sum()  # the rounding remainder on the likeliest symbol
    if counts[biggest] < 1:
        raise ValueError("entropy model too spread for the coder's table precision")
    return counts.astype(np.int32), int(lo) - SEARCH


def build(model, params: Any) -> Tables:
    """The tables of a trained Codec `model` with `params` (float32, computed on this machine)."""
    grid = jnp.arange(-SEARCH, SEARCH + 1, dtype=jnp.float32)
    v = jnp.broadcast_to(grid, (model.latent_channels, len(grid)))
    p = model.apply({"params": params}, v, method=lambda m, v: m.density.bin_probability(v))
    rows = [quantize_pmf(row) for row in np.asarray(p, np.float64)]
    width = max(len(r[0]) for r in rows)
    counts = np.zeros((len(rows), width), np.int32)
    for c, (row, _) in enumerate(rows):
        counts[c, : len(row)] = row
    offsets = np.array([r[1] for r in rows], np.int32)
    lengths = np.array([len(r[0]) for r in rows], np.int32)
    return Tables(counts, offsets, lengths, fingerprint(params, counts, offsets, lengths))


def params_digest(params: Any) -> hashlib._Hash:
    """sha256 over every parameter's path, shape, dtype and bytes, in tree order."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h


def fingerprint(params: Any, counts, offsets, lengths) -> bytes:
    """4 bytes naming the parameters and tables together: a file from any other model differs."""
    from jaxae.codec.bitstream import FORMAT_VERSION

    h = params_digest(params)
    for a in (counts, offsets, lengths):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(bytes([FORMAT_VERSION]))
    return h.digest()[:4]


def path_for(workdir: pathlib.Path, step: int) -> pathlib.Path:
    return pathlib.Path(workdir) / "codec" / f"tables_{step}.npz"


def load_or_build(workdir: pathlib.Path, step: int, model, params: Any, builder=None) -> Tables:
    """The stored tables of checkpoint `step`, or built now (`builder()`, by default `build`)
    and stored (atomically) if absent."""
    path = path_for(workdir, step)
    digest = params_digest(params).hexdigest()
    if path.exists():
        with np.load(path) as f:
            if str(f["params_sha256"]) != digest:
                raise TablesMismatchError(
                    f"{path} was built for other parameters than checkpoint {step} holds; "
                    f"delete it (it is rebuilt on the next compress) or restore its checkpoint"
                )
            return Tables(f["counts"], f["offsets"], f["lengths"], f["fingerprint"].tobytes())
    tables = builder() if builder is not None else build(model, params)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        counts=tables.counts,
        offsets=tables.offsets,
        lengths=tables.lengths,
        fingerprint=np.frombuffer(tables.fingerprint, np.uint8),
        params_sha256=np.array(digest),
    )
    tmp.replace(path)
    return tables
