"""`ImageCodec`: a trained codec workdir as compress / decompress of uint8 images.

Every image goes through the transforms one at a time (batch 1, one compiled function per
image size), so the encoder's integers and the decoder's floats are those of the same
computation whether an image is compressed alone, decoded from a file, or reconstructed here.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import numpy as np

from jaxae import models
from jaxae.analysis.load import Run, load
from jaxae.codec import bitstream, entropy, tables
from jaxae.codec.bitstream import BitstreamError, Header
from jaxae.errors import UserError
from jaxae.models.codec import STRIDE


class NotACodecError(UserError, ValueError):
    """A workdir whose model is not the learned codec, or an image the codec cannot take."""


class ImageCodec:
    """The codec of `run` (a loaded workdir) with its stored integer tables."""

    def __init__(self, run: Run):
        if not isinstance(run.model, models.Codec):
            raise NotACodecError(
                f"{run.workdir} holds model {run.config.model.name!r}, neither the learned codec "
                f"nor a VQ-VAE; train one with: python train.py --config configs/codec.py "
                f"--workdir DIR"
            )
        self.run = run
        self.channels = run.image_shape[2]
        self.tables = tables.load_or_build(run.workdir, run.step, run.model, self.params)

    @classmethod
    def from_workdir(cls, workdir: str | pathlib.Path, step=None) -> ImageCodec:
        return cls(load(workdir, step))

    @property
    def params(self):
        return self.run.variables["params"]

    @functools.cached_property
    def _fns(self):
        model = self.run.model

        def analysis(params, x):  # x [1, H, W, C] float -> rounded latents [1, h, w, M]
            return model.apply({"params": params}, x, method=type(model).encode)

        def synthesis(params, q):  # q [1, h, w, M] -> images [1, 4h, 4w, C] in [0, 1]
            return jax.nn.sigmoid(model.apply({"params": params}, q, method=type(model).decode))

        def bits(params, q):  # entropy-model estimate of the payload: [1] bits
            return entropy.bits(model.apply({"params": params}, q, method=type(model).likelihoods))

        return jax.jit(analysis), jax.jit(synthesis), jax.jit(bits)

    def latent_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """The latent integers' shape (h, w, M) of an image of `image_shape` (H, W, C)."""
        hh, ww, _ = image_shape
        return (-(-hh // STRIDE), -(-ww // STRIDE), self.tables.channels)

    def check_image(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """image [H, W] or [H, W, C] uint8 -> [H, W, C]; one-line error for anything else."""
        if image.dtype != np.uint8:
            raise NotACodecError(f"{name}: images must be uint8 (0..255), got dtype {image.dtype}")
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[-1] != self.channels:
            raise NotACodecError(
                f"{name}: shape {image.shape} is not [H, W, {self.channels}] for this codec"
            )
        return image

    def latents(self, image: np.ndarray) -> np.ndarray:
        """uint8 image [H, W, C] -> latent integers [ceil(H/4), ceil(W/4), M] int32.

        H and W are padded to multiples of 4 by repeating the edge; the header keeps H and W."""
        h, w, _ = image.shape
        pad = ((0, -h % STRIDE), (0, -w % STRIDE), (0, 0))
        x = np.pad(image, pad, mode="edge").astype(np.float32)[None] / 255.0
        return np.asarray(self._fns[0](self.params, x)[0]).astype(np.int32)

    def synthesize(self, q: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
        """Latent integers [h, w, M] -> uint8 image of `image_shape` (H, W, C)."""
        h, w, _ = image_shape
        out = np.asarray(self._fns[1](self.params, q[None].astype(np.float32))[0])
        return np.rint(np.clip(out[:h, :w], 0.0, 1.0) * 255.0).astype(np.uint8)

    def reconstruct(self, image: np.ndarray) -> np.ndarray:
        """The model's rounded reconstruction of a uint8 image [H, W, C] -> uint8 [H, W, C]."""
        image = self.check_image(image)
        return self.synthesize(self.latents(image), image.shape)

    def estimated_bits(self, image: np.ndarray) -> float:
        """-log2 P(round(y)) under the float entropy model: the payload size it predicts."""
        q = self.latents(self.check_image(image))
        return float(self._fns[2](self.params, q[None].astype(np.float32))[0])

    def compress(self, image: np.ndarray) -> bytes:
        """uint8 image [H, W, C] (or [H, W]) -> the file's bytes: header + payload."""
        image = self.check_image(image)
        q = self.latents(image)
        header = Header(self.tables.fingerprint, image.shape, q.shape)
        return header.pack() + bitstream.encode(q, self.tables)

    def decompress(self, data: bytes, name: str = "file") -> np.ndarray:
        """A file's bytes -> uint8 image [H, W, C]; BitstreamError for a foreign or bad file."""
        header, payload = bitstream.unpack(data, name)
        if header.fingerprint != self.tables.fingerprint:
            raise BitstreamError(
                f"{name} was written by another model (fingerprint {header.fingerprint.hex()}; "
                f"{self.run.workdir} at step {self.run.step} is {self.tables.fingerprint.hex()}): "
                f"decompress it with the --workdir and --step that compressed it"
            )
        (hh, ww, c), latent = header.image_shape, header.latent_shape
        if c != self.channels or tuple(latent) != self.latent_shape((hh, ww, c)):
            raise BitstreamError(f"{name} is corrupt: its header's shapes do not fit this model")
        try:
            q = bitstream.decode(payload, latent, self.tables)
        except (ValueError, RuntimeError) as e:
            raise BitstreamError(f"{name} is truncated or corrupt ({e})") from None
        return self.synthesize(q, header.image_shape)


def open_codec(workdir: str | pathlib.Path, step=None) -> ImageCodec:
    """The codec of a workdir: the learned codec, or a VQ-VAE's indices (jaxae/codec/vq.py)."""
    run = load(workdir, step)
    if isinstance(run.model, models.ConvVQ):
        from jaxae.codec.vq import VQCodec

        return VQCodec(run)
    return ImageCodec(run)
