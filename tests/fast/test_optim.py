"""optim.global_norm and optim.clip_by_global_norm equal Optax's, and avoid XLA:CPU's tree
reduction of the norms in the train step."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxae import models, objectives, optim, train
from jaxae.config import default_config, model_config
from jaxae.fast import process as tuning


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


@pytest.mark.parametrize("jit", [False, True])
def test_global_norm_equals_optax_tree_norm(jit):
    tree = _tree()
    norm = jax.jit(optim.global_norm) if jit else optim.global_norm
    np.testing.assert_allclose(norm(tree), optax.tree.norm(tree), rtol=1e-6)
    assert float(optim.global_norm({})) == 0.0


@pytest.mark.parametrize("scale", [1e-4, 1.0])  # global norm below and above max_norm
def test_clip_by_global_norm_equals_optax(scale):
    updates, max_norm = _tree(scale), 1.0
    ours, theirs = optim.clip_by_global_norm(max_norm), optax.clip_by_global_norm(max_norm)
    assert ours.init(updates) == theirs.init(updates)
    got, _ = jax.jit(ours.update)(updates, ours.init(updates))
    want, _ = jax.jit(theirs.update)(updates, theirs.init(updates))
    for name in updates:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-12)
    if scale == 1.0:
        np.testing.assert_allclose(optax.tree.norm(got), max_norm, rtol=1e-5)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's tree reduction")
def test_train_step_norms_are_not_tree_reductions_on_cpu(monkeypatch):
    """The point of global_norm: XLA:CPU rewrites a sum of squares over a kernel into a 32×32
    reduce-window and a reduce, slow there (benchmarks/README.md, attempt 14); the metrics' and
    the clip's norms must compile without one over any 2-D kernel."""
    config = default_config()
    config.model = model_config("vanilla")
    config.grad_clip = 1.0
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)

    def compiled_step() -> str:
        tx, schedule = optim.make_optimizer(config, 100)
        step = train.make_train_step(objectives.make_objective(config, model), tx, schedule)
        state = train.init_state(model, tx, (28, 28, 1), 0)
        batch = jnp.zeros((128, 28, 28, 1), jnp.uint8)
        lowered = jax.jit(step).lower(state, batch, jax.random.PRNGKey(0))
        return lowered.compile(compiler_options=tuning.step_compiler_options()).as_text()

    tree_reduced_matrix = re.compile(r"= f32\[\d+,\d+\]\{[0-9,]+\} reduce-window\(")
    assert not tree_reduced_matrix.search(compiled_step())
    monkeypatch.setattr(optim, "global_norm", optax.tree.norm)  # the form Optax writes
    monkeypatch.setattr(optim, "clip_by_global_norm", optax.clip_by_global_norm)
    assert tree_reduced_matrix.search(compiled_step())
