"""optim: Optax's global norm and clipping by default; with fast=True jaxae.fast.norm's forms,
which equal Optax's, keep the optimizer state (and checkpoint layout) and avoid XLA:CPU's tree
reduction of the norms in the train step."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxae import models, objectives, optim, train
from jaxae.config import default_config, model_config
from jaxae.fast import norm, process
from jaxae.runtime import checkpoint


def _tree(scale=1.0):
    keys = iter(jax.random.split(jax.random.PRNGKey(0), 8))
    shapes = {
        "dense": (784, 256),  # matrix-vector form
        "conv": (3, 3, 16, 32),  # 4-D, matrix-vector form
        "edge": (64, 64),  # exactly the size where the matrix-vector form starts
        "small": (8, 5),  # plain sum
        "bias": (256,),
        "scalar": (),
        "empty": (4, 0),
    }
    return {name: scale * jax.random.normal(next(keys), shape) for name, shape in shapes.items()}


@pytest.mark.parametrize("jit", [pytest.param(False, marks=pytest.mark.slow), True])
def test_global_norm_equals_optax_tree_norm(jit):
    tree = _tree()

    def norms(tree):
        fast, plain = optim.global_norm(tree, fast=True), optim.global_norm(tree)
        return fast, plain, norm.global_norm(tree), optax.tree.norm(tree)

    fast, plain, ours, optax_norm = (jax.jit(norms) if jit else norms)(tree)
    np.testing.assert_allclose(fast, optax_norm, rtol=1e-6)
    np.testing.assert_array_equal(fast, ours)
    np.testing.assert_array_equal(plain, optax_norm)
    assert float(norm.global_norm({})) == 0.0


@pytest.mark.parametrize("scale", [1e-4, 1.0])  # global norm below and above max_norm
def test_clip_by_global_norm_equals_optax(scale):
    updates, max_norm = _tree(scale), 1.0
    ours, theirs = norm.clip_by_global_norm(max_norm), optax.clip_by_global_norm(max_norm)
    assert ours.init(updates) == theirs.init(updates)
    got, _ = jax.jit(ours.update)(updates, ours.init(updates))
    want, _ = jax.jit(theirs.update)(updates, theirs.init(updates))
    for name in updates:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-12)
    if scale == 1.0:
        np.testing.assert_allclose(optax.tree.norm(got), max_norm, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's tree reduction")
def test_train_step_norms_are_not_tree_reductions_on_cpu():
    """The point of global_norm: XLA:CPU rewrites a sum of squares over a kernel into a 32×32
    reduce-window and a reduce, slow there (benchmarks/ATTEMPTS.md, attempt 14); the metrics' and
    the clip's norms must compile without one over any 2-D kernel."""
    config = default_config()
    config.model = model_config("vanilla")
    config.grad_clip = 1.0
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)

    def compiled_step(fast: bool) -> str:
        tx, schedule = optim.make_optimizer(config, 100, fast=fast)
        step = train.make_train_step(
            objectives.make_objective(config, model),
            tx,
            schedule,
            norm=lambda tree: optim.global_norm(tree, fast=fast),
        )
        state = train.init_state(model, tx, (28, 28, 1), 0)
        batch = jnp.zeros((128, 28, 28, 1), jnp.uint8)
        lowered = jax.jit(step).lower(state, batch, jax.random.PRNGKey(0))
        return lowered.compile(compiler_options=process.step_compiler_options(True)).as_text()

    tree_reduced_matrix = re.compile(r"= f32\[\d+,\d+\]\{[0-9,]+\} reduce-window\(")
    assert not tree_reduced_matrix.search(compiled_step(fast=True))
    assert tree_reduced_matrix.search(compiled_step(fast=False))  # the form Optax writes


def test_optimizer_state_is_the_same_with_and_without_fast():
    """The checkpoint layout does not depend on fast: Optax's clip and ours have empty states."""
    config = default_config()
    config.model = model_config("vanilla")
    config.grad_clip, config.skip_nonfinite = 1.0, 3
    params = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}
    states = [optim.make_optimizer(config, 10, fast=f)[0].init(params) for f in (False, True)]
    assert jax.tree.structure(states[0]) == jax.tree.structure(states[1])
    layouts = [checkpoint.state_layout({"opt_state": s}) for s in states]
    assert layouts[0] == layouts[1]
