"""Fast ops on ≡ fast ops off for every model: the same variables, and in float64 the same
logits, codes, BatchNorm statistics and gradients (parameters and input), to 1e-6, in eval mode
and in train mode (BatchNorm on batch statistics, dropout and VAE sampling from the same keys)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import models

MNIST = (28, 28, 1)
RNGS = {"dropout": 1, "sample": 2}
# quick tier: the dense, conv, transposed-conv and pool forms, with BatchNorm; the rest: slow
QUICK = ("vanilla", "deep_fc", "conv_simple")


def _families():
    return [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in models.MODELS]


def _abstract_variables(model):
    x = jax.ShapeDtypeStruct((2, *MNIST), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_fast_and_plain_builds_have_the_same_variables(name):
    plain, fast = (models.create_model(name, fast=f) for f in (False, True))
    assert plain.ops is models.PLAIN and fast.ops is not models.PLAIN
    a, b = _abstract_variables(plain), _abstract_variables(fast)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert jax.tree.leaves(jax.tree.map(lambda u, v: u.shape == v.shape, a, b)) == [True] * len(
        jax.tree.leaves(a)
    )


def _results(model, variables, x):
    """{train: (loss, (logits, aux, updated batch_stats), (d loss/d params, d loss/d x))}."""
    rngs = {k: jax.random.key(seed) for k, seed in RNGS.items()}

    def loss(params, x, train):
        (logits, aux), updates = model.apply(
            {**variables, "params": params}, x, train=train, rngs=rngs, mutable=["batch_stats"]
        )
        return jnp.sum(jnp.sin(logits)), (logits, aux, updates)

    grad = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)
    return {train: grad(variables["params"], x, train) for train in (False, True)}


@pytest.mark.parametrize("name", _families())
def test_fast_ops_equal_plain_ops_in_float64(name):
    with jax.enable_x64(True):
        plain, fast = (models.create_model(name, fast=f) for f in (False, True))
        rng = np.random.default_rng(0)

        def draw(path, leaf):
            a = rng.normal(0.0, 0.1, leaf.shape)
            return np.abs(a) + 0.5 if jax.tree_util.keystr(path).endswith("['var']") else a

        variables = jax.tree_util.tree_map_with_path(draw, _abstract_variables(plain))
        x = rng.uniform(size=(2, *MNIST))
        want = jax.jit(functools.partial(_results, plain))(variables, x)
        got = jax.jit(functools.partial(_results, fast))(variables, x)
        paths = jax.tree_util.tree_flatten_with_path(want)[0]
        for (path, b), a in zip(paths, jax.tree.leaves(got), strict=True):
            assert a.dtype == (jnp.int32 if a.dtype == jnp.int32 else jnp.float64)  # VQ indices
            scale = max(float(np.abs(b).max()), 1.0)
            np.testing.assert_allclose(
                a, b, rtol=1e-6, atol=1e-6 * scale, err_msg=jax.tree_util.keystr(path)
            )
