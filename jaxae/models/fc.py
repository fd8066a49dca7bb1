"""Fully connected models: flatten [B, H, W, C] → [B, D], D = H·W·C; decoders reshape back.

Linear, Vanilla, DeepFC, Hinton and VAE. Each returns (logits [B, H, W, C], aux) from
__call__, with the code in aux['z'] (and 'mu', 'logvar' for the VAE).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxae.models.layers import (
    ACTIVATIONS,
    DenseBlock,
    ImageShape,
    Model,
    bias_init,
    check_choice,
    check_images,
    dense,
    flatten,
    float32_out,
    kernel_init,
    sample,
)

Array = jax.Array
BINARY_CODES = ("none", "noise", "straight_through")  # Vanilla.binary_code


class Linear(Model):
    """D→k→D with no activations; tied=True decodes with the encoder kernel transposed (W' = Wᵀ).

    Parameters: enc_kernel [D, k], enc_bias [k], dec_kernel [k, D] (untied only), dec_bias [D].
    """

    latent_dim: int = 32
    tied: bool = False
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        d, k, scheme = math.prod(self.image_shape), self.latent_dim, self.init_scheme
        self.enc_kernel = self.param("enc_kernel", kernel_init(scheme), (d, k))
        self.enc_bias = self.param("enc_bias", bias_init(scheme, d), (k,))
        if not self.tied:
            self.dec_kernel = self.param("dec_kernel", kernel_init(scheme), (k, d))
        self.dec_bias = self.param("dec_bias", bias_init(scheme, k), (d,))

    @float32_out
    def encode(self, x: Array, *, train: bool = False) -> Array:  # [B, H, W, C] → z [B, k]
        check_images(x, self.image_shape, type(self).__name__)
        h, kernel, bias = nn.dtypes.promote_dtype(
            flatten(x), self.enc_kernel, self.enc_bias, dtype=self.dtype
        )
        return h @ kernel + bias

    @float32_out
    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        kernel = self.enc_kernel.T if self.tied else self.dec_kernel
        z, kernel, bias = nn.dtypes.promote_dtype(z, kernel, self.dec_bias, dtype=self.dtype)
        return (z @ kernel + bias).reshape(z.shape[0], *self.image_shape)

    @float32_out
    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


def _stack(owner: Model, prefix: str, widths: tuple[int, ...]) -> list[nn.Module]:
    """Dense layers prefix_0 .. prefix_{n-2}: widths[i] → widths[i + 1]."""
    pairs = zip(widths[:-1], widths[1:], strict=True)
    return [
        dense(owner, out, fan_in, name=f"{prefix}_{i}") for i, (fan_in, out) in enumerate(pairs)
    ]


class Vanilla(Model):
    """D→256→128→64→128→256→D with ReLU after every layer but the last (logits).

    Layers enc_0..enc_n (enc_n, n = len(hidden), gives the code) and dec_0..dec_n (dec_n the
    logits). code_activation='sigmoid' gives a code in (0, 1) (sparse-KL and contractive AEs),
    'linear' an unbounded code (Pythae's default AE: hidden=(512,), latent_dim=10);
    with hidden=() the encoder is the single layer h = σ(x W + b) of Rifai et al. (2011).
    binary_code pushes a sigmoid code to 0/1 (semantic hashing): 'noise' adds N(0, code_noise²)
    to the code's pre-activation in training (Salakhutdinov & Hinton), 'straight_through'
    rounds the code in training and evaluation with the sigmoid's gradient.
    """

    hidden: tuple[int, ...] = (256, 128)
    latent_dim: int = 64
    image_shape: ImageShape = (28, 28, 1)
    code_activation: str = "relu"
    binary_code: str = "none"
    code_noise: float = 4.0

    def __post_init__(self) -> None:
        check_choice("Vanilla", "binary_code", self.binary_code, BINARY_CODES)
        if self.binary_code != "none" and self.code_activation != "sigmoid":
            raise ValueError(
                f"Vanilla.binary_code={self.binary_code!r} needs code_activation='sigmoid'"
            )
        super().__post_init__()

    def code_layer_name(self) -> str:
        """The name of the layer that gives the code (its kernel [D_n, k] is params[name])."""
        return f"enc_{len(self.hidden)}"

    def setup(self) -> None:
        d = math.prod(self.image_shape)
        self.enc = _stack(self, "enc", (d, *self.hidden, self.latent_dim))
        self.dec = _stack(self, "dec", (self.latent_dim, *reversed(self.hidden), d))

    @float32_out
    def encode(self, x: Array, *, train: bool = False) -> Array:  # [B, H, W, C] → z [B, k]
        check_images(x, self.image_shape, type(self).__name__)
        h = flatten(x)
        for layer in self.enc[:-1]:
            h = nn.relu(layer(h))
        a = self.enc[-1](h)
        if self.binary_code == "noise" and train:  # large |a| is the only way past the noise
            a = a + self.code_noise * jax.random.normal(self.make_rng("dropout"), a.shape)
        z = ACTIVATIONS[self.code_activation](a)
        if self.binary_code == "straight_through":
            z = z + jax.lax.stop_gradient(jnp.round(z) - z)
        return z

    @float32_out
    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        h = z
        for layer in self.dec[:-1]:
            h = nn.relu(layer(h))
        return self.dec[-1](h).reshape(z.shape[0], *self.image_shape)

    @float32_out
    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class DeepFC(Model):
    """D→512→256→128→32 and mirror: hidden blocks Dense→ReLU→BatchNorm→Dropout, code Dense→ReLU.

    Layers: enc_0..enc_{n-1} (DenseBlock), code, dec_0..dec_{n-1} (DenseBlock), out (logits).
    """

    hidden: tuple[int, ...] = (512, 256, 128)
    latent_dim: int = 32
    dropout_rate: float = 0.2
    bn_axis_name: str | None = None
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        def block(f: int) -> DenseBlock:
            shared = {"init_scheme": self.init_scheme, "ops": self.ops, "dtype": self.dtype}
            return DenseBlock(f, self.dropout_rate, self.bn_axis_name, **shared)

        d = math.prod(self.image_shape)
        self.enc = [block(f) for f in self.hidden]
        self.code = dense(self, self.latent_dim, self.hidden[-1] if self.hidden else d)
        self.dec = [block(f) for f in reversed(self.hidden)]
        self.out = dense(self, d, self.hidden[0] if self.hidden else self.latent_dim)

    @float32_out
    def encode(self, x: Array, *, train: bool) -> Array:  # [B, H, W, C] → z [B, k]
        check_images(x, self.image_shape, type(self).__name__)
        h = flatten(x)
        for block in self.enc:
            h = block(h, train=train)
        return nn.relu(self.code(h))

    @float32_out
    def decode(self, z: Array, *, train: bool) -> Array:  # z [B, k] → [B, H, W, C]
        h = z
        for block in self.dec:
            h = block(h, train=train)
        return self.out(h).reshape(z.shape[0], *self.image_shape)

    @float32_out
    def __call__(self, x: Array, *, train: bool) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class Hinton(Model):
    """D→1000→500→250→30 (linear code) and mirror, Hinton & Salakhutdinov (2006).

    Layers enc_0..enc_n and dec_0..dec_n, n = len(hidden): enc_n is the linear code layer and
    dec_n gives the logits; every other layer is followed by `activation`. Greedy layer-wise
    pretraining trains pair i = (enc_i, dec_{n-i}) on h_i = encode_to(x, i), with
    `reconstruct_layer(h_i, i)` (apply with method=), then fine-tunes the whole stack.
    """

    hidden: tuple[int, ...] = (1000, 500, 250)
    latent_dim: int = 30
    activation: str = "sigmoid"
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        d = math.prod(self.image_shape)
        self.enc = _stack(self, "enc", (d, *self.hidden, self.latent_dim))
        self.dec = _stack(self, "dec", (self.latent_dim, *reversed(self.hidden), d))

    def _enc_layer(self, h: Array, i: int) -> Array:  # [B, D_i] → [B, D_{i+1}]
        y = self.enc[i](h)
        return y if i == len(self.hidden) else ACTIVATIONS[self.activation](y)

    @float32_out
    def encode_to(self, x: Array, depth: int) -> Array:
        """h_depth [B, D_depth]: x [B, H, W, C] through enc_0..enc_{depth-1} (depth 0: flat x)."""
        check_images(x, self.image_shape, type(self).__name__)
        h = flatten(x)
        for i in range(depth):
            h = self._enc_layer(h, i)
        return h

    @float32_out
    def reconstruct_layer(self, h: Array, index: int) -> Array:
        """Pair `index`: h [B, D_index] → enc_index → dec_{n-index} → pre-activation [B, D_index].

        For index 0 this is the flat image logits; above, apply `activation` to compare with h.
        """
        return self.dec[len(self.hidden) - index](self._enc_layer(h, index))

    @float32_out
    def encode(self, x: Array, *, train: bool = False) -> Array:  # [B, H, W, C] → z [B, k]
        return self.encode_to(x, len(self.hidden) + 1)

    @float32_out
    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        h = z
        for layer in self.dec[:-1]:
            h = ACTIVATIONS[self.activation](layer(h))
        return self.dec[-1](h).reshape(z.shape[0], *self.image_shape)

    @float32_out
    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        z = self.encode(x, train=train)
        return self.decode(z, train=train), {"z": z}


class VAE(Model):
    """Gaussian-encoder VAE: D→512→256 ReLU → (mu, logvar) [B, k]; decoder k→256→512→D logits.

    Layers enc_0..enc_{n-1}, mu, logvar, dec_0..dec_n (dec_n the logits), n = len(hidden).
    """

    hidden: tuple[int, ...] = (512, 256)
    latent_dim: int = 16
    image_shape: ImageShape = (28, 28, 1)

    def setup(self) -> None:
        widths = (math.prod(self.image_shape), *self.hidden)
        self.enc = _stack(self, "enc", widths)
        self.mu = dense(self, self.latent_dim, widths[-1])
        self.logvar = dense(self, self.latent_dim, widths[-1])
        self.dec = _stack(self, "dec", (self.latent_dim, *reversed(widths)))

    @float32_out
    def encode(self, x: Array, *, train: bool = False) -> tuple[Array, Array]:
        """x [B, H, W, C] → (mu [B, k], logvar [B, k])."""
        check_images(x, self.image_shape, type(self).__name__)
        h = flatten(x)
        for layer in self.enc:
            h = nn.relu(layer(h))
        return self.mu(h), self.logvar(h)

    @float32_out
    def decode(self, z: Array, *, train: bool = False) -> Array:  # z [B, k] → [B, H, W, C]
        h = z
        for layer in self.dec[:-1]:
            h = nn.relu(layer(h))
        return self.dec[-1](h).reshape(z.shape[0], *self.image_shape)

    @float32_out
    def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, dict[str, Array]]:
        mu, logvar = self.encode(x, train=train)
        z = sample(self, mu, logvar, train)
        return self.decode(z, train=train), {"z": z, "mu": mu, "logvar": logvar}
