"""VQ-VAE (van den Oord et al. 2017): a conv encoder, a learned codebook, a conv decoder.

The code is a grid of codebook indices; the decoder sees the chosen codebook vectors, and the
gradient reaches the encoder by the straight-through estimator. The codebook learns from the
codebook loss ‖sg(z_e) − e‖² (the paper's form, not its EMA variant: it needs no state
beyond the parameters, so checkpoints, data parallelism and resume are the ordinary ones); the
commitment loss β‖z_e − sg(e)‖² keeps the encoder near its codes (jaxae/objectives.py).
"""

from __future__ import annotations

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
    float32_out,
)

Array = jax.Array


def quantize(z_e: Array, codebook: Array) -> tuple[Array, Array, Array]:
    """Nearest codebook vector of every position: z_e [..., D], codebook [K, D] ->
    (z [..., D] straight-through: the value of z_q, the gradient of z_e;
     z_q [..., D] the chosen vectors, differentiable in the codebook; indices [...] int32).
    """
    flat = z_e.reshape(-1, z_e.shape[-1])
    dist = (
        jnp.sum(flat**2, axis=-1, keepdims=True)
        - 2 * flat @ codebook.T
        + jnp.sum(codebook**2, axis=-1)[None, :]
    )  # [N, K]
    indices = jnp.argmin(dist, axis=-1).astype(jnp.int32)
    z_q = codebook[indices].reshape(z_e.shape)
    z = z_e + jax.lax.stop_gradient(z_q - z_e)
    return z, z_q, indices.reshape(z_e.shape[:-1])


def codebook_stats(indices: Array, num_embeddings: int) -> tuple[Array, Array]:
    """Perplexity exp(H(p)) of the batch's code distribution p and the fraction of the codebook
    used: indices [B, ...] -> (perplexity [], usage []). K means every code equally used."""
    counts = jnp.zeros(num_embeddings).at[indices.reshape(-1)].add(1.0)
    p = counts / indices.size
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.exp(entropy), jnp.mean(counts > 0)


class ConvVQ(Model):
    """Conv C→32 s2, 32→64 s2 (3×3, ReLU; 28→14→7), conv 3×3 → z_e [B, 7, 7, embedding_dim];
    each of the 7×7 positions takes its nearest of `num_embeddings` codebook vectors; decoder
    conv 3×3 → 64, ReLU, ConvT 64→32 s2, ReLU, ConvT 32→C s2 → logits [B, H, W, C].

    encode(x) gives the quantized code z (straight-through), decode(z) the logits; aux holds
    z_e, z_q (the codebook vectors, for the codebook loss) and the indices [B, 7, 7].
    quantized=False skips the codebook (z = z_e): the same autoencoder unquantized, the baseline.
    """

    features: tuple[int, ...] = (32, 64)
    embedding_dim: int = 16
    num_embeddings: int = 64
    quantized: bool = True
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        shared = {"init_scheme": self.init_scheme, "ops": self.ops, "dtype": self.dtype}
        self.enc = [DownBlock(f, "strided", ceil=True, **shared) for f in self.features]
        self.to_code = conv(self, self.embedding_dim, self.features[-1], name="to_code")
        if self.quantized:  # the paper's (and Sonnet's) uniform(-1/K, 1/K) initialisation
            k = self.num_embeddings
            init = lambda key, shape: jax.random.uniform(key, shape, minval=-1 / k, maxval=1 / k)  # noqa: E731
            self.codebook = self.param("codebook", init, (k, self.embedding_dim))
        self.from_code = conv(self, self.features[-1], self.embedding_dim, name="from_code")
        outs = (*self.features[-2::-1], self.image_shape[2])
        self.dec = [
            UpBlock(f, "transpose", relu=j < len(outs) - 1, **shared) for j, f in enumerate(outs)
        ]

    def _sizes(self) -> list[tuple[int, int]]:  # [(28, 28), (14, 14), (7, 7)]
        sizes = [tuple(self.image_shape[:2])]
        for _ in self.features:
            sizes.append(tuple(-(-n // 2) for n in sizes[-1]))
        return sizes

    @float32_out
    def encode_continuous(self, x: Array, *, train: bool = False) -> Array:
        """x [B, H, W, C] -> z_e [B, h, w, embedding_dim], before quantization."""
        check_images(x, self.image_shape, type(self).__name__)
        for block in self.enc:
            x = block(x, train=train)
        return self.to_code(x)

    def quantize(self, z_e: Array) -> tuple[Array, Array, Array]:
        return quantize(z_e, self.codebook)

    @float32_out
    def encode(self, x: Array, *, train: bool = False) -> Array:
        z_e = self.encode_continuous(x, train=train)
        return self.quantize(z_e)[0] if self.quantized else z_e

    def code_indices(self, x: Array) -> Array:
        """x [B, H, W, C] -> the codebook indices [B, h, w] int32 (what a bitstream stores)."""
        return self.quantize(self.encode_continuous(x))[2]

    def decode_indices(self, indices: Array) -> Array:
        """indices [B, h, w] -> logits [B, H, W, C]."""
        return self.decode(self.codebook[indices])

    @float32_out
    def decode(self, z: Array, *, train: bool = False) -> Array:
        sizes = self._sizes()
        h = nn.relu(self.from_code(z))
        for j, block in enumerate(self.dec):
            h = block(h, sizes[-2 - j], train=train)
        return h

    @float32_out
    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z_e = self.encode_continuous(x, train=train)
        if not self.quantized:
            return self.decode(z_e, train=train), {"z": z_e, "z_e": z_e}
        z, z_q, indices = self.quantize(z_e)
        return self.decode(z, train=train), {"z": z, "z_e": z_e, "z_q": z_q, "indices": indices}
