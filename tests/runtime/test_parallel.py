"""One device ≡ 4 devices (jit and pmap), scan epoch ≡ step loop, checkpoints across meshes."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, tiny_config

from jaxae import fast, train
from jaxae.config import ConfigError
from jaxae.runtime import checkpoint, parallel

pytestmark = pytest.mark.slow  # end-to-end: trains in subprocesses or several runs

# SGD, not Adam: Adam divides by sqrt(v), so rounding noise in gradients that are ~0 (biases before
# BatchNorm) becomes a full learning-rate step and "equal to float tolerance" stops meaning much.
OVERRIDES = {
    "optimizer": "sgd",
    "learning_rate": 0.05,
    "model.hidden": (32, 16),
    "model.latent_dim": 8,
    "model.dropout_rate": 0.0,  # dropout masks differ by design between jit and per-device pmap
    "grad_clip": 1.0,
}


def config(**overrides):
    """deep_fc (BatchNorm, clipping) on tiny synthetic data, 6 steps of batch 16."""
    return tiny_config("deep_fc", **{**OVERRIDES, **overrides})


def run_python(code: str, devices: int, env: dict | None = None, timeout: int = 600):
    """Runs `code` in a fresh interpreter with `devices` simulated CPU devices."""
    env = {
        **os.environ,
        "JAX_NUM_CPU_DEVICES": str(devices),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait(proc, timeout: int = 600) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def params_of(workdir) -> dict:
    """Parameters and BatchNorm statistics of the latest checkpoint, restored on one device."""
    mngr = checkpoint.manager(workdir, read_only=True)
    state, _ = checkpoint.restore(mngr, mngr.latest_step())
    return jax.tree.map(np.asarray, {"params": state["params"], "stats": state["batch_stats"]})


def assert_close(a, b, rtol=2e-5, atol=2e-6):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


FOUR_DEVICE_SCRIPT = """
    import json, sys
    import jax, numpy as np
    from runtime.test_parallel import config
    from jaxae import train
    from jaxae.runtime import checkpoint, parallel
    assert jax.device_count() == 4, jax.devices()
    root = sys.argv[1]
    train.train_and_evaluate(config(), f"{root}/jit4")
    train.train_and_evaluate(config(parallel="pmap"), f"{root}/pmap4")
    train.train_and_evaluate(config(num_steps=3), f"{root}/half4")  # resumed on 1 device later
    # the checkpoint as it comes back on the 4-device mesh it was saved from
    mngr = checkpoint.manager(f"{root}/jit4", read_only=True)
    replicated = jax.sharding.NamedSharding(parallel.make_mesh(), jax.sharding.PartitionSpec())
    state, _ = checkpoint.restore(mngr, 6, None)
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
                          state)
    state, _ = checkpoint.restore(mngr, 6, target)
    assert all(len(a.sharding.device_set) == 4 for a in jax.tree.leaves(state))
    np.savez(f"{root}/jit4_params.npz", **{jax.tree_util.keystr(k): np.asarray(v)
             for k, v in jax.tree_util.tree_leaves_with_path(state)})
"""


def start_four_device_runs(root):
    """Starts training jit4, pmap4 and half4 (3 steps) under `root` on 4 simulated CPU devices in
    one subprocess; the `four_device_runs` fixture (conftest.py) shares it between test files."""
    return run_python(FOUR_DEVICE_SCRIPT.replace("sys.argv[1]", repr(str(root))), devices=4), root


def _four(four_device_runs):
    proc, root = four_device_runs
    if proc.returncode is None:
        wait(proc)
    return root


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory, four_device_runs):
    """The same config on this process's single device (runs while the 4-device one does)."""
    assert jax.device_count() == 1
    workdir = tmp_path_factory.mktemp("one_device")
    summary = train.train_and_evaluate(config(), workdir)
    return workdir, summary


def test_four_devices_equal_one_device_in_jit_and_pmap_modes(one_device_run, four_device_runs):
    workdir, summary = one_device_run
    root = _four(four_device_runs)
    reference = params_of(workdir)
    for mode in ("jit4", "pmap4"):
        assert_close(params_of(root / mode), reference)
        other = json.loads((root / mode / "summary.json").read_text())
        assert other["devices"] == 4 and other["steps"] == 6
        assert other["loss"] == pytest.approx(summary["loss"], rel=1e-5)
        train_1 = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
        train_4 = [json.loads(x) for x in (root / mode / "metrics.jsonl").read_text().splitlines()]
        losses_1 = [r["loss"] for r in train_1 if r["split"] == "train"]
        losses_4 = [r["loss"] for r in train_4 if r["split"] == "train"]
        np.testing.assert_allclose(losses_4, losses_1, rtol=1e-5)


def test_batchnorm_statistics_are_those_of_the_global_batch(one_device_run, four_device_runs):
    # per-device statistics of a 4-example shard would differ from the 16-example batch's by far
    # more than this tolerance; the running means/vars moved from their (0, 1) init
    root = _four(four_device_runs)
    one = params_of(one_device_run[0])["stats"]
    for mode in ("jit4", "pmap4"):
        assert_close(params_of(root / mode)["stats"], one)
    assert not np.allclose(one["enc_0"]["bn"]["var"], 1.0)


