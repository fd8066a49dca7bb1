"""The figures' numbers do not mislead: feature sets probed on equal terms, dead units counted
after the activation, the code's size and compression, training curves without duplicates."""

import json
import pathlib
import shutil
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import decomposition

from jaxae import config as config_lib
from jaxae import models
from jaxae.analysis import cli, curves, downstream, features, table
from jaxae.analysis.load import Run

from .conftest import LIMITS


def _run(name: str, *, abstract: bool = False, **fields) -> Run:
    """An untrained Run of model `name` (its init variables), as jaxae.load would return;
    `abstract`: their shapes only (nothing compiled)."""
    config = config_lib.from_dict({"model": {**config_lib.model_defaults(name), **fields}})
    model = models.create_model(name, **{k: v for k, v in config.model.items() if k != "name"})
    x = jnp.zeros((1, *config.model.image_shape), jnp.float32)
    keys = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}

    def init(x):
        return model.init(keys, x, train=False)

    variables = jax.eval_shape(init, x) if abstract else jax.jit(init)(x)
    return Run(model, dict(variables), config, step=0, workdir=pathlib.Path("."))


def _labelled(seed: int, n: int, d: int = 12):
    """n points [n, d] whose class (3 classes) is a noisy linear function of the features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.linspace(3.0, 0.1, d)  # strong to weak directions
    y = np.argmax(x[:, :3] + rng.normal(scale=0.5, size=(n, 3)), axis=1)
    return x, y


def test_the_probe_sees_pca_with_every_component_as_the_raw_features():
    """One scale per feature set: a rotation (PCA keeping every component) or a rescaling of
    the features leaves the probe's accuracy as it is; per-feature standardisation would not."""
    (x_train, y_train), (x_test, y_test) = _labelled(0, 300), _labelled(1, 200)
    pca = decomposition.PCA(n_components=x_train.shape[1]).fit(x_train)
    raw = downstream.score_features(x_train, y_train, x_test, y_test, seed=0)
    rotated = downstream.score_features(
        pca.transform(x_train), y_train, pca.transform(x_test), y_test, seed=0
    )
    scaled = downstream.score_features(30 * x_train, y_train, 30 * x_test, y_test, seed=0)
    assert raw["linear_probe_accuracy"] > 0.6  # the probe learns the rule
    assert rotated["linear_probe_accuracy"] == pytest.approx(raw["linear_probe_accuracy"])
    assert scaled["linear_probe_accuracy"] == pytest.approx(raw["linear_probe_accuracy"])
    a, b = downstream.prepare(x_train, x_test)
    assert np.allclose(a.mean(axis=0), 0) and np.mean(np.sum(a**2, axis=1)) == pytest.approx(1)


def test_dead_units_are_counted_after_the_relu():
    run = _run("vanilla", hidden=(16,), latent_dim=8)
    params = jax.tree.map(np.array, run.variables["params"])  # writable copies
    params["enc_0"]["bias"][:5] = -1e3  # 5 hidden units whose ReLU is 0 for every image
    run = Run(run.model, {"params": params}, run.config, run.step, run.workdir)
    x = np.random.default_rng(0).random((20, 28, 28, 1), np.float32)
    layers = features.encoder_layers(types.SimpleNamespace(run=run), x)
    assert set(layers) == {"enc_0", "enc_1"} and layers["enc_0"].shape == (20, 16)
    stats = features.layer_stats(layers["enc_0"])
    assert stats["dead_units"] >= 5 and stats["zero_units"] == stats["dead_units"]
    assert layers["enc_0"].min() >= 0  # after the ReLU, not the Dense output
    np.testing.assert_allclose(layers["enc_1"], run.code(x), rtol=1e-6)  # the code, activated


def test_a_vae_encoders_layers_end_in_mu_and_logvar():
    run = _run("vae")
    x = np.random.default_rng(0).random((4, 28, 28, 1), np.float32)
    layers = features.encoder_layers(types.SimpleNamespace(run=run), x)
    mu, logvar = run.encode(x)
    np.testing.assert_allclose(layers["mu"], mu, rtol=1e-6)
    np.testing.assert_allclose(layers["logvar"], logvar, rtol=1e-6)
    assert all(layers[n].min() >= 0 for n in layers if n.startswith("enc"))  # after ReLUs


def test_layer_stats_dead_means_constant_for_every_image():
    v = np.array([[0.0, 1.0, 0.5], [0.0, 3.0, 0.5]])  # unit 0 always 0, unit 2 always 0.5
    stats = features.layer_stats(v)
    assert stats["dead_units"] == 2 and stats["zero_units"] == 1 and stats["units"] == 3


@pytest.mark.parametrize(
    "name, fields, code, compression",
    [
        ("conv_deep", {}, "3×3×64 = 576", 784 / 576),
        ("vanilla", {}, "64", 784 / 64),
        ("conv_vae", {}, "128 (mu)", 784 / 128),
        ("vqvae", {}, "7×7 = 49 indices of 64", 784 / 49),  # one codebook index per position
    ],
)
def test_code_size_and_compression(name, fields, code, compression):
    size = table.code_size(_run(name, abstract=True, **fields))
    assert size["code_text"] == code and size["compression"] == pytest.approx(compression)
    assert size["input_numbers"] == 784


def test_results_table_of_a_workdir(linear_run, tmp_path):
    config, workdir, summary = linear_run
    row = table.results_row(workdir)
    assert row["code"] == "8" and row["compression"] == 98.0 and row["mse"] == summary["mse"]
    text = table.markdown([row])
    assert text.splitlines()[0].startswith("| run | model | params | code | compression")
    assert "| linear |" in text and "| 98.00× |" in text and f"{summary['mse']:.4f}" in text
    assert row["sharpness"] is None and text.splitlines()[2].endswith("| – |")  # not analysed
    copy = shutil.copytree(workdir, tmp_path / "linear")  # the shared run stays unanalysed
    out = cli.analyze(copy, only=["test_metrics"], limits=LIMITS)
    row = table.results_row(copy)
    assert row["sharpness"] == out["analyses"]["test_metrics"]["numbers"]["sharpness_ratio"]


def test_curves_merge_a_term_equal_to_the_loss_and_keep_dynamics_apart(tmp_path):
    records = [
        {"step": s, "split": "train", "loss": 1 / s, "mse": 1 / s, "kl": 0.1, "grad_norm": 2.0}
        for s in (1, 2, 3)
    ] + [{"step": 3, "split": "eval", "loss": 0.4, "mse": 0.4, "psnr": 9.0}]
    terms = curves.numeric_terms(records)
    assert curves.duplicates(records, terms) == {"mse": "loss"}
    assert [t for t in terms if curves.is_dynamics(t)] == ["grad_norm"]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(map(json.dumps, records)) + '\n{"step": 4, "spl')  # killed mid-line
    read, broken = curves.read_records(path)
    assert read == records and broken == 1
