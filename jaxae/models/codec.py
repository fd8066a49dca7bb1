"""The learned image codec (Ballé et al. 2017): analysis transform, quantizer, factorized
entropy model and synthesis transform, trained for rate + λ · distortion.

x [B, H, W, C] -> y = analysis(x) [B, H/4, W/4, M] -> ŷ -> logits = synthesis(ŷ) [B, H, W, C].
In training ŷ = y + U(-1/2, 1/2) (the noise relaxation of rounding; optionally rounding with a
straight-through gradient for the synthesis input); at evaluation ŷ = round(y), the integers a
bitstream carries. The rate is -log2 P(ŷ) under the entropy model.

Plain Flax convolutions always (no fast-ops bundle): the decoder has to compute the same floats
when a file is written and when it is read, and both go through the plain layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.codec.entropy import FactorizedDensity
from jaxae.codec.gdn import GDN
from jaxae.models.layers import ImageShape, Model, initializers

Array = jax.Array
STRIDE = 4  # the analysis transform downsamples by 2 twice
PIXEL_EPS = 1e-4  # decoded pixels are clipped to [eps, 1 - eps] before the logit (0.03 of 255)


class _Up(nn.Module):
    """A transposed conv ('up': its kernel [k, k, C_in, F] counts fans as PyTorch's does), then
    IGDN unless it is the last stage."""

    features: int
    kernel: int
    strides: int
    init_scheme: str
    igdn: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array:
        k = self.kernel
        init = initializers(self.init_scheme, self.features * k * k, transposed=True)
        x = nn.ConvTranspose(
            self.features, (k, k), strides=(self.strides,) * 2, padding="SAME", name="up", **init
        )(x)
        return GDN(inverse=True, name="igdn")(x) if self.igdn else x


class Codec(Model):
    """Conv 5×5 s2 -> GDN -> Conv 5×5 s2 -> GDN -> Conv 5×5 -> y [B, H/4, W/4, latent_channels];
    the synthesis mirrors it with transposed convs and IGDN, ending in C logits.

    Any H and W divisible by 4 work (the transforms are convolutional); `image_shape` gives the
    channels and the size the model is initialised with.
    """

    features: int = 32
    latent_channels: int = 16
    kernel: int = 5
    density_filters: Sequence[int] = (3, 3, 3)
    density_init_scale: float = 10.0
    image_shape: ImageShape = (28, 28, 1)

    def __post_init__(self) -> None:
        h, w, _ = self.image_shape
        if h % STRIDE or w % STRIDE:
            raise ValueError(
                f"Codec.image_shape {self.image_shape}: H and W must be multiples of 4"
            )
        if not self.density_init_scale > 0:
            raise ValueError(f"Codec.density_init_scale must be > 0; got {self.density_init_scale}")
        super().__post_init__()

    def setup(self) -> None:
        k, n, c = self.kernel, self.features, self.image_shape[2]
        self.analysis = [
            nn.Conv(
                f, (k, k), strides=s, padding="SAME", **initializers(self.init_scheme, i * k * k)
            )
            for f, s, i in ((n, 2, c), (n, 2, n), (self.latent_channels, 1, n))
        ]
        self.gdn = [GDN(), GDN()]
        stages = ((n, 1, True), (n, 2, True), (c, 2, False))
        self.synthesis = [_Up(f, k, s, self.init_scheme, igdn) for f, s, igdn in stages]
        self.density = FactorizedDensity(
            self.latent_channels, tuple(self.density_filters), self.density_init_scale
        )

    def _check(self, x: Array) -> None:
        c = self.image_shape[2]
        if x.ndim != 4 or x.shape[-1] != c or x.shape[1] % STRIDE or x.shape[2] % STRIDE:
            raise ValueError(
                f"Codec expects images [B, H, W, {c}] with H and W divisible by {STRIDE}, got "
                f"shape {tuple(x.shape)}"
            )

    def analyze(self, x: Array) -> Array:
        """x [B, H, W, C] in [0, 1] -> continuous latents y [B, H/4, W/4, M] (not rounded)."""
        self._check(x)
        for i, conv in enumerate(self.analysis):
            x = conv(x)
            if i < len(self.gdn):
                x = self.gdn[i](x)
        return x

    def encode(self, x: Array, *, train: bool = False) -> Array:
        """x [B, H, W, C] -> the code a bitstream carries: round(y) [B, H/4, W/4, M] (float)."""
        return jnp.round(self.analyze(x))

    def decode(self, z: Array, *, train: bool = False) -> Array:
        """Latents ŷ [B, h, w, M] -> logits [B, 4h, 4w, C].

        The synthesis outputs pixel values v (linear, as in Ballé's codec); the logits are
        logit(clip(v, eps, 1 - eps)) with a straight-through gradient for the clip, so that
        sigmoid(logits) = clip(v) and the MSE gradient is that of the linear output. A sigmoid
        on the synthesis instead saturates on the many exactly-black pixels of Fashion-MNIST
        and its gradient dies (measured: the model got stuck outputting black).
        """
        for stage in self.synthesis:
            z = stage(z)
        # clip(z) in value (exactly: z - z = 0), the identity in gradient
        v = jnp.clip(z, PIXEL_EPS, 1.0 - PIXEL_EPS) + (z - jax.lax.stop_gradient(z))
        return jnp.log(v) - jnp.log1p(-v)

    def likelihoods(self, z: Array) -> Array:
        """Bin probabilities of ŷ [B, h, w, M] under the entropy model -> [B, h, w, M]."""
        return self.density(z)

    def forward(
        self, x: Array, key: Array | None, *, train: bool, straight_through: bool = False
    ) -> tuple[Array, dict[str, Array]]:
        """(logits [B, H, W, C], aux) with aux 'z' (ŷ given to the synthesis), 'y' (analysis
        output) and 'likelihoods' (of the ŷ the rate is computed from) [B, h, w, M].

        train: ŷ = y + U(-1/2, 1/2) from `key` for the rate; the synthesis gets the same noisy
        ŷ, or with `straight_through` round(y) with the identity gradient. Eval: round(y).
        """
        y = self.analyze(x)
        if train:
            noisy = y + jax.random.uniform(key, y.shape, y.dtype, -0.5, 0.5)
            rate_y = noisy
            z = y + jax.lax.stop_gradient(jnp.round(y) - y) if straight_through else noisy
        else:
            rate_y = z = jnp.round(y)
        return self.decode(z), {"z": z, "y": y, "likelihoods": self.likelihoods(rate_y)}

    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        """forward(x); training draws the noise from the 'sample' rng (as the VAEs do)."""
        key = self.make_rng("sample") if train else None
        return self.forward(x, key, train=train)
