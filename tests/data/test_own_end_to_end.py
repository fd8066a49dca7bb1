"""Own data through train.py, jaxae.load and the analysis: tables train and their scaling is
restored; every bad input is one `error:` line and exit 2 before anything is written."""

import importlib.util
import pathlib

import numpy as np
import pytest

from .test_own_sources import write_csv, write_pngs

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _cli():
    spec = importlib.util.spec_from_file_location("train_cli", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        anomalous = i % 8 == 0
        base = rng.normal(size=4) * (4.0 if anomalous else 1.0) + [0, 10, 100, -5]
        rows.append([*base.round(4), "xy"[i % 2], int(anomalous)])
    return write_csv(tmp_path / "table.csv", ["f0", "f1", "f2", "f3", "y", "anomaly"], rows)


BAD = {
    "data_dir at a folder of PNGs": (["--config.dataset.data_dir={pngs}"], "name=folder:{pngs}"),
    "a field the source does not read": (
        ["--config.dataset.name=folder:{pngs}", "--config.dataset.label_column=y"],
        "label_column='y' is not used by dataset 'folder'",
    ),
    "mixed image sizes": (
        ["--config.dataset.name=folder:{mixed}", "--config.model.image_shape=(8,8,1)"],
        "different sizes",
    ),
    "non-numeric column": (
        ["--config.dataset.name=csv:{table}", "--config.model.image_shape=(1,1,6)"],
        "column 'y' is not numeric",
    ),
    "a conv model on a table": (
        [
            "--config.dataset.name=csv:{table}",
            "--config.dataset.label_column=y",
            "--config.dataset.anomaly_column=anomaly",
            "--config.model.image_shape=(1,1,4)",
            "CONFIG=conv_simple",
        ],
        "use a fully connected model: linear, vanilla",
    ),
    "table at the wrong width": (
        ["--config.dataset.name=csv:{table}", "--config.dataset.label_column=y"],
        "--config.model.image_shape='(1, 1, 5)'",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_own_data_is_one_error_line_and_exit_2(case, tmp_path, capsys):
    write_pngs(tmp_path / "pngs", 4, shape=(8, 8, 1))
    write_pngs(tmp_path / "mixed", 2, shape=(8, 8, 1))
    from PIL import Image

    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "mixed" / "big.png")
    paths = {"pngs": tmp_path / "pngs", "mixed": tmp_path / "mixed", "table": _table(tmp_path)}
    overrides, needle = BAD[case]
    workdir = tmp_path / "run"
    name = next((o[7:] for o in overrides if o.startswith("CONFIG=")), "vanilla")
    overrides = [o for o in overrides if not o.startswith("CONFIG=")]
    argv = ["--config", str(ROOT / f"configs/{name}.py"), "--workdir", str(workdir)]
    argv += ["--config.num_steps=2", "--config.progress=False"]
    with pytest.raises(SystemExit) as info:
        _cli().main([*argv, *(o.format(**paths) for o in overrides)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and needle.format(**paths) in err[-1], err
    assert not workdir.exists()


@pytest.mark.slow
def test_a_table_trains_reloads_its_scaling_and_is_analysed(tmp_path):
    from conftest import tiny_config

    import jaxae
    from jaxae import data, train
    from jaxae.analysis.cli import analyze
    from jaxae.analysis.context import Limits

    table = _table(tmp_path)
    config = tiny_config("vanilla", num_steps=40, batch_size=8, eval_batch_size=16)
    config.dataset.name = f"csv:{table}"
    config.dataset.label_column, config.dataset.anomaly_column = "y", "anomaly"
    config.dataset.max_train_examples = config.dataset.max_test_examples = 0
    config.model.image_shape, config.model.hidden, config.model.latent_dim = (1, 1, 4), (8,), 2
    workdir = tmp_path / "run"
    train.train_and_evaluate(config, workdir)

    ds = data.load_for_config(config)
    run = jaxae.load(workdir)
    assert run.scaling is not None and run.scaling.feature_names == ("f0", "f1", "f2", "f3")
    np.testing.assert_allclose(run.scaling.offset, ds.scaling.offset)
    np.testing.assert_allclose(run.scaling.scale, ds.scaling.scale)
    raw = run.scaling.invert(ds.train_images.reshape(-1, 4))  # the train rows in CSV units
    np.testing.assert_allclose(raw.min(0), ds.scaling.offset, atol=1e-4)  # fitted on train
    x = run.scaling.apply(raw[:3]).reshape(3, 1, 1, 4)
    assert run.reconstruct(x).shape == (3, 1, 1, 4)

    out = analyze(workdir, only=["reconstructions", "anomaly", "feature_errors"],
                  limits=Limits(eval_examples=100, batch_size=16))  # fmt: skip
    results = out["analyses"]
    assert "feature vectors" in results["reconstructions"]["skipped"]
    anomaly = results["anomaly"]["numbers"]
    assert anomaly["examples"] == {"held_out": 10, "trained": 14}
    assert 0.5 < anomaly["roc_auc"] <= 1.0  # anomalies are drawn 4x wider: they score higher
    errors = results["feature_errors"]["numbers"]
    assert set(errors["mse"]) == {"normal", "anomalies"} and errors["features"] == 4
