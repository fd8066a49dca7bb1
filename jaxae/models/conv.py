"""Convolutional models: channels come from image_shape; logits always have the input's shape.

ConvSimple, ConvDeep, ConvKeras, ConvFlat and ConvVAE, built from layers.DownBlock and
layers.UpBlock. Each returns (logits [B, H, W, C], aux) from __call__, with the code in aux['z']
(and 'mu', 'logvar' for the VAE).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.models.layers import (
    DownBlock,
    ImageShape,
    Model,
    UpBlock,
    check_images,
    conv,
    dense,
    fit,
    flatten,
    float32_out,
    level_sizes,
    sample,
    upsample_2x,
)

Array = jax.Array


def _zero_skips(z: Array, sizes: Sequence[tuple[int, int]], features: Sequence[int]) -> list[Array]:
    """Zeros in place of the outputs of encoder blocks 0..n-2: [B, *sizes[i + 1], features[i]]."""
    return [jnp.zeros((z.shape[0], *sizes[i + 1], f), z.dtype) for i, f in enumerate(features[:-1])]


class ConvSimple(Model):
    """Conv C→16 3×3 same, ReLU, MaxPool 2 → z [B, H/2, W/2, 16]; ConvTranspose 16→C 2×2 s2.

    upsample='resize' replaces the 2×2 transposed conv by resize + 3×3 conv (more parameters).
    """

    features: int = 16
    upsample: str = "transpose"
    downsample: str = "maxpool"
    resize_method: str = "nearest"
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        shared = {"init_scheme": self.init_scheme, "ops": self.ops, "dtype": self.dtype}
        self.enc = DownBlock(self.features, self.downsample, **shared)
        self.dec = UpBlock(
            self.image_shape[2],
            self.upsample,
            kernel=2,
            relu=False,
            resize_method=self.resize_method,
            **shared,
        )

    @float32_out
    def encode(self, x: Array, *, train: bool = False) -> Array:
        check_images(x, self.image_shape, type(self).__name__)
        return self.enc(x, train=train)

    @float32_out
    def decode(self, z: Array, *, train: bool = False) -> Array:
        return self.dec(z, self.image_shape[:2], train=train)

    @float32_out
    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class ConvDeep(Model):
    """Three blocks Conv 3×3 → ReLU → BatchNorm → MaxPool: 28×28×1 → 14×14×16 → 7×7×32 → 3×3×64.

    Decoder: UpBlocks (ConvT 3×3 s2 → ReLU → BN) back through the encoder's sizes (3→7 with
    'VALID', 7→14, 14→28 with 'SAME'; for 32×32: 4→8→16→32), then Conv 3×3 → C logits.
    kernel_size (odd) replaces 3×3 in every conv and transposed conv. skip=True concatenates
    the output of encoder block i (i = 0..n-2) onto the decoder input at the same resolution
    (U-Net); `decode(z)` alone then uses zeros for those features.
    """

    features: tuple[int, ...] = (16, 32, 64)
    kernel_size: int = 3
    upsample: str = "transpose"
    downsample: str = "maxpool"
    skip: bool = False
    resize_method: str = "nearest"
    bn_axis_name: str | None = None
    image_shape: ImageShape = (28, 28, 1)

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0:  # no centre: 'SAME' would shift each layer by half a pixel
            raise ValueError(
                f"ConvDeep.kernel_size must be odd (3, 5, ...); got {self.kernel_size}"
            )
        super().__post_init__()

    def setup(self) -> None:
        k = self.kernel_size
        common = {
            "batch_norm": True,
            "bn_axis_name": self.bn_axis_name,
            "init_scheme": self.init_scheme,
            "ops": self.ops,
            "dtype": self.dtype,
        }
        self.enc = [DownBlock(f, self.downsample, kernel=k, **common) for f in self.features]
        self.dec = [
            UpBlock(
                f,
                self.upsample,
                kernel=k,
                resize_kernel=k,
                resize_method=self.resize_method,
                **common,
            )
            for f in reversed(self.features)
        ]
        self.out = conv(self, self.image_shape[2], self.features[0], kernel=k)

    def _sizes(self) -> list[tuple[int, int]]:  # [(28, 28), (14, 14), (7, 7), (3, 3)]
        return level_sizes(self.image_shape[:2], [2] * len(self.features), ceil=False)

    def _encode(self, x: Array, train: bool) -> tuple[Array, list[Array]]:
        """x [B, H, W, C] → (z [B, h, w, features[-1]], outputs of blocks 0..n-2 for skips)."""
        check_images(x, self.image_shape, type(self).__name__)
        feats = []
        for block in self.enc:
            x = block(x, train=train)
            feats.append(x)
        return x, feats[:-1]

    @float32_out
    def encode(self, x: Array, *, train: bool) -> Array:
        return self._encode(x, train)[0]

    @float32_out
    def decode(self, z: Array, *, train: bool, skips: Sequence[Array] | None = None) -> Array:
        """z [B, h, w, features[-1]] → logits [B, H, W, C]; skips as returned by the encoder."""
        sizes, n = self._sizes(), len(self.features)
        if self.skip and skips is None:
            skips = _zero_skips(z, sizes, self.features)
        h = z
        for j, block in enumerate(self.dec):
            if self.skip and j > 0:
                h = jnp.concatenate([h, skips[n - 1 - j]], axis=-1)
            h = block(h, sizes[n - 1 - j], train=train)
        return self.out(h)

    @float32_out
    def __call__(self, x: Array, *, train: bool) -> tuple[Array, dict[str, Array]]:
        z, skips = self._encode(x, train)
        return self.decode(z, train=train, skips=skips if self.skip else None), {"z": z}


class ConvKeras(Model):
    """The Keras tutorial's conv AE: Conv16-Pool-Conv8-Pool-Conv8-Pool (same) → z [B, 4, 4, 8].

    Decoder Conv8-Up-Conv8-Up-Conv16(valid)-Up-Conv C (3×3, ReLU, nearest ×2 upsampling): the
    16-channel conv is 'VALID' only where that lands on the image size (28: 16→14→28); for 32×32
    it is 'SAME' (16→32). Upsampling is by resize by design, so there is no `upsample` field.
    """

    features: tuple[int, ...] = (16, 8, 8)
    decoder_features: tuple[int, ...] = (8, 8, 16)
    downsample: str = "maxpool"
    resize_method: str = "nearest"
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        shared = {"init_scheme": self.init_scheme, "ops": self.ops, "dtype": self.dtype}
        self.enc = [DownBlock(f, self.downsample, ceil=True, **shared) for f in self.features]
        code_hw = level_sizes(self.image_shape[:2], [2] * len(self.features), ceil=True)[-1]
        last_in = [n * 2 ** (len(self.decoder_features) - 1) for n in code_hw]
        valid = [2 * (n - 2) for n in last_in] == list(self.image_shape[:2])
        paddings = ["SAME"] * (len(self.decoder_features) - 1) + ["VALID" if valid else "SAME"]
        c_ins = (self.features[-1], *self.decoder_features[:-1])
        layers = zip(self.decoder_features, c_ins, paddings, strict=True)
        self.dec = [conv(self, f, c_in, padding=p) for f, c_in, p in layers]
        self.out = conv(self, self.image_shape[2], self.decoder_features[-1])

    @float32_out
    def encode(self, x: Array, *, train: bool = False) -> Array:
        check_images(x, self.image_shape, type(self).__name__)
        for block in self.enc:
            x = block(x, train=train)
        return x

    @float32_out
    def decode(self, z: Array, *, train: bool = False) -> Array:
        h = z
        for layer in self.dec:
            h = upsample_2x(nn.relu(layer(h)), self.resize_method)
        return self.out(fit(h, self.image_shape[:2]))

    @float32_out
    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class ConvFlat(Model):
    """Conv C→32 s2, ReLU, Conv 32→64 s2, ReLU (28→14→7), flatten, Dense → z [B, latent_dim].

    Decoder: Dense → 7·7·64, ReLU, reshape, ConvT 64→32 3×3 s2, ReLU, ConvT 32→C 3×3 s2 → logits.
    Sizes halve with ceil (Conv 'SAME'); odd sizes are cropped back after upsampling.
    skip=True concatenates encoder block i's output (i = 0..n-2) onto the decoder input at the
    same resolution; `decode(z)` alone then uses zeros for those features.
    """

    features: tuple[int, ...] = (32, 64)
    latent_dim: int = 64
    upsample: str = "transpose"
    downsample: str = "strided"
    skip: bool = False
    resize_method: str = "nearest"
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        n, shared = (
            len(self.features),
            {"init_scheme": self.init_scheme, "ops": self.ops, "dtype": self.dtype},
        )
        self.enc = [DownBlock(f, self.downsample, ceil=True, **shared) for f in self.features]
        code_size = math.prod(self._sizes()[-1]) * self.features[-1]
        self.to_code = dense(self, self.latent_dim, code_size)
        self.from_code = dense(self, code_size, self.latent_dim)
        out_features = (*self.features[-2::-1], self.image_shape[2])
        self.dec = [
            UpBlock(f, self.upsample, relu=j < n - 1, resize_method=self.resize_method, **shared)
            for j, f in enumerate(out_features)
        ]

    def _sizes(self) -> list[tuple[int, int]]:  # [(28, 28), (14, 14), (7, 7)]
        return level_sizes(self.image_shape[:2], [2] * len(self.features), ceil=True)

    def _encode(self, x: Array, train: bool) -> tuple[Array, list[Array]]:
        """x [B, H, W, C] → (z [B, latent_dim], outputs of blocks 0..n-2 for skips)."""
        check_images(x, self.image_shape, type(self).__name__)
        feats = []
        for block in self.enc:
            x = block(x, train=train)
            feats.append(x)
        return self.to_code(flatten(x)), feats[:-1]

    @float32_out
    def encode(self, x: Array, *, train: bool = False) -> Array:
        return self._encode(x, train)[0]

    @float32_out
    def decode(
        self, z: Array, *, train: bool = False, skips: Sequence[Array] | None = None
    ) -> Array:
        """z [B, latent_dim] → logits [B, H, W, C]; skips as returned by the encoder."""
        sizes, n = self._sizes(), len(self.features)
        if self.skip and skips is None:
            skips = _zero_skips(z, sizes, self.features)
        h = nn.relu(self.from_code(z)).reshape(z.shape[0], *sizes[-1], self.features[-1])
        for j, block in enumerate(self.dec):
            if self.skip and j > 0:
                h = jnp.concatenate([h, skips[n - 1 - j]], axis=-1)
            h = block(h, sizes[n - 1 - j], train=train)
        return h

    @float32_out
    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z, skips = self._encode(x, train)
        return self.decode(z, train=train, skips=skips if self.skip else None), {"z": z}


class ConvVAE(Model):
    """Conv VAE: Conv C→16 s2, 16→32 s2, 32→64 s1 (ReLU; 28→14→7→7), flatten 3136 → mu, logvar.

    Decoder: Dense k→3136, ReLU, reshape 7×7×64, ConvT 64→32 s1, ReLU, ConvT 32→16 s2, ReLU,
    ConvT 16→C s2 → logits (all 3×3). `strides` gives each encoder conv's stride (1 or 2).
    """

    features: tuple[int, ...] = (16, 32, 64)
    strides: tuple[int, ...] = (2, 2, 1)
    latent_dim: int = 128
    upsample: str = "transpose"
    downsample: str = "strided"
    resize_method: str = "nearest"
    image_shape: ImageShape = (28, 28, 1)

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.features) or set(self.strides) - {1, 2}:
            raise ValueError(
                f"ConvVAE.strides must give 1 or 2 for each of the {len(self.features)} "
                f"features; got {self.strides!r}"
            )
        super().__post_init__()

    def setup(self) -> None:
        n, shared = (
            len(self.features),
            {"init_scheme": self.init_scheme, "ops": self.ops, "dtype": self.dtype},
        )
        self.enc = [
            DownBlock(f, self.downsample if s == 2 else "none", ceil=True, **shared)
            for f, s in zip(self.features, self.strides, strict=True)
        ]
        code_size = math.prod(self._sizes()[-1]) * self.features[-1]
        self.mu = dense(self, self.latent_dim, code_size)
        self.logvar = dense(self, self.latent_dim, code_size)
        self.from_code = dense(self, code_size, self.latent_dim)
        out_features = (*self.features[-2::-1], self.image_shape[2])
        self.dec = [
            UpBlock(
                f,
                self.upsample,
                strides=self.strides[n - 1 - j],
                relu=j < n - 1,
                resize_method=self.resize_method,
                **shared,
            )
            for j, f in enumerate(out_features)
        ]

    def _sizes(self) -> list[tuple[int, int]]:  # [(28, 28), (14, 14), (7, 7), (7, 7)]
        return level_sizes(self.image_shape[:2], self.strides, ceil=True)

    @float32_out
    def encode(self, x: Array, *, train: bool = False) -> tuple[Array, Array]:
        """x [B, H, W, C] → (mu [B, k], logvar [B, k])."""
        check_images(x, self.image_shape, type(self).__name__)
        for block in self.enc:
            x = block(x, train=train)
        h = flatten(x)
        return self.mu(h), self.logvar(h)

    @float32_out
    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        sizes, n = self._sizes(), len(self.features)
        h = nn.relu(self.from_code(z)).reshape(z.shape[0], *sizes[-1], self.features[-1])
        for j, block in enumerate(self.dec):
            h = block(h, sizes[n - 1 - j], train=train)
        return h

    @float32_out
    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        mu, logvar = self.encode(x, train=train)
        z = sample(self, mu, logvar, train)
        return self.decode(z, train=train), {"z": z, "mu": mu, "logvar": logvar}
