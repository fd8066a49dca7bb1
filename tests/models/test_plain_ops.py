"""A model built with the default ops is plain Flax: its forward, gradient and JVP programs
hold no custom derivative rule of jaxae's and no optimization barrier (the fast forms' marks)."""

import jax
import jax.numpy as jnp
import pytest
from model_testing import MNIST, RNGS, abstract_init

from jaxae import models

# jax.nn.relu is itself a custom_jvp function (its derivative at 0); it is Flax's own op.
FLAX_CUSTOM_JVPS = {"relu"}
MARKS = ("custom_jvp_call", "custom_vjp_call", "optimization_barrier")


def _marks(jaxpr) -> set[str]:
    """'custom_jvp_call:NAME', 'custom_vjp_call:NAME' and 'optimization_barrier' anywhere in a
    jaxpr, sub-jaxprs (jit, custom rules, control flow) included."""
    found = set()
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "optimization_barrier":
            found.add(name)
        elif name in MARKS:
            inner = eqn.params.get("call_jaxpr") or eqn.params.get("fun_jaxpr")
            info = getattr(getattr(inner, "jaxpr", inner), "debug_info", None)
            found.add(f"{name}:{info.func_name if info else '?'}")
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr → Jaxpr
                if hasattr(sub, "eqns"):
                    found |= _marks(sub)
    return found


def programs_marks(model) -> set[str]:
    """The marks in the jaxprs of model's eval and train forward, train value_and_grad of a
    loss (BatchNorm on batch statistics) and the JVP of its encoder."""
    _, variables = abstract_init(model, MNIST)
    x = jax.ShapeDtypeStruct((2, *MNIST), jnp.float32)

    def forward(variables, x, train):
        (logits, _), _ = model.apply(variables, x, train=train, rngs=RNGS, mutable=["batch_stats"])
        return jnp.mean(logits**2)

    def loss(params, variables, x):
        return forward({**variables, "params": params}, x, True)

    def encoder_jvp(variables, x):
        encode = lambda x: model.apply(variables, x, train=False, method=model.encode)
        return jax.jvp(encode, (x,), (x,))

    marks = set()
    for fn, args in [
        (lambda v, x: forward(v, x, False), (variables, x)),
        (lambda v, x: forward(v, x, True), (variables, x)),
        (jax.value_and_grad(loss), (variables["params"], variables, x)),
        (encoder_jvp, (variables, x)),
    ]:
        marks |= _marks(jax.make_jaxpr(fn)(*args).jaxpr)
    return marks


@pytest.mark.parametrize("name", list(models.MODELS))
def test_default_models_are_plain_flax(name):
    marks = programs_marks(models.create_model(name))
    assert marks <= {f"custom_jvp_call:{n}" for n in FLAX_CUSTOM_JVPS}, marks


@pytest.mark.parametrize("name", ["vanilla", "conv_deep"])
def test_the_check_sees_the_fast_forms(name):
    marks = programs_marks(models.create_model(name, fast=True))
    assert "optimization_barrier" in marks
    assert any(m.startswith("custom_jvp_call:") and m[16:] not in FLAX_CUSTOM_JVPS for m in marks)
