"""jaxae.study: the arms' parameter counts are what each study claims; its measures."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import measures, models, study
from jaxae.analysis.load import Run


@pytest.mark.parametrize("name", list(study.STUDIES))
def test_each_study_builds_the_arms_it_claims(name):
    s = study.STUDIES[name]
    params = study.param_counts(s)
    assert set(params) == {a.label for a in s.arms}
    assert s.check(params) is None, s.claim


def test_depth_vs_width_counts_by_hand():
    """Dense layers: (in + 1)·out each; the wide arm, 1634·w + 816, is matched to the deep one."""

    def dense(*widths):
        return sum((a + 1) * b for a, b in zip(widths, widths[1:], strict=False))

    p = study.param_counts(study.STUDIES["depth_vs_width"])
    assert p["deep_256_128_64"] == dense(784, 256, 128, 64, 32, 64, 128, 256, 784) == 489_136
    assert p["wide_299"] == dense(784, 299, 32, 299, 784) == 1634 * 299 + 816
    assert p["wide_1024"] == dense(784, 1024, 32, 1024, 784)
    assert abs(p["wide_299"] / p["deep_256_128_64"] - 1) < 0.001


def test_checkerboard_energy_is_high_on_a_checkerboard_and_low_on_a_smooth_image():
    i, j = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    board = (0.5 + 0.3 * (-1.0) ** (i + j))[None, :, :, None]
    smooth = np.exp(-((i - 13.5) ** 2 + (j - 13.5) ** 2) / 60.0)[None, :, :, None]
    assert measures.checkerboard_energy(board) == pytest.approx(1.0)
    assert measures.checkerboard_energy(smooth) < 1e-6
    both = measures.checkerboard_energy(smooth + 0.05 * (board - 0.5))
    assert 1e-3 < both < 0.1  # a faint checkerboard (amplitude 0.015) on the smooth image


def _run(skip):
    """An untrained small conv_flat (it has skips too), jitted: shape checks, not quality."""
    model = models.create_model("conv_flat", features=(4, 8), latent_dim=4, skip=skip)
    init = jax.jit(lambda k: model.init(k, jnp.zeros((1, 28, 28, 1)), train=False))
    return Run(model, dict(init(jax.random.PRNGKey(0))), tiny_config("conv_flat"), 0, None)


@pytest.mark.slow  # compiles two conv models
def test_a_zeroed_code_reaches_the_decoder_only_through_skips():
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (2, 28, 28, 1)))
    for skip in (False, True):
        run = _run(skip)
        fn = jax.jit(lambda v, b, m=run.model: m.apply(v, b, method=measures._zeroed_code_logits))
        logits = fn(run.variables, x)
        assert (not np.allclose(logits[0], logits[1])) == skip  # x reaches it only by skips
    assert measures.zeroed_code_mse(run, x) > 0


def test_an_unknown_study_is_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        study.main(["nope", "--workdir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no study 'nope'") and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_tiny_study_reports_mean_and_std_with_its_conclusion(tmp_path):
    tiny = ["dataset.name=synthetic", "dataset.max_train_examples=64", "batch_size=16"]
    tiny += ["dataset.max_test_examples=32", "num_steps=3", "scan_epoch=off"]
    out = study.run_study("skips", tmp_path, seeds=(0, 1), overrides=tiny, max_examples=32)
    assert json.loads((tmp_path / "report" / "compare.json").read_text()) == out
    arm = out["arms"]["unet_skips"]
    assert arm["runs"] == 2 and len(arm["zeroed_code_mse"]) == 2 and arm["steps"] == [3, 0]
    assert "Lowest test MSE" in out["conclusion"] and "code zeroed" in out["conclusion"]
    assert out["study"]["params"] == {"no_skips": 83_905, "unet_skips": 95_425}
    assert out["conclusion"] in (tmp_path / "report" / "report.html").read_text()


def test_the_conclusion_names_the_arm_with_the_lower_mean():
    def arm(mean, std, params):
        return {"mse": [mean, std], "params": [params, 0.0], "steps": [300, 0.0]}

    result = {
        "arms": {
            "deep_256_128_64": arm(0.02, 0.001, 489_136),
            "wide_299": arm(0.017, 0.002, 489_382),
        },
        "study": {"seeds": [0, 1]},
    }
    text = study.conclusion("depth_vs_width", result)
    assert text.startswith("Lowest test MSE: wide_299 0.017 ± 0.002, then deep_256_128_64")
    assert "wide_299 lower by 0.003, 1.5× the larger seed std" in text
