"""python -m jaxae.sweep: one run per code size, MSE beside PCA with the same k, the elbow."""

import json

import ml_collections
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import config as config_lib
from jaxae.analysis import sweep


@pytest.mark.slow
def test_sweep_trains_one_run_per_size_and_compares_with_pca(tmp_path):
    from jaxae.train import train_and_evaluate

    result = sweep.sweep(tiny_config("linear", num_steps=4), [4, 2], tmp_path, train_and_evaluate)
    assert json.loads((tmp_path / "sweep.json").read_text()) == result
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert result["field"] == "model.latent_dim" and result["elbow_code_size"] is None
    runs = result["runs"]
    assert [r["latent"] for r in runs] == [2, 4] == [r["code_size"] for r in runs]
    for r in runs:
        summary = json.loads((tmp_path / f"latent_{r['latent']}" / "summary.json").read_text())
        k = r["latent"]
        assert r["test_mse"] == summary["mse"]
        assert r["params"] == summary["params"] == 2 * 784 * k + 784 + k
    assert runs[1]["pca_test_mse"] < runs[0]["pca_test_mse"]  # more components, less error


def test_code_size_field_of_conv_models():
    c = tiny_config("conv_deep")
    assert sweep.set_code_size(c, 8) == "model.features[-1]"
    assert tuple(c.model.features) == (16, 32, 8) and sweep.code_size(c) == 3 * 3 * 8
    c = tiny_config("conv_vae")
    assert sweep.set_code_size(c, 6) == "model.latent_dim" and sweep.code_size(c) == 6
    c = tiny_config("linear")
    c.model = ml_collections.ConfigDict({"name": "linear"})
    with pytest.raises(config_lib.ConfigError, match="no code-size field"):
        sweep.set_code_size(c, 4)


def test_elbow_is_where_the_curve_bends():
    sizes = [2, 4, 8, 16, 32, 64]
    assert sweep.elbow(sizes, [1.0, 0.6, 0.2, 0.17, 0.15, 0.14]) == 8
    assert sweep.elbow(sizes, [1.0, 0.9, 0.8, 0.7, 0.1, 0.05]) == 32
    assert sweep.elbow([2, 4], [1.0, 0.5]) is None


def test_pca_mse_is_zero_with_every_component():
    x = np.random.default_rng(0).random((40, 6))
    mse = sweep.pca_test_mse(x[:30], x[30:], [1, 3, 6])
    assert mse[1] > mse[3] > mse[6] and mse[6] < 1e-12
