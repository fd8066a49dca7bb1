"""The perceptual loss's classifier: it learns a toy set, round-trips through its workdir, and
refuses what it cannot train on (one error line each), as do the feature-loss config checks."""

import json

import numpy as np
import pytest
from conftest import tiny_config

from jaxae import classifier
from jaxae import config as config_lib


def _run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        classifier.main(argv)
    return exit_info.value.code, capsys.readouterr().err.strip()


def test_learns_synthetic_shapes_and_round_trips_through_the_workdir(tmp_path, capsys):
    workdir = tmp_path / "cls"
    classifier.main(
        [
            f"--workdir={workdir}",
            "--config.dataset.name=synthetic",
            "--config.dataset.max_train_examples=1024",
            "--config.dataset.max_test_examples=256",
            "--config.num_steps=200",
        ]
    )
    info = json.loads((workdir / classifier.INFO_FILE).read_text())
    assert info["test_accuracy"] > 0.9  # 10 shape classes: chance is 0.1
    assert info["image_shape"] == [28, 28, 1] and info["num_classes"] == 10
    module, params, _ = classifier.load(workdir)
    config = config_lib.from_dict(info["config"])
    ds = classifier.load_data(config)
    assert classifier.accuracy(module, params, ds, 100) == info["test_accuracy"]


def test_unlabelled_images_are_one_error_line(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8))
    argv = [f"--workdir={tmp_path / 'w'}", f"--config.dataset.name=array:{path}"]
    code, err = _run_cli(argv, capsys)
    assert code == 2 and err.startswith("error: ") and "no class labels" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "w").exists()


def test_workdir_that_is_a_file_and_bad_fields_are_one_error_line(tmp_path, capsys):
    file = tmp_path / "f"
    file.write_text("")
    code, err = _run_cli([f"--workdir={file}", "--config.dataset.name=synthetic"], capsys)
    assert code == 2 and "is a file" in err
    code, err = _run_cli([f"--workdir={tmp_path}", "--config.num_steps=0"], capsys)
    assert code == 2 and err == "error: config field 'num_steps' must be > 0, got 0"
    code, err = _run_cli([f"--workdir={tmp_path}", "--config.widths=(32, 0)"], capsys)
    assert code == 2 and "'widths' must hold conv widths > 0" in err
    code, err = _run_cli([f"--workdir={tmp_path}", "--config.latent_dim=3"], capsys)
    assert code == 2 and "unknown config field 'latent_dim'" in err


def test_load_of_a_workdir_without_a_classifier_says_how_to_make_one(tmp_path):
    with pytest.raises(classifier.ClassifierError, match="does not exist.*jaxae.classifier"):
        classifier.load(tmp_path / "missing")
    with pytest.raises(classifier.ClassifierError, match="holds no trained classifier"):
        classifier.load(tmp_path)


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    """A classifier of 8×8 images (one step: only its shape matters here)."""
    workdir = tmp_path_factory.mktemp("digits") / "cls"
    argv = [f"--workdir={workdir}", "--config.dataset.name=digits", "--config.num_steps=1"]
    classifier.main(argv)
    return workdir


def test_feature_loss_config_needs_an_existing_classifier_of_the_image_shape(
    tmp_path, digits_classifier
):
    config = tiny_config("perceptual")
    cases = {
        "": "needs the feature network: set --config.perceptual.feature_workdir",
        str(tmp_path / "nope"): "perceptual.feature_workdir: classifier workdir .* does not exist",
        str(tmp_path): "holds no trained classifier",
        str(digits_classifier): "takes 8×8×1 images but the model makes 28×28×1",
    }
    for workdir, message in cases.items():
        config.perceptual.feature_workdir = workdir
        with pytest.raises(config_lib.ConfigError, match=message):
            config_lib.validate(config)
    config.perceptual.feature_weight = -1.0
    with pytest.raises(config_lib.ConfigError, match="perceptual.feature_weight"):
        config_lib.validate(config)
    config.perceptual.feature_weight = 0.0  # off: the path is not read
    config_lib.validate(config)
