"""A VQ-VAE workdir as a codec: each image's grid of codebook indices, range-coded.

The indices [h, w] of an image are coded as one latent channel under one integer table: the
frequencies of the codebook entries over (up to) the first `TABLE_EXAMPLES` training images,
plus one count for every entry so that an index never seen in training is still coded
cheaply. The table is built once per checkpoint and stored with it
(workdir/codec/tables_<step>.npz, as the learned codec's), so the same file format, header and
fingerprint apply, and files decode to the same indices on any machine.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from jaxae.codec import tables
from jaxae.codec.api import ImageCodec, NotACodecError

TABLE_EXAMPLES = 10_000
BATCH = 500


class VQCodec(ImageCodec):
    """compress / decompress of uint8 images of the run's image shape through its indices."""

    def __init__(self, run):
        self.run = run
        self.channels = run.image_shape[2]
        self.entries = int(run.model.num_embeddings)
        self.tables = tables.load_or_build(
            run.workdir, run.step, run.model, self.params, builder=self._build_tables
        )

    @functools.cached_property
    def _fns(self):
        model = self.run.model

        def indices(params, x):  # x [B, H, W, C] float -> [B, h, w] int32
            return model.apply({"params": params}, x, method=type(model).code_indices)

        def synthesis(params, idx):  # [B, h, w] -> images [B, H, W, C] in [0, 1]
            logits = model.apply({"params": params}, idx, method=type(model).decode_indices)
            return jax.nn.sigmoid(logits)

        return jax.jit(indices), jax.jit(synthesis)

    def _indices(self, images: np.ndarray) -> np.ndarray:
        """uint8 [B, H, W, C] -> codebook indices [B, h, w] int32."""
        x = images.astype(np.float32) / 255.0
        return np.asarray(self._fns[0](self.params, x)).astype(np.int32)

    def _build_tables(self) -> tables.Tables:
        """One table over the codebook entries from their training-split frequencies."""
        from jaxae import data

        train = data.load_for_config(self.run.config).train_images[:TABLE_EXAMPLES]
        counts = np.ones(self.entries, np.float64)  # every entry codable
        for start in range(0, len(train), BATCH):
            idx = self._indices(train[start : start + BATCH])
            counts += np.bincount(idx.reshape(-1), minlength=self.entries)[: self.entries]
        grid = np.zeros(2 * tables.SEARCH + 1)
        grid[tables.SEARCH : tables.SEARCH + self.entries] = counts / counts.sum()
        row, offset = tables.quantize_pmf(grid)
        counts_, offsets = row[None], np.array([offset], np.int32)
        lengths = np.array([len(row)], np.int32)
        fp = tables.fingerprint(self.params, counts_, offsets, lengths)
        return tables.Tables(counts_, offsets, lengths, fp)

    def latent_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        if tuple(image_shape) != self.run.image_shape:
            return (-1, -1, -1)  # never matches a header: only the run's image shape is coded
        return (*self._grid, 1)

    @functools.cached_property
    def _grid(self) -> tuple[int, int]:
        return self._indices(np.zeros((1, *self.run.image_shape), np.uint8)).shape[1:]

    def check_image(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        image = super().check_image(image, name)
        if image.shape != self.run.image_shape:
            raise NotACodecError(
                f"{name}: shape {image.shape}; this VQ-VAE codes {self.run.image_shape} images only"
            )
        return image

    def latents(self, image: np.ndarray) -> np.ndarray:
        """uint8 image [H, W, C] -> its indices as latent integers [h, w, 1] int32."""
        return self._indices(image[None])[0][..., None]

    def synthesize(self, q: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
        """Indices [h, w, 1] -> uint8 image [H, W, C]."""
        out = np.asarray(self._fns[1](self.params, q[None, ..., 0].astype(np.int32))[0])
        return np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)

    def estimated_bits(self, image: np.ndarray) -> float:
        """-log2 of the indices' probability under the integer table (the coder's own model)."""
        q = self.latents(self.check_image(image))[..., 0].reshape(-1) - int(self.tables.offsets[0])
        p = self.tables.counts[0, : self.tables.lengths[0]] / 2.0**tables.PRECISION
        inside = (q >= 0) & (q < len(p) - 1)
        return float(-np.log2(p[q[inside]]).sum() + (~inside).sum() * -np.log2(p[-1]))
