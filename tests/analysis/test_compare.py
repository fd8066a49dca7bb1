"""jaxae.compare: one report for several runs; runs of other datasets or shapes are refused."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import tiny_config

from jaxae import compare

from .conftest import _train


def test_two_runs_give_one_report_with_every_column(vae_run, linear_run, tmp_path):
    out = compare.compare([linear_run[1], vae_run[0]], tmp_path / "cmp", max_examples=32)
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text()) == out
    lin, vae = out["runs"]["linear_run0"], out["runs"]["conv_vae_run0"]
    assert lin["code_size"] == 8 and lin["compression_ratio"] == 784 / 8
    assert vae["code_size"] == 128 and vae["params"] == vae_run[1]["params"]
    assert lin["steps"] == 6 and "elbo" in vae and "elbo" not in lin
    assert vae["ssim"] == pytest.approx(vae_run[1]["ssim"], abs=0.05)  # same 32 test images
    text = (tmp_path / "cmp" / "report.html").read_text()
    for fig in ("compare_reconstructions.png", "compare_curves.png", "compare_latent.png"):
        assert (tmp_path / "cmp" / fig).read_bytes()[:4] == b"\x89PNG" and fig in text


def test_arms_are_averaged_over_their_runs(linear_run, tmp_path):
    """Two copies of one run: one arm of two runs with zero spread; same base names get parents."""
    for seed in ("s0", "s1"):
        shutil.copytree(linear_run[1], tmp_path / seed / "linear")
    out = compare.compare(
        [tmp_path / "s0" / "linear", tmp_path / "s1" / "linear"],
        tmp_path / "cmp",
        max_examples=32,
        arms={"s0/linear": "a", "s1/linear": "a"},
        extra={"s0/linear": {"x": 1.0}, "s1/linear": {"x": 2.0}},
        conclusion="the same run twice",
    )
    arm = out["arms"]["a"]
    assert arm["runs"] == 2 and arm["mse"][1] == 0.0
    assert arm["x"] == pytest.approx([1.5, 2**-0.5])  # mean, std with ddof 1
    assert "the same run twice" in (tmp_path / "cmp" / "report.html").read_text()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    config = tiny_config("linear", **{"model.latent_dim": 4, "model.image_shape": (16, 16, 1)})
    return _train(tmp_path_factory, "small_images", config)[0]


@pytest.mark.slow  # a subprocess
def test_runs_of_other_image_shapes_are_refused_with_one_line(linear_run, small_run, tmp_path):
    with pytest.raises(compare.MismatchedRunsError, match="one dataset and image shape"):
        compare.compare([linear_run[1], small_run], tmp_path / "x")
    result = subprocess.run(
        [sys.executable, "-m", "jaxae.compare", str(linear_run[1]), str(small_run)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "(16, 16, 1)" in result.stderr and not (tmp_path / "compare").exists()


def test_a_study_draws_one_run_per_arm_and_no_rounding_noise():
    """Image figures take each arm's first run; identical values average to std 0 (not the
    1e-16 their float mean leaves), which the table shows as the bare value."""
    names = ("a/seed0", "a/seed1", "a/seed2", "b/seed0")
    entries = [
        compare.Entry(n, None, {}, {"ratio": 784 / 576, "mse": 0.01 + i})
        for i, n in enumerate(names)
    ]
    arms = {n: n.split("/")[0] for n in names}
    assert [e.name for e in compare.first_of_each_arm(entries, arms)] == ["a/seed0", "b/seed0"]
    assert compare.first_of_each_arm(entries, None) == entries
    table = compare.aggregate(entries, arms)
    assert table["a"]["ratio"] == [pytest.approx(784 / 576), 0.0]
    assert table["a"]["mse"] == pytest.approx([1.01, 1.0])
    assert (
        compare._cell(table["a"]["ratio"]) == "1.361"
        and compare._cell([0.01, 0.002]) == "0.01 ± 0.002"
    )
