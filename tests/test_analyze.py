"""python -m jaxae.analyze: every analysis writes its figure and numbers; the report is complete."""

import dataclasses
import html
import html.parser
import json

import jax
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import analyze, config, data, train
from jaxae.loading import load

LIMITS = analyze.Limits(
    eval_examples=32,
    tsne_points=32,
    probe_train=64,
    probe_test=32,
    pca_train=64,
    nll_examples=8,
    nll_samples=4,
    batch_size=32,
)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A tiny conv_vae run with class 0 held out of training: every analysis but pca_angles."""
    workdir = tmp_path_factory.mktemp("conv_vae_run")
    cfg = tiny_config("conv_vae", **{"dataset.exclude_class": 0})
    summary = train.train_and_evaluate(cfg, workdir)
    out = analyze.analyze(workdir, limits=LIMITS)
    return workdir, summary, out


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("linear_run")
    summary = train.train_and_evaluate(tiny_config("linear", **{"model.latent_dim": 8}), workdir)
    return workdir, summary


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("src", "href") and not v.startswith("#")]


def test_every_analysis_writes_its_figures_and_numbers(vae_run):
    workdir, summary, out = vae_run
    outdir = workdir / "analysis"
    assert json.loads((outdir / "analysis.json").read_text()) == out
    assert list(out["analyses"]) == list(analyze.ANALYSES)
    for name, entry in out["analyses"].items():
        if name == "pca_angles":
            assert "not the linear autoencoder" in entry["skipped"]
            continue
        assert "skipped" not in entry, (name, entry)
        assert entry["figures"] and entry["numbers"], name
        for fig in entry["figures"]:
            assert (outdir / fig).read_bytes()[:4] == b"\x89PNG"
    assert set(out["analyses"]["vae"]["figures"]) == {
        "vae_prior_samples.png",
        "vae_traversal.png",
        "vae_nll.png",
    }
    assert set(out["analyses"]["feature_maps"]["figures"]) == {
        "feature_maps.png",
        "activations.png",
    }


def test_numbers_are_consistent(vae_run):
    _, summary, out = vae_run
    a = {name: entry.get("numbers") for name, entry in out["analyses"].items()}
    metrics = a["test_metrics"]
    assert metrics["examples"] == 32 and len(metrics["per_class"]) == 10
    assert metrics["overall"]["ssim"] == pytest.approx(summary["ssim"], abs=0.05)
    assert -1 <= metrics["overall"]["ssim"] <= 1 and metrics["overall"]["mse"] > 0
    assert a["parameters"]["params"] == summary["params"]
    assert a["parameters"]["code_size"] == 128 == a["downstream"]["code_size"]
    # 64 synthetic training images minus the held-out class cap the PCA baseline's size
    n_train = a["downstream"]["train_examples"]
    assert n_train < 64 and a["downstream"]["PCA"]["dim"] == n_train
    for kind in ("codes", "raw pixels", "PCA"):
        assert 0 <= a["downstream"][kind]["linear_probe_accuracy"] <= 1
    vae = a["vae"]
    assert vae["nll_nats"] <= -vae["elbo_nats"] + 1e-3  # log mean w >= mean log w (Jensen)
    assert len(vae["kl_per_dim"]) == 128 and vae["nll_samples"] == 4
    assert a["anomaly"]["examples"] == {"held_out": 4, "trained": 28}
    assert 0 <= a["anomaly"]["roc_auc"] <= 1
    layers = a["feature_maps"]["layers"]
    assert layers["enc_0"]["shape"] == [14, 14, 16] and layers["mu"]["shape"] == [128]
    assert set(a["training_curves"]["terms"]) >= {"loss", "kl", "recon", "elbo", "grad_norm"}


def test_report_references_only_files_that_exist(vae_run):
    workdir, _, out = vae_run
    text = (workdir / "analysis" / "report.html").read_text()
    parser = _Links()
    parser.feed(text)
    assert parser.links
    for link in parser.links:
        assert (workdir / "analysis" / link).is_file(), link
    figures = {f for e in out["analyses"].values() for f in e["figures"]}
    assert figures <= set(parser.links)
    assert '"latent_dim": 128' in html.unescape(text)  # the config
    assert "images_per_second" in text  # summary.json


def test_only_reruns_some_analyses_and_keeps_the_rest(vae_run):
    workdir, _, out = vae_run
    again = analyze.analyze(workdir, only=["parameters"], limits=LIMITS)
    assert again == out  # same checkpoint, deterministic numbers
    with pytest.raises(config.ConfigError, match="choose from training_curves"):
        analyze.parse_only("parameters,nope")


def test_pca_angles_of_a_linear_run(linear_run):
    workdir, summary = linear_run
    out = analyze.analyze(workdir, only=["pca_angles", "anomaly", "vae"], limits=LIMITS)
    entry = out["analyses"]["pca_angles"]
    assert entry["figures"] == ["pca_angles.png"]
    angles = entry["numbers"]["angles_degrees"]
    assert len(angles) == 8 and all(0 <= x <= 90 for x in angles)
    assert entry["numbers"]["linear_ae_test_mse"] == pytest.approx(summary["mse"], rel=1e-5)
    assert "exclude_class" in out["analyses"]["anomaly"]["skipped"]
    assert "not a VAE" in out["analyses"]["vae"]["skipped"]


def test_pca_angles_are_zero_for_a_decoder_spanning_the_pca_subspace(linear_run):
    workdir, _ = linear_run
    run = load(workdir)
    ds = data.load_dataset("synthetic", max_train_examples=64, max_test_examples=32)
    x = data.to_float(ds.train_images).reshape(64, -1)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    mix = np.random.default_rng(0).normal(size=(8, 8))  # any basis of the same span
    params = dict(run.variables["params"], dec_kernel=jax.numpy.asarray(mix @ vt[:8]))
    run = dataclasses.replace(run, variables={"params": params})
    ctx = analyze.Context(run, ds, workdir, LIMITS)
    numbers = analyze.pca_angles(ctx)
    assert numbers["max_angle_degrees"] < 0.1
    assert numbers["pca_variance_in_decoder_span"] == pytest.approx(1.0, abs=1e-6)
