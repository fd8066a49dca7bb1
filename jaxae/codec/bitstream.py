"""The file format: a small versioned header, then the range-coded latent integers.

  magic b'JXC' | format version (1 byte) | model fingerprint (4 bytes) |
  H, W, C, h, w, M as unsigned LEB128 varints (1 byte each below 128) | payload
The payload is constriction's range coder (32-bit words, little-endian): for each latent
channel its h·w symbols under that channel's integer table, then for every escaped integer
(outside its channel's table) a sign, a length n (uniform over 1..20) and n - 1 raw bits.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxae.codec.tables import Tables
from jaxae.errors import UserError

MAGIC = b"JXC"
FORMAT_VERSION = 1
MAX_ESCAPE_BITS = 20  # escaped integers lie within 2^20 of their table's support


class BitstreamError(UserError, ValueError):
    """A file that is no codec file of this model and format; one line saying which and why."""


@dataclasses.dataclass(frozen=True)
class Header:
    fingerprint: bytes  # 4 bytes
    image_shape: tuple[int, int, int]  # (H, W, C)
    latent_shape: tuple[int, int, int]  # (h, w, M)

    def pack(self) -> bytes:
        numbers = (*self.image_shape, *self.latent_shape)
        return MAGIC + bytes([FORMAT_VERSION]) + self.fingerprint + b"".join(map(_varint, numbers))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def unpack(data: bytes, name: str) -> tuple[Header, bytes]:
    """(header, payload) of a file's bytes; BitstreamError names `name` and what is wrong."""
    if data[:3] != MAGIC:
        raise BitstreamError(f"{name} is not a jaxae codec file (it does not start with {MAGIC!r})")
    if len(data) < 8:
        raise BitstreamError(f"{name} is truncated: {len(data)} bytes, shorter than any header")
    if data[3] != FORMAT_VERSION:
        raise BitstreamError(
            f"{name} has codec format version {data[3]}; this jaxae reads version "
            f"{FORMAT_VERSION}: decompress it with the jaxae version that wrote it"
        )
    numbers, pos = [], 8
    for _ in range(6):
        n, shift = 0, 0
        while True:
            if pos >= len(data) or shift > 28:
                raise BitstreamError(f"{name} is truncated or corrupt inside its header")
            n |= (data[pos] & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if not data[pos - 1] & 0x80:
                break
        numbers.append(n)
    header = Header(bytes(data[4:8]), tuple(numbers[:3]), tuple(numbers[3:]))
    return header, bytes(data[pos:])


def _escape_parts(d: int) -> tuple[int, int]:
    """d >= 0 -> (n, rest) with d + 1 = 2^(n-1) + rest, 1 <= n <= MAX_ESCAPE_BITS."""
    n = (d + 1).bit_length()
    if n > MAX_ESCAPE_BITS:
        raise ValueError(f"latent integer {d} beyond its table's support cannot be coded")
    return n, d + 1 - 2 ** (n - 1)


def encode(q: np.ndarray, tables: Tables) -> bytes:
    """Latent integers q [h, w, M] int -> payload bytes (range-coded)."""
    import constriction

    uniform = constriction.stream.model.Uniform
    enc = constriction.stream.queue.RangeEncoder()
    escapes = []
    for c, model in enumerate(tables.models()):
        values = q[..., c].reshape(-1).astype(np.int64) - int(tables.offsets[c])
        esc = int(tables.lengths[c]) - 1
        outside = (values < 0) | (values >= esc)
        enc.encode(np.where(outside, esc, values).astype(np.int32), model)
        escapes += [(v, esc) for v in values[outside].tolist()]
    for v, esc in escapes:
        sign, d = (0, -v - 1) if v < 0 else (1, v - esc)
        n, rest = _escape_parts(d)
        enc.encode(np.array([sign], np.int32), uniform(2))
        enc.encode(np.array([n - 1], np.int32), uniform(MAX_ESCAPE_BITS))
        if n > 1:
            enc.encode(np.array([rest], np.int32), uniform(2 ** (n - 1)))
    return enc.get_compressed().astype("<u4").tobytes()


def decode(payload: bytes, latent_shape: tuple[int, int, int], tables: Tables) -> np.ndarray:
    """Payload bytes -> latent integers [h, w, M] int32 (the inverse of `encode`)."""
    import constriction

    h, w, m = latent_shape
    if len(payload) % 4:
        raise ValueError("payload is not a whole number of 32-bit words")
    uniform = constriction.stream.model.Uniform
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, "<u4").astype(np.uint32))
    q = np.zeros((m, h * w), np.int64)
    escaped = []
    for c, model in enumerate(tables.models()):
        symbols = np.asarray(dec.decode(model, h * w), np.int64)
        q[c] = symbols + int(tables.offsets[c])
        esc = int(tables.lengths[c]) - 1
        escaped += [(c, i, esc) for i in np.flatnonzero(symbols == esc).tolist()]
    for c, i, esc in escaped:
        sign = int(dec.decode(uniform(2)))
        n1 = int(dec.decode(uniform(MAX_ESCAPE_BITS)))
        rest = int(dec.decode(uniform(2**n1))) if n1 else 0
        d = 2**n1 + rest - 1
        q[c, i] = int(tables.offsets[c]) + (-d - 1 if sign == 0 else esc + d)
    return np.moveaxis(q.reshape(m, h, w), 0, -1).astype(np.int32)
