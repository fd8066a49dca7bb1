"""jaxae.finetune: frozen encoders stay bit-identical, tuned ones move, heads learn."""

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_trees_equal, tiny_config

from jaxae import data, finetune, models
from jaxae.analysis import report
from jaxae.analysis.load import Run


@pytest.fixture(scope="module")
def run_and_data():
    config = tiny_config("vanilla", **{"model.hidden": (32,), "model.latent_dim": 8})
    model = models.create_model("vanilla", hidden=(32,), latent_dim=8)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)), train=False)
    ds = data.load_for_config(config)
    x, y = data.to_float(ds.train_images), np.asarray(ds.train_labels)
    return Run(model, dict(variables), config, 0, pathlib.Path(".")), x, y


def _train(run, x, y, mode, head="linear", steps=5):
    return finetune.train_setting(run, mode, head, x, y, classes=10, steps=steps, batch_size=16)


def test_frozen_mode_leaves_the_encoder_unchanged(run_and_data):
    run, x, y = run_and_data
    params, _, _ = _train(run, x, y, "frozen", "mlp")
    assert_trees_equal(params["encoder"], run.variables["params"])
    tuned, _, _ = _train(run, x, y, "finetuned", "mlp")
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), tuned["encoder"], params["encoder"])
    assert all(jax.tree.leaves({k: v for k, v in moved.items() if k.startswith("enc")}))
    assert not any(jax.tree.leaves({k: v for k, v in moved.items() if k.startswith("dec")}))


@pytest.mark.slow  # two more compiles
def test_scratch_reinitialises_and_pixels_has_no_encoder(run_and_data):
    run, x, y = run_and_data
    scratch, _, _ = _train(run, x, y, "scratch", steps=0)
    enc = scratch["encoder"]["enc_0"]["kernel"]
    assert not np.allclose(enc, run.variables["params"]["enc_0"]["kernel"])
    pixels, _, _ = _train(run, x, y, "pixels", steps=0)
    assert pixels["encoder"] == {} and pixels["head"]["Dense_0"]["kernel"].shape == (784, 10)


@pytest.mark.slow  # 60 steps
def test_a_head_learns_the_labels(run_and_data):
    run, x, y = run_and_data
    params, _, predict = _train(run, x, y, "pixels", "mlp", steps=60)
    assert finetune.accuracy(predict, params, x, y) > 0.5  # chance: 0.1


def test_label_subsets_keep_every_class_possible():
    y = np.repeat(np.arange(10), 100)
    assert len(finetune.label_subset(y, 0.01, 0)) == 10
    assert len(finetune.label_subset(y, 0.1, 0)) == 100
    np.testing.assert_array_equal(finetune.label_subset(y, 1.0, 0), np.arange(1000))


def test_bad_fractions_are_one_line():
    assert finetune.parse_fractions("0.01,1") == (0.01, 1.0)
    for bad in ("0", "x", "0.5,2", ""):
        with pytest.raises(finetune.FractionError, match="in \\(0, 1\\]"):
            finetune.parse_fractions(bad)


def _finetune_out(run):
    accuracy = {"frozen + linear": {"1% labels": 0.7125, "100% labels": 0.8031}}
    accuracy["pixels + mlp"] = {"1% labels": 0.6502, "100% labels": 0.8417}
    return {
        "workdir": str(run.workdir),
        "step": 7,
        "model": "vanilla",
        "steps": 5,
        "test_examples": 32,
        "labels": {"1% labels": 10, "100% labels": 1000},
        "test_accuracy": accuracy,
    }


def test_the_finetune_table_goes_into_the_analysis_report(run_and_data, tmp_path):
    """finetune rewrites an existing report.html with its table; analyze's write_report (run
    again later) keeps it while finetune.json is beside the report, and shows none without."""
    run = dataclasses.replace(run_and_data[0], workdir=tmp_path)
    analysis = {"workdir": str(tmp_path), "step": 7, "model": "vanilla", "dataset": "synthetic"}
    analysis["analyses"] = {"test_metrics": {"figures": [], "numbers": {"mse": 0.25}}}
    outdir = tmp_path / "analysis"
    outdir.mkdir()
    (outdir / "analysis.json").write_text(json.dumps(analysis))
    finetune.write(_finetune_out(run), run)
    page = (outdir / "report.html").read_text()
    assert "<a href='#finetune'>finetune</a>" in page and "id='finetune'" in page
    assert "<tr><td>frozen + linear</td><td>0.7125</td><td>0.8031</td></tr>" in page
    assert "<th>1% labels (10)</th><th>100% labels (1,000)</th>" in page
    assert "after 5 Adam steps" in page and page.index("id='test_metrics'") < page.index(
        "id='finetune'"
    )
    assert "<td>0.8417</td>" in (outdir / "finetune.html").read_text()
    report.write_report(run, analysis, outdir / "report.html", {})
    assert "<td>pixels + mlp</td><td>0.6502</td>" in (outdir / "report.html").read_text()
    (outdir / "finetune.json").unlink()
    report.write_report(run, analysis, outdir / "report.html", {})
    assert "transfer learning" not in (outdir / "report.html").read_text()


def test_finetune_without_an_analysis_writes_no_report(run_and_data, tmp_path):
    run = dataclasses.replace(run_and_data[0], workdir=tmp_path)
    finetune.write(_finetune_out(run), run)
    assert sorted(p.name for p in (tmp_path / "analysis").iterdir()) == [
        "finetune.html",
        "finetune.json",
    ]
