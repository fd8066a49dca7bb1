"""Mixed precision: bfloat16 compute with float32 parameters, statistics, losses and metrics."""

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, tiny_config

import jaxae
from jaxae import config as config_lib
from jaxae import fast, models, objectives, optim, steps, train

# Relative difference of the loss after STEPS Adam steps on one batch, bfloat16 against float32
# compute. Measured (2 Dec 2026, this CPU): vanilla 1e-4, vae 4e-6, deep_fc
# 2.2e-3, conv_deep 1.9e-3, conv_vae 4e-5, contractive_conv 5e-4, contractive < 1e-4;
# bfloat16 rounds to 3.9e-3 relative.
LOSS_RTOL = 1e-2
STEPS = 8


def _train_one_batch(name: str, dtype: str):
    """STEPS steps of configs/NAME.py on one fixed batch [16, 28, 28, 1]: (state, metrics, hlo)."""
    config = tiny_config(name, compute_dtype=dtype, fast_ops="off")
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), dtype=dtype, **fields)
    tx, schedule = optim.make_optimizer(config, STEPS)
    state = steps.init_state(model, tx, (28, 28, 1), 0)
    step = jax.jit(steps.make_train_step(objectives.make_objective(config, model), tx, schedule))
    batch = jnp.asarray(np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1), np.uint8))
    key = jax.random.PRNGKey(0)
    hlo = step.lower(state, batch, key).as_text()
    for _ in range(STEPS):
        state, metrics = step(state, batch, key)
    return state, metrics, hlo


@pytest.mark.parametrize(
    "name",
    [
        "vanilla",
        pytest.param("vae", marks=pytest.mark.slow),
        pytest.param("contractive", marks=pytest.mark.slow),  # the exact Jacobian
        pytest.param("deep_fc", marks=pytest.mark.slow),
        pytest.param("conv_deep", marks=pytest.mark.slow),
        pytest.param("conv_vae", marks=pytest.mark.slow),
        pytest.param("vqvae", marks=pytest.mark.slow),
        pytest.param("contractive_conv", marks=pytest.mark.slow),
    ],
)
def test_bfloat16_training_tracks_float32_with_float32_state(name):
    ref_state, ref_metrics, ref_hlo = _train_one_batch(name, "float32")
    state, metrics, hlo = _train_one_batch(name, "bfloat16")
    # the layers really compute in bfloat16 (and float32 compute has none)
    ops = ("stablehlo.convolution", "stablehlo.dot_general")
    assert any(op in line and "bf16" in line for line in hlo.splitlines() for op in ops)
    assert "bf16" not in ref_hlo
    # parameters, optimizer state, BatchNorm statistics and every metric stay float32
    tree = (state.params, state.opt_state, state.batch_stats, metrics)
    floats = {
        leaf.dtype for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.inexact)
    }
    assert floats == {jnp.dtype(jnp.float32)}
    assert float(metrics["loss"]) == pytest.approx(float(ref_metrics["loss"]), rel=LOSS_RTOL)
    assert float(metrics["loss"]) != float(ref_metrics["loss"])  # another computation indeed


def test_models_return_float32_from_every_method_under_bfloat16():
    x = jnp.full((2, 28, 28, 1), 0.5, jnp.float32)

    def outputs(model):
        variables = model.init({"params": jax.random.PRNGKey(0)}, x, train=False)
        logits, aux = model.apply(variables, x, train=False)
        return logits, aux, model.apply(variables, x, train=False, method=model.encode), variables

    for name in ("linear", "hinton", "conv_keras", "conv_flat", "vae", "vqvae"):
        model = models.create_model(name, dtype="bfloat16")
        shapes = jax.eval_shape(functools.partial(outputs, model))
        for leaf in jax.tree.leaves(shapes):
            assert leaf.dtype in (jnp.float32, jnp.int32), name  # int32: the VQ indices


def test_fast_ops_are_off_under_bfloat16_and_on_is_refused():
    assert fast.resolve("auto", "bfloat16") == (False, "fast ops off (auto: bfloat16 compute)")
    assert fast.resolve("off", "bfloat16")[0] is False
    with pytest.raises(fast.FastOpsDtypeError, match="fast_ops=off"):
        fast.resolve("on", "bfloat16")


def test_an_unknown_compute_dtype_is_one_clear_error():
    config = tiny_config("vanilla", compute_dtype="float16")
    with pytest.raises(config_lib.ConfigError, match="compute_dtype.*float32, bfloat16"):
        config_lib.validate(config)
    with pytest.raises(ValueError, match="compute dtype must be one of"):
        models.create_model("vanilla", dtype="float16")


def test_a_bfloat16_run_reloads_for_float32_analysis(tmp_path):
    overrides = {"compute_dtype": "bfloat16", "num_steps": 4, "model.hidden": (32,)}
    config = tiny_config("deep_fc", **overrides)  # BatchNorm statistics too
    summary = train.train_and_evaluate(config, tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["compute_dtype"] == "bfloat16"
    run = jaxae.load(tmp_path)
    assert run.model.dtype is None  # analysis computes in the parameters' float32
    assert {leaf.dtype for leaf in jax.tree.leaves(run.variables)} == {jnp.dtype(jnp.float32)}
    x = np.random.default_rng(1).random((4, 28, 28, 1)).astype(np.float32)
    assert run.logits(x).dtype == np.float32 and np.all(np.isfinite(run.logits(x)))
    assert np.isfinite(summary["loss"])


@pytest.mark.slow
def test_bfloat16_trains_from_the_cli_data_parallel_on_two_devices(tmp_path):
    """train.py with compute_dtype=bfloat16 under shard_map (pmap mode) on 2 CPU devices."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAXAE_NO_DOWNLOAD": "1",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    flags = ["--config.dataset.name=synthetic", "--config.dataset.max_train_examples=64"]
    flags += ["--config.dataset.max_test_examples=32", "--config.batch_size=16"]
    flags += ["--config.num_steps=3", "--config.progress=False", "--config.scan_epoch=off"]
    flags += ["--config.compute_dtype=bfloat16", "--config.parallel=pmap"]
    command = [sys.executable, "train.py", "--config", "configs/conv_deep.py"]
    result = subprocess.run(
        [*command, "--workdir", str(tmp_path), *flags],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "fast ops off (auto: bfloat16 compute)" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["devices"] == 2 and summary["steps"] == 3 and np.isfinite(summary["loss"])
    run = jaxae.load(tmp_path)
    assert {leaf.dtype for leaf in jax.tree.leaves(run.variables)} == {jnp.dtype(jnp.float32)}
