"""Helpers of the model tests: abstract builds and random variables without RNG kernels."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

MNIST = (28, 28, 1)
CIFAR = (32, 32, 3)
RNGS = {k: jax.random.key(0) for k in ("params", "dropout", "sample")}


def abstract_init(model: nn.Module, image_shape, *, train: bool = False, batch: int = 2):
    """((logits, aux), variables) as ShapeDtypeStructs: traces, never compiles or runs."""
    x = jax.ShapeDtypeStruct((batch, *image_shape), jnp.float32)
    return jax.eval_shape(lambda x: model.init_with_output(RNGS, x, train=train), x)


def random_variables(model: nn.Module, image_shape, seed: int = 0, dtype=np.float32):
    """Random variables of the model's shapes, drawn by numpy: no RNG kernels to compile."""
    _, abstract = abstract_init(model, image_shape)
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        a = rng.normal(0.0, 0.1, leaf.shape).astype(dtype)
        is_var = jax.tree_util.keystr(path).endswith("['var']")
        return np.abs(a) + 0.5 if is_var else a  # running variances must be positive

    return jax.tree_util.tree_map_with_path(draw, abstract)


def images(image_shape, batch: int = 2, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(batch, *image_shape)).astype(dtype)
