"""jaxae.load: a trained run comes back with the same outputs; a bad workdir is one clear error."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import ROOT

import jaxae
from jaxae import config as config_lib
from jaxae import data, models
from jaxae.analysis.load import RunNotFoundError
from jaxae.runtime import checkpoint


def _copy(linear_run, tmp_path):
    """A copy of the session's linear run that a test may alter."""
    copy = tmp_path / "run"
    shutil.copytree(linear_run[1], copy)
    return copy


def _edit_meta(workdir, edit):
    """Applies edit(meta dict) to the metadata stored beside every checkpoint of `workdir`, as
    another jaxae version would have written it (so without this version's manifest)."""
    paths = sorted((workdir / "checkpoints").glob("*/meta/metadata"))
    assert paths
    for path in paths:
        meta = json.loads(path.read_text())
        edit(meta)
        path.write_text(json.dumps(meta))
        (path.parents[1] / checkpoint.MANIFEST).unlink()


def test_load_reproduces_the_final_test_mse(linear_run):
    config, workdir, summary = linear_run
    run = jaxae.load(workdir)
    assert run.step == 6 and run.config.to_dict() == config.to_dict()
    assert isinstance(run.model, models.MODELS["linear"])
    ds = data.load_dataset("synthetic", max_train_examples=64, max_test_examples=32)
    x = data.to_float(ds.test_images)
    recon = np.asarray(run.reconstruct(x))
    assert float(np.mean((recon - x) ** 2)) == pytest.approx(summary["mse"], rel=1e-5)


def test_load_gives_the_checkpointed_parameters_and_outputs(linear_run):
    _, workdir, _ = linear_run
    mngr = checkpoint.manager(workdir, read_only=True)
    state, _ = checkpoint.restore(mngr, 3)
    run = jaxae.load(workdir, step=3)
    assert run.step == 3
    saved, loaded = jax.tree.leaves(state["params"]), jax.tree.leaves(run.variables["params"])
    for a, b in zip(saved, loaded, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = np.random.default_rng(0).random((4, 28, 28, 1), np.float32)
    direct = run.model.apply({"params": state["params"]}, x)[0]
    np.testing.assert_allclose(np.asarray(run.logits(x)), np.asarray(direct), rtol=1e-6)
    z = run.code(x)
    assert z.shape == (4, 8)
    np.testing.assert_allclose(run.decode(z), run.reconstruct(x), rtol=1e-6)


def test_best_and_latest_steps(linear_run):
    _, workdir, _ = linear_run
    # without a validation split no checkpoint is ranked (never by the test loss), so no best
    assert checkpoint.manager(workdir, read_only=True).best_step() is None
    with pytest.raises(RunNotFoundError, match="no best one; use step=None for the latest"):
        jaxae.load(workdir, step="best")
    assert jaxae.load(workdir, step="latest").step == 6
    with pytest.raises(RunNotFoundError, match="no checkpoint at step 5; saved steps: 3, 6"):
        jaxae.load(workdir, step=5)


def test_missing_workdir_and_missing_checkpoint_are_one_line_errors(tmp_path):
    with pytest.raises(RunNotFoundError, match="does not exist"):
        jaxae.load(tmp_path / "nope")
    with pytest.raises(RunNotFoundError, match="no checkpoints/ directory; train first"):
        jaxae.load(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(RunNotFoundError, match="has no checkpoint in"):
        jaxae.load(tmp_path)


def test_checkpoint_of_another_model_than_config_json_is_refused(linear_run, tmp_path):
    mixed = _copy(linear_run, tmp_path)
    other = json.loads((mixed / "config.json").read_text())
    other["model"] = {"name": "vanilla"}
    (mixed / "config.json").write_text(json.dumps(other))
    with pytest.raises(checkpoint.CheckpointMismatchError, match="config.json says") as e:
        jaxae.load(mixed)
    assert "mixes two runs" in str(e.value) and len(str(e.value).splitlines()) == 1


def test_checkpoint_of_another_format_is_refused(linear_run, tmp_path):
    old = _copy(linear_run, tmp_path)
    _edit_meta(old, lambda meta: meta.update(jaxae_format=0))
    with pytest.raises(checkpoint.CheckpointMismatchError, match="in format 0 but this jaxae"):
        jaxae.load(old)


def test_a_checkpoint_saved_before_a_model_field_existed_loads_with_its_default(
    linear_run, tmp_path
):
    """An older jaxae saved no `tied`: the model is built from today's defaults overlaid."""
    old = _copy(linear_run, tmp_path)
    _edit_meta(old, lambda meta: meta["config"]["model"].pop("tied"))
    on_disk = json.loads((old / "config.json").read_text())
    on_disk["model"].pop("tied")  # config.json from the same old version
    (old / "config.json").write_text(json.dumps(on_disk))
    run = jaxae.load(old)
    assert run.config.model.tied == config_lib.model_defaults("linear")["tied"]
    assert run.config.model.to_dict() == linear_run[0].model.to_dict()
    x = np.zeros((2, 28, 28, 1), np.float32)
    np.testing.assert_array_equal(run.logits(x), jaxae.load(linear_run[1]).logits(x))
    on_disk["model"]["latent_dim"] = 9  # still refused when a field really differs
    (old / "config.json").write_text(json.dumps(on_disk))
    with pytest.raises(checkpoint.CheckpointMismatchError, match="config.json says"):
        jaxae.load(old)


@pytest.mark.slow
def test_a_run_saved_on_two_devices_loads_on_one(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAXAE_NO_DOWNLOAD": "1",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    tiny = ["--config.dataset.name=synthetic", "--config.dataset.max_train_examples=64"]
    tiny += ["--config.dataset.max_test_examples=32", "--config.batch_size=16"]
    tiny += ["--config.num_steps=2", "--config.progress=False"]
    result = subprocess.run(
        [sys.executable, "train.py", "--config", "configs/linear.py", "--workdir", str(tmp_path)]
        + tiny,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["devices"] == 2
    assert jax.device_count() == 1
    run = jaxae.load(tmp_path)
    assert run.step == 2 and run.code(np.zeros((3, 28, 28, 1), np.float32)).shape == (3, 32)
