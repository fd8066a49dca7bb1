"""jaxae.study: the arms' parameter counts are what each study claims; its measures."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import measures, models, study, study_arms
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


def test_architecture_counts_by_hand():
    """conv_deep: a k×k conv (or transposed conv) c_in→c_out has k²·c_in·c_out + c_out
    parameters, BatchNorm 2 per channel after every block but the output conv."""

    def conv(k, a, b):
        return k * k * a * b + b

    def conv_deep(features, k):
        enc = list(zip((1, *features[:-1]), features, strict=True))
        dec = list(zip((features[-1], *features[::-1][:-1]), features[::-1], strict=True))
        convs = [*enc, *dec, (features[0], 1)]
        return sum(conv(k, a, b) for a, b in convs) + 2 * 2 * sum(features)

    p = study.param_counts(study.STUDIES["architecture"])
    assert len(p) == 8 and conv_deep((16, 32, 64), 3) == 83_905  # conv_deep's own count
    for f, d, k in study_arms.GRID:
        assert p[study_arms.grid_label(f, d, k)] == conv_deep(f[:d], k), (f, d, k)
    assert p["c8_d2_k5"] == conv_deep((8, 16), 5) == 25 * (8 + 128 + 256 + 128 + 8) + 49 + 96


def test_architecture_check_catches_a_count_that_does_not_grow():
    p = study.param_counts(study.STUDIES["architecture"])
    assert study_arms.STUDIES["architecture"].check(p) is None
    p["c8_d3_k5"] = p["c8_d3_k3"]
    assert "c8_d3_k5" in study_arms.STUDIES["architecture"].check(p)


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


def _arm(mean, std, params=1000, **more):
    return {"mse": [mean, std], "params": [params, 0.0], "steps": [300, 0.0], **more}


def test_the_conclusion_names_the_arm_with_the_lower_mean():
    result = {
        "arms": {
            "deep_256_128_64": _arm(0.02, 0.001, 489_136),
            "wide_299": _arm(0.016, 0.002, 489_382),
        },
        "study": {"seeds": [0, 1]},
    }
    text = study.conclusion("depth_vs_width", result)
    assert text.startswith("Lowest test MSE: wide_299 0.016 ± 0.002, then deep_256_128_64")
    assert "wide_299 lower by 0.004, 2.0× the larger seed std" in text


def test_overlapping_intervals_are_no_measurable_difference():
    """0.016 ± 0.002 and 0.019 ± 0.0015 overlap (0.018 > 0.0175): no winner is named."""
    arms = {
        "conv_simple_maxpool": _arm(0.030, 0.001),
        "conv_simple_strided": _arm(0.029, 0.002),
        "conv_deep_maxpool": _arm(0.019, 0.0015),
        "conv_deep_strided": _arm(0.016, 0.002),
    }
    text = study.conclusion("stride_vs_pool", {"arms": arms, "study": {"seeds": [0, 1, 2]}})
    assert "lower by" not in text and "a gap" not in text
    assert text.count("no measurable difference (the mean ± std intervals overlap)") == 3
    arms["conv_deep_strided"] = _arm(0.014, 0.002)  # now 0.016 < 0.0175: apart
    text = study.conclusion("stride_vs_pool", {"arms": arms, "study": {"seeds": [0, 1, 2]}})
    assert "conv_deep_strided lower by 0.005, 2.5× the larger seed std" in text
    assert ".;" not in text and text.endswith("the larger seed std.")
    one = study.conclusion("stride_vs_pool", {"arms": arms, "study": {"seeds": [0]}})
    assert "lower by" not in one and "1 seed, so no spread" in one


def test_skips_and_upsampling_claim_only_what_is_apart():
    def skips(zeroed_unet):
        arms = {
            "no_skips": _arm(0.012, 0.001, zeroed_code_mse=[0.10, 0.01]),
            "unet_skips": _arm(0.010, 0.001, zeroed_code_mse=zeroed_unet),
        }
        return study.conclusion("skips", {"arms": arms, "study": {"seeds": [0, 1]}})

    assert skips([0.02, 0.005]).endswith("the skips bypass the bottleneck.")
    assert skips([0.085, 0.01]).endswith(
        "no measurable difference between them with the code zeroed."
    )
    cb = {"checkerboard_energy_of_originals": [1e-4, 0.0]}
    arms = {
        "transpose": _arm(0.01, 0.001, checkerboard_energy=[4e-3, 1e-3], **cb),
        "resize": _arm(0.01, 0.001, checkerboard_energy=[1e-3, 5e-4], **cb),
    }
    text = study.conclusion("upsampling", {"arms": arms, "study": {"seeds": [0, 1]}})
    assert text.endswith("transpose's is 4.0× resize's.")
    arms["resize"]["checkerboard_energy"] = [3e-3, 5e-4]
    text = study.conclusion("upsampling", {"arms": arms, "study": {"seeds": [0, 1]}})
    assert text.endswith("no measurable difference between the decoders.")


def test_the_architecture_conclusion_counts_pairs_per_axis():
    """MSE falls with channels, rises with blocks (apart in every pair); kernel 5 lowers only
    the means (the intervals overlap)."""
    arms = {}
    for f, d, k in study_arms.GRID:
        mse = 0.02 - 0.005 * (f[0] == 8) - 0.0005 * (k == 5) + 0.003 * (d == 3)
        arms[study_arms.grid_label(f, d, k)] = _arm(mse, 0.001)
    text = study.conclusion("architecture", {"arms": arms, "study": {"seeds": [0, 1]}})
    assert "channels 4→8 lowers the mean MSE in 4 of 4 pairs (4 with the mean ± std" in text
    blocks = "blocks 2→3 lowers the mean MSE in 0 of 4 pairs (0 with the mean ± std intervals "
    assert blocks + "apart) and raises it in 4 (4 apart)" in text
    kernel = "kernel 3→5 lowers the mean MSE in 4 of 4 pairs (0 with the mean ± std intervals "
    assert kernel + "apart) and raises it in 0 (0 apart)" in text