def test_scan_epoch_equals_step_by_step_loop(one_device_run, tmp_path):
    workdir, summary = one_device_run
    scanned = train.train_and_evaluate(config(scan_epoch="on"), tmp_path)
    assert_close(params_of(tmp_path), params_of(workdir), rtol=1e-6, atol=1e-7)
    assert scanned["loss"] == pytest.approx(summary["loss"], rel=1e-6)
    logged = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if r["split"] == "train"] == [2, 4, 6]


def test_four_device_checkpoint_resumes_on_one_device(one_device_run, four_device_runs):
    root = _four(four_device_runs)
    assert checkpoint.manager(root / "half4", read_only=True).latest_step() == 3
    summary = train.train_and_evaluate(config(), root / "half4")  # same command, 1 device now
    assert summary["steps"] == 6 and summary["devices"] == 1
    assert_close(params_of(root / "half4"), params_of(one_device_run[0]))


def test_four_device_checkpoint_restores_on_one_and_two_devices(four_device_runs):
    root = _four(four_device_runs)
    saved = dict(np.load(root / "jit4_params.npz"))
    mngr = checkpoint.manager(root / "jit4", read_only=True)
    state, _ = checkpoint.restore(mngr, 6)
    on_one = {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree.leaves_with_path(state)}
    assert on_one.keys() == saved.keys()
    for key in saved:
        np.testing.assert_array_equal(on_one[key], saved[key])
    two = run_python(
        f"""
        import jax, numpy as np
        from jax.sharding import NamedSharding, PartitionSpec
        from jaxae.runtime import checkpoint, parallel
        assert jax.device_count() == 2
        mngr = checkpoint.manager({str(root / "jit4")!r}, read_only=True)
        shape, _ = checkpoint.restore(mngr, 6)
        replicated = NamedSharding(parallel.make_mesh(), PartitionSpec())
        target = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated), shape)
        state, _ = checkpoint.restore(mngr, 6, target)
        saved = np.load({str(root / "jit4_params.npz")!r})
        for path, leaf in jax.tree_util.tree_leaves_with_path(state):
            assert len(leaf.sharding.device_set) == 2
            np.testing.assert_array_equal(np.asarray(leaf), saved[jax.tree_util.keystr(path)])
        print("restored", len(saved.files), "arrays on 2 devices")
        """,
        devices=2,
    )
    assert "on 2 devices" in wait(two)


def test_unknown_parallel_mode_is_one_clear_error():
    mesh = parallel.make_mesh()
    assert mesh.axis_names == (parallel.AXIS,) and mesh.size == jax.device_count()
    with pytest.raises(ConfigError, match="'parallel' is 'pmapp'; choose one of jit, pmap"):
        train.train_and_evaluate(config(parallel="pmapp"), "/nonexistent/never-written")


def test_scan_epoch_auto_scans_dense_models_but_not_convolutions_on_cpu():
    dense = {"enc": {"kernel": np.zeros((784, 64)), "bias": np.zeros(64)}}
    conv = {"enc": {"kernel": np.zeros((3, 3, 1, 16)), "bias": np.zeros(16)}}
    assert jax.default_backend() == "cpu"
    assert parallel.use_scan_epoch("auto", dense, 1000)
    assert not parallel.use_scan_epoch("auto", conv, 1000)
    assert parallel.use_scan_epoch("on", conv, 1000)
    assert not parallel.use_scan_epoch("off", dense, 1000)


def test_fast_conv_gradients_are_canonical_where_laxs_are_not():
    # XLA:CPU rewrites convolutions into its canonical NHWC/HWIO/NHWC form outside loops only:
    # inside a scan a kernel gradient in another form ran 88x slower (ATTEMPTS.md, attempt 31)
    x = jax.ShapeDtypeStruct((8, 14, 14, 4), jnp.float32)
    w = jax.ShapeDtypeStruct((3, 3, 4, 6), jnp.float32)

    def loss(conv):
        return lambda w, x: jnp.sum(conv(x, w, (2, 2), "SAME") ** 2)

    def lax_conv(x, w, strides, padding):
        dims = ("NHWC", "HWIO", "NHWC")
        return jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dims)

    grads = jax.grad(loss(fast.conv.conv_nhwc), argnums=(0, 1))
    assert parallel.canonical_convolutions(grads, w, x)
    assert not parallel.canonical_convolutions(jax.grad(loss(lax_conv), argnums=(0, 1)), w, x)

    # nested jaxprs (a scan over the gradient) are searched too
    def scanned(w, x):
        return jax.lax.scan(lambda c, _: (c, jax.grad(loss(lax_conv))(w, x)), 0, None, 2)

    assert not parallel.canonical_convolutions(scanned, w, x)
    assert parallel.canonical_convolutions(lambda w, x: jnp.sum(w) + jnp.sum(x), w, x)


def test_scan_epoch_refuses_a_mode_it_does_not_know(tmp_path):
    with pytest.raises(ConfigError, match="scan_epoch.*auto, on, off"):
        train.train_and_evaluate(config(scan_epoch="True"), tmp_path)
