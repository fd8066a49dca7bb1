"""python -m jaxae.analyze: every analysis writes its figure and numbers; the report is complete."""

import html
import html.parser
import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from jaxae import config
from jaxae.analysis import cli

from .conftest import LIMITS


@pytest.fixture(scope="module")
def analyzed(vae_run, tmp_path_factory):
    """(workdir, summary, analysis.json) of every analysis on a copy of the session's VAE run."""
    workdir, summary = vae_run
    copy = tmp_path_factory.mktemp("analyzed") / "run"
    shutil.copytree(workdir, copy)
    return copy, summary, cli.analyze(copy, limits=LIMITS)


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("src", "href") and not v.startswith("#")]


@pytest.mark.slow
def test_every_analysis_writes_its_figures_and_numbers(analyzed):
    workdir, _, out = analyzed
    outdir = workdir / "analysis"
    assert json.loads((outdir / "analysis.json").read_text()) == out
    assert list(out["analyses"]) == list(cli.ANALYSES)
    for name, entry in out["analyses"].items():
        if name == "pca_angles":
            assert "not the linear autoencoder" in entry["skipped"]
            continue
        if name == "feature_errors":  # tables only; tests/data/test_own_end_to_end.py runs it
            assert "feature vectors (tables)" in entry["skipped"]
            continue
        if name == "restoration":
            assert "not a denoising run" in entry["skipped"]
            continue
        if name == "hashing":
            assert "not a sigmoid code" in entry["skipped"]
            continue
        if name == "rate_distortion":  # codec runs only; tests/codec/test_trained.py runs it
            assert "is not the learned codec" in entry["skipped"]
            continue
        assert "skipped" not in entry, (name, entry)
        assert entry["figures"] and entry["numbers"], name
        for fig in entry["figures"]:
            assert (outdir / fig).read_bytes()[:4] == b"\x89PNG"
    assert set(out["analyses"]["vae"]["figures"]) == {
        "vae_prior_samples.png",
        "vae_traversal.png",
        "vae_nll.png",
        "vae_kl_per_dim.png",
    }
    assert set(out["analyses"]["feature_maps"]["figures"]) == {
        "feature_maps.png",
        "activations.png",
    }


@pytest.mark.slow
def test_numbers_are_consistent(analyzed):
    _, summary, out = analyzed
    a = {name: entry.get("numbers") for name, entry in out["analyses"].items()}
    metrics = a["test_metrics"]
    assert metrics["examples"] == 32 and len(metrics["per_class"]) == 10
    assert metrics["overall"]["ssim"] == pytest.approx(summary["ssim"], abs=0.05)
    assert -1 <= metrics["overall"]["ssim"] <= 1 and metrics["overall"]["mse"] > 0
    assert a["parameters"]["params"] == summary["params"]
    assert a["parameters"]["code_size"] == 128 == a["downstream"]["code_size"]
    # 64 synthetic training images minus the held-out class cap the PCA baseline's size
    n_train = a["downstream"]["train_examples"]
    assert n_train < 64 and a["downstream"]["pca_components"] == [n_train, 16]
    assert a["downstream"][f"PCA-{n_train}"]["dim"] == n_train
    for kind in ("codes", "raw pixels", f"PCA-{n_train}", "PCA-16"):
        assert 0 <= a["downstream"][kind]["linear_probe_accuracy"] <= 1
    vae = a["vae"]
    assert vae["nll_nats"] <= -vae["elbo_nats"] + 1e-3  # log mean w >= mean log w (Jensen)
    assert len(vae["kl_per_dim"]) == 128 and vae["nll_samples"] == 4
    assert a["anomaly"]["examples"] == {"held_out": 4, "trained": 28}
    assert 0 <= a["anomaly"]["roc_auc"] <= 1
    layers = a["feature_maps"]["layers"]
    assert layers["enc_0"]["shape"] == [14, 14, 16] and layers["mu"]["shape"] == [128]
    assert set(a["training_curves"]["terms"]) >= {"loss", "kl", "recon", "elbo", "grad_norm"}


@pytest.mark.slow
def test_report_references_only_files_that_exist(analyzed):
    workdir, _, out = analyzed
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
    assert cli.ANALYSES["anomaly"].__doc__.strip() in html.unescape(text)


@pytest.mark.slow
def test_only_reruns_some_analyses_and_keeps_the_rest(analyzed):
    workdir, _, out = analyzed
    again = cli.analyze(workdir, only=["parameters"], limits=LIMITS)
    assert again == out  # same checkpoint, deterministic numbers


def test_only_and_step_flags_are_checked():
    assert cli.parse_only(None) == list(cli.ANALYSES)
    assert cli.parse_only("vae, parameters") == ["vae", "parameters"]  # in ANALYSES order
    with pytest.raises(config.ConfigError, match="choose from training_curves"):
        cli.parse_only("parameters,nope")
    assert [cli.parse_step(s) for s in (None, "best", "latest", "12")] == [
        None,
        "best",
        "latest",
        12,
    ]
    with pytest.raises(config.ConfigError, match="is not a step"):
        cli.parse_step("last")


def test_analyze_cli_on_a_bad_workdir_prints_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--workdir", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "does not exist" in err[0], err


def test_python_m_jaxae_analyze_runs_the_package_cli(tmp_path, capsys):
    """The public entry point: `python -m jaxae.analyze` is jaxae/analyze.py calling cli.main."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "python -m jaxae.analyze" in help_text and "training_curves" in help_text
    bad = subprocess.run(
        [sys.executable, "-m", "jaxae.analyze", "--workdir", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr, bad.stderr
