"""The contract of jaxae.fast: each form equals the plain op it replaces (Flax's layers, lax's
convs, nn.max_pool), in values and in every autodiff mode (float64: value, grad, jvp, jacfwd,
Hessians, grad of jvp, vmap), and compiles to the form it is there for on XLA:CPU."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fast_testing import train_mode_loss

from jaxae.fast import conv as fast_conv
from jaxae.fast import process
from jaxae.fast.conv import NHWC, conv_nhwc
from jaxae.fast.conv_transpose import (
    ConvTranspose,
    conv_transpose_by_depth_to_space,
    conv_transpose_by_overlap_add,
    conv_transpose_by_phases,
)
from jaxae.fast.dense import dense, dense_dot_general
from jaxae.fast.pool import max_pool_2x2


def quick_first(cases):
    """The first case in the quick tier, the others marked slow."""
    return [cases[0], *(pytest.param(*c, marks=pytest.mark.slow) for c in cases[1:])]


# (h, w, C_in, features, kernel, stride, padding): the models' transposed convs, and odd ones
CASES = [
    (7, 7, 64, 32, 3, 2, "SAME"),  # conv_deep 7→14
    (3, 3, 64, 64, 3, 2, "VALID"),  # conv_deep 3→7
    (14, 14, 16, 1, 2, 2, "SAME"),  # conv_simple 14→28, C=1 output
    (7, 7, 64, 32, 3, 1, "SAME"),  # conv_vae stride 1
    (5, 6, 3, 2, 4, 2, "SAME"),
    (6, 5, 2, 2, 1, 2, "SAME"),  # kernel smaller than stride: some phases get no tap
    (2, 3, 3, 2, 1, 2, "VALID"),  # tiny input (overlap-add), kernel < stride
    (4, 4, 8, 4, 3, 2, "SAME"),  # 32×32 conv_deep's 4→8, overlap-add
]


@pytest.mark.parametrize("h, w, c, f, k, s, padding", quick_first(CASES))
def test_conv_transpose_equals_flax_conv_transpose(h, w, c, f, k, s, padding):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, h, w, c))
    up = ConvTranspose(f, (k, k), (s, s), padding)
    variables = up.init(jax.random.PRNGKey(1), x)
    assert jax.tree.map(jnp.shape, variables["params"]) == {"kernel": (k, k, c, f), "bias": (f,)}
    variables = {"params": {**variables["params"], "bias": jnp.arange(f, dtype=jnp.float32)}}
    plain = nn.ConvTranspose(f, (k, k), (s, s), padding)

    def loss(module, params, x):
        y = module.apply({"params": params}, x)
        return jnp.sum(jnp.sin(y)), y

    grad = jax.jit(jax.value_and_grad(loss, argnums=(1, 2), has_aux=True), static_argnums=0)
    (_, y_fast), g_fast = grad(up, variables["params"], x)
    (_, y_ref), g_ref = grad(plain, variables["params"], x)
    assert y_fast.shape == y_ref.shape
    np.testing.assert_allclose(y_fast, y_ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("h, w, c, f, k, s, padding", CASES)
@pytest.mark.parametrize("impl", [conv_transpose_by_phases, conv_transpose_by_overlap_add])
def test_conv_transpose_forms_equal_lax(impl, h, w, c, f, k, s, padding):
    # both forms, whatever size ConvTranspose would pick them for
    x = jax.random.normal(jax.random.PRNGKey(0), (2, h, w, c))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (k, k, c, f))
    dims = ("NHWC", "HWIO", "NHWC")

    def loss(op, x, kernel):
        return jnp.sum(jnp.sin(op(x, kernel)))

    def plain(x, kernel):
        return jax.lax.conv_transpose(x, kernel, (s, s), padding, dimension_numbers=dims)

    def fast(x, kernel):
        return impl(x, kernel, (s, s), padding)

    np.testing.assert_allclose(fast(x, kernel), plain(x, kernel), rtol=1e-5, atol=1e-4)
    g_fast = jax.grad(loss, argnums=(1, 2))(fast, x, kernel)
    g_plain = jax.grad(loss, argnums=(1, 2))(plain, x, kernel)
    for a, b in zip(g_fast, g_plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    "h, w, c, f, k, padding",
    quick_first([(14, 14, 16, 1, 2, "SAME"), (3, 5, 4, 3, 2, "VALID"), (4, 4, 3, 2, 3, "SAME")]),
)
def test_depth_to_space_form_equals_lax_when_kernel_is_stride(h, w, c, f, k, padding):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, h, w, c))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (k, k, c, f))
    dims = ("NHWC", "HWIO", "NHWC")

    def plain(x, kernel):
        return jax.lax.conv_transpose(x, kernel, (k, k), padding, dimension_numbers=dims)

    def loss(op, x, kernel):
        return jnp.sum(jnp.sin(op(x, kernel)))

    fast = conv_transpose_by_depth_to_space
    np.testing.assert_allclose(fast(x, kernel), plain(x, kernel), rtol=1e-5, atol=1e-4)
    g_fast = jax.grad(loss, argnums=(1, 2))(fast, x, kernel)
    g_plain = jax.grad(loss, argnums=(1, 2))(plain, x, kernel)
    for a, b in zip(g_fast, g_plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def _pools(ceil):
    padding = "SAME" if ceil else "VALID"

    def fast(x):
        return max_pool_2x2(x, ceil=ceil)

    def plain(x):
        return nn.max_pool(x, (2, 2), strides=(2, 2), padding=padding)

    def grad(pool):  # distinct nonzero weights per output, so every routed gradient shows
        def loss(x):
            y = pool(x)
            return jnp.sum(jnp.cos(y) + y * jnp.arange(1, y.size + 1).reshape(y.shape))

        return jax.jit(jax.grad(loss))

    return fast, plain, grad


@pytest.mark.parametrize(
    "shape",
    [
        (1, 6, 5, 2),
        *(pytest.param(s, marks=pytest.mark.slow) for s in [(2, 28, 28, 16), (2, 7, 7, 3)]),
    ],
)
@pytest.mark.parametrize("ceil", [False, True])
def test_max_pool_equals_flax_max_pool(shape, ceil):
    # continuous random values: no ties
    x = jax.random.normal(jax.random.PRNGKey(2), shape)
    fast, plain, grad = _pools(ceil)
    np.testing.assert_array_equal(jax.jit(fast)(x), jax.jit(plain)(x))
    np.testing.assert_allclose(grad(fast)(x), grad(plain)(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("ceil", [False, True])
def test_max_pool_gives_ties_to_the_first_maximum_like_flax(ceil):
    # rounded values and ReLU zeros: most windows hold ties, in every position
    x = jnp.maximum(jnp.round(jax.random.normal(jax.random.PRNGKey(3), (2, 9, 8, 5))), 0.0)
    fast, plain, grad = _pools(ceil)
    np.testing.assert_array_equal(jax.jit(fast)(x), jax.jit(plain)(x))
    np.testing.assert_array_equal(grad(fast)(x), grad(plain)(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["conv_deep", "conv_simple", "conv_keras", "conv_flat"])
def test_jitted_train_gradient_of_pooling_models_matches_float64(name):
    """The whole jitted gradient (with the steps' compile options) against op-by-op float64
    of the plain model (the same function: the fast forms equal it to 1e-12 above; op by op it
    runs fewer programs than the fast model, 52 s against 74 for conv_deep).

    conv_deep's reshape-and-max pool after BatchNorm failed this: XLA:CPU compiled its
    gradient off by up to 48% in the encoder, while op-by-op float32 matched float64.
    """
    loss, args = train_mode_loss(name)
    jitted = jax.jit(jax.grad(loss), compiler_options=process.step_compiler_options())(*args)
    plain_loss, _ = train_mode_loss(name, fast=False)
    with jax.enable_x64(True), jax.disable_jit():
        as64 = jax.tree.map(lambda a: np.asarray(a, np.float64), args)
        reference = jax.tree.map(np.asarray, jax.grad(plain_loss)(*as64))  # numpy float64
    for path, a, b in zip(
        jax.tree_util.tree_flatten_with_path(reference)[0],
        jax.tree.leaves(jitted),
        jax.tree.leaves(reference),
        strict=True,
    ):
        scale = float(np.abs(b).max())
        err = float(np.abs(np.asarray(a, np.float64) - b).max())
        assert err <= 1e-4 * scale, (jax.tree_util.keystr(path[0]), err, scale)


def test_max_pool_forward_mode_equals_flax_max_pool():
    # jax.jvp and jacfwd work through the pool (the contractive penalties use them)
    x = jax.random.normal(jax.random.PRNGKey(4), (2, 6, 6, 3))
    v = jax.random.normal(jax.random.PRNGKey(5), x.shape)
    fast, plain, _ = _pools(False)
    for a, b in zip(jax.jvp(fast, (x,), (v,)), jax.jvp(plain, (x,), (v,)), strict=True):
        np.testing.assert_array_equal(a, b)


def autodiff_results(f, params, x, tangent, vmap_f):
    """Everything a two-layer f(params, x) gives in every autodiff mode, for comparing forms.

    Each mode is jitted, as training runs it: op by op, its many small programs took 3-4x as
    long to compile, on both sides of every comparison."""

    def loss(p, x):
        return jnp.sum(jnp.tanh(f(p, x)) ** 2)

    def jvp_norm(p):  # reverse over forward, as a contractive penalty's gradient is
        return jnp.sum(jax.jvp(lambda x: f(p, x), (x,), (jnp.sin(x),))[1] ** 2)

    def jvp(p, x, tangent):
        return jax.jvp(loss, (p, x), (tangent, jnp.sin(x)))

    return {
        "value": jax.jit(f)(params, x),
        "grad": jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x),
        "jvp": jax.jit(jvp)(params, x, tangent),
        "jacfwd": jax.jit(jax.jacfwd(f, argnums=1))(params, x),
        "hessian_x": jax.jit(jax.hessian(loss, argnums=1))(params, x),
        "hessian_params": jax.jit(jax.hessian(loss))(params, x),  # forward over reverse
        "grad_of_jvp": jax.jit(jax.grad(jvp_norm))(params),
        "vmap": jax.jit(jax.vmap(vmap_f))(x),
    }


def assert_results_equal(got, want):
    for key in want:
        for a, b in zip(jax.tree.leaves(got[key]), jax.tree.leaves(want[key]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7)])
def test_dense_dot_general_equals_lax_in_every_autodiff_mode(shape):
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(1), shape, jnp.float64)
        fast = dense(7, param_dtype=jnp.float64)
        plain = nn.Dense(7, param_dtype=jnp.float64)
        params = plain.init(jax.random.PRNGKey(0), x)
        tangent = jax.tree.map(lambda p: jnp.cos(p) + 1.0, params)

        def results(dense):
            def f(p, x):  # two layers, so the second one's input depends on the parameters
                return dense.apply(p, jnp.tanh(dense.apply(p, x)))

            return autodiff_results(f, params, x, tangent, lambda xi: f(params, xi))

        assert_results_equal(results(fast), results(plain))


def test_dense_dot_general_passes_other_contractions_to_lax():
    lhs = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 5))
    rhs = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 2))
    dims = (((2,), (1,)), ((0,), (0,)))  # batched: not nn.Dense's contraction
    np.testing.assert_array_equal(
        dense_dot_general(lhs, rhs, dims), jax.lax.dot_general(lhs, rhs, dims)
    )


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's dot forms")
def test_dense_kernel_gradient_is_a_row_major_matmul_on_cpu():
    """The point of dense_dot_general: no dot contracting x's batch axis (lhs dim 0) remains,
    which XLA:CPU runs in its slower own kernel (benchmarks/ATTEMPTS.md, attempt 12)."""
    x = jnp.ones((128, 784))

    def compiled_grad(dense):
        params = dense.init(jax.random.PRNGKey(0), x)

        def loss(p):
            return jnp.sum(jnp.sin(dense.apply(p, x)))

        return jax.jit(jax.grad(loss)).lower(params).compile().as_text()

    batch_contracted = re.compile(r"dot\([^)]*\), lhs_contracting_dims=\{0\}")
    assert batch_contracted.search(compiled_grad(nn.Dense(256)))  # the form autodiff writes
    assert not batch_contracted.search(compiled_grad(dense(256)))


CONV_CASES = [  # (x shape, kernel shape, strides, padding)
    ((2, 6, 6, 3), (3, 3, 3, 4), (1, 1), "SAME"),
    ((2, 7, 7, 3), (3, 3, 3, 2), (2, 2), ((0, 1), (0, 1))),
    ((2, 5, 6, 1), (3, 3, 1, 4), (1, 1), "SAME"),  # one input channel: the patch form
    ((1, 6, 5, 4), (2, 1, 4, 1), (1, 1), ((1, 0), (0, 0))),  # one output channel, a phase's
    ((2, 7, 7, 1), (3, 3, 1, 4), (2, 2), ((0, 1), (0, 1))),  # one input channel, strided
    ((2, 6, 6, 1), (2, 2, 1, 3), (1, 1), ((-1, 1), (0, -1))),  # negative pads crop (phases)
    ((1, 6, 6, 3), (2, 2, 3, 1), (1, 1), ((-1, 1), (1, -1))),
]


@pytest.mark.slow
@pytest.mark.parametrize("x_shape, w_shape, strides, padding", CONV_CASES)
def test_conv_nhwc_equals_lax_in_every_autodiff_mode(x_shape, w_shape, strides, padding):
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(1), x_shape, jnp.float64)
        w0 = jax.random.normal(jax.random.PRNGKey(2), w_shape, jnp.float64)
        w1 = jax.random.normal(jax.random.PRNGKey(3), (3, 3, w_shape[-1], x_shape[-1]))

        def results(conv):
            def f(w, x):  # two convs, so the second one's input depends on the parameters
                h = jnp.tanh(conv(x, w, strides, padding))
                return conv(h, w1.astype(jnp.float64), (1, 1), "SAME")

            return autodiff_results(f, w0, x, jnp.cos(w0), lambda xi: f(w0, xi[None]))

        def plain(x, w, strides, padding):
            return jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)

        assert_results_equal(results(conv_nhwc), results(plain))


def test_conv_nhwc_passes_other_convs_to_lax():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 4))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 2, 6))
    nchw = ("NCHW", "OIHW", "NCHW")
    other = [  # not nn.Conv's plain NHWC conv: dilated and grouped, and another layout
        (
            x,
            w,
            {"dimension_numbers": NHWC, "rhs_dilation": (2, 2), "feature_group_count": 2},
        ),
        (x.transpose(0, 3, 1, 2)[:, :2], w.transpose(3, 2, 0, 1), {"dimension_numbers": nchw}),
    ]
    for lhs, rhs, kwargs in other:
        np.testing.assert_array_equal(
            conv_nhwc(lhs, rhs, (1, 1), "SAME", **kwargs),
            jax.lax.conv_general_dilated(lhs, rhs, (1, 1), "SAME", **kwargs),
        )


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's conv layouts")
def test_conv_kernel_gradient_reads_a_materialised_input_on_cpu(monkeypatch):
    """The point of conv_nhwc: XLA:CPU's kernel-gradient convs read their input x as
    [C, H, W, B]; the transpose that makes it must copy one materialised array, not recompute
    x's producers (BatchNorm, pool, phase interleave, overlap-add) in transposed order, as it
    did for conv_deep from up to 14 arrays (benchmarks/ATTEMPTS.md, attempt 15)."""
    batch = 12  # no channel count of conv_deep: a trailing 12 is the batch

    def kernel_gradient_input_operands() -> list[int]:
        loss, args = train_mode_loss("conv_deep", batch=batch)
        hlo = jax.jit(jax.grad(loss)).lower(*args).compile(process.step_compiler_options())
        defs = dict(re.findall(r"^\s*(%[\w.-]+) = (.*)$", hlo.as_text(), re.M))
        counts = []
        for text in defs.values():
            conv = re.match(r"f32\[[\d,]+\]\S* convolution\((%[\w.-]+),", text)
            if conv and re.match(rf"f32\[[\d,]+,{batch}\]", defs[conv[1]]):
                fusion = re.search(r" fusion\(([^)]*)\)", defs[conv[1]])
                counts.append(len(fusion[1].split(",")) if fusion else 1)
        return counts

    fast = kernel_gradient_input_operands()
    assert len(fast) >= 7 and max(fast) == 1, fast  # the convs with C, F > 1, phases apart

    def plain(x, w, strides, padding):
        return jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)

    monkeypatch.setattr(fast_conv, "_conv", plain)
    assert max(kernel_gradient_input_operands()) > 1  # the form XLA gives autodiff's gradient


@pytest.mark.parametrize("c, f", [(1, 16), (16, 1)])
def test_one_channel_convs_compile_to_matmuls(c, f):
    """conv_nhwc's C = 1 and F = 1 forms: no convolution is left in the gradient's program."""
    x, w = jnp.ones((4, 28, 28, c)), jnp.ones((3, 3, c, f))

    def plain(x, w, strides, padding):
        return jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)

    def compiled_grad(conv):
        def loss(x, w):
            return jnp.sum(jnp.sin(conv(x, w, (1, 1), "SAME")))

        return jax.jit(jax.grad(loss, argnums=(0, 1))).lower(x, w).compile().as_text()

    assert "convolution(" in compiled_grad(plain)
    assert "convolution(" not in compiled_grad(conv_nhwc)
