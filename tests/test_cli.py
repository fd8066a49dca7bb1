"""train.py end to end: the workdir contract, and one clear error line for each user mistake."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow  # end-to-end: trains in subprocesses or several runs

TINY = [
    "--config.dataset.name=synthetic",
    "--config.dataset.max_train_examples=64",
    "--config.dataset.max_test_examples=32",
    "--config.batch_size=16",
    "--config.num_steps=4",
    "--config.progress=True",  # the default: a bar on terminals only
]


def run(*args, env=None):
    env = {**os.environ, "JAXAE_NO_DOWNLOAD": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def assert_one_line_error(result, *needles):
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    assert errors, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[-1], errors[-1]


def test_train_py_writes_the_workdir_contract(tmp_path):
    workdir, env = tmp_path / "run", {"JAXAE_CACHE_DIR": str(tmp_path / "cache")}
    result = run("--config", "configs/conv_simple.py", "--workdir", str(workdir), *TINY, env=env)
    assert result.returncode == 0, result.stderr
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoints"):
        assert (workdir / name).exists(), name
    assert list(workdir.glob("events.out.tfevents.*"))
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["params"] == 225 and summary["steps"] == 4
    config = json.loads((workdir / "config.json").read_text())
    assert config["dataset"]["name"] == "synthetic" and config["num_steps"] == 4
    # no terminal here (a pipe, as in a log file or CI): no bar, but a line per evaluation
    # and the closing summary with the next command
    out = result.stdout.splitlines()
    assert "\r" not in result.stderr and "it/s" not in result.stderr
    assert any(line.startswith("step 4/4 epoch 1.0/1.0 | train loss ") for line in out), out
    assert f"summary: {workdir / 'summary.json'}" in out
    assert f"next: python -m jaxae.analyze --workdir {workdir}" in out
    assert any(line.startswith("done: 4 steps; test: loss ") for line in out), out
    # the train step's temporaries are measured for the next run's malloc choice
    assert "malloc unchanged (this config's step memory is measured in this run)" in result.stdout
    (memory,) = (tmp_path / "cache" / "step_memory").iterdir()
    record = json.loads(memory.read_text())
    assert 0 < record["temp_bytes"] < 64 << 20
    assert record["scanned"] is True  # conv_simple's fast convs are canonical: it scans
    # the same command again resumes (and finds nothing left to do), with malloc as it was
    again = run("--config", "configs/conv_simple.py", "--workdir", str(workdir), *TINY, env=env)
    assert again.returncode == 0 and "Resuming" in again.stdout
    assert "malloc unchanged (the steps run in scan epochs)" in again.stdout, again.stdout


@pytest.mark.parametrize(
    "override, needle",
    [
        ("--config.no_such_field=1", "no_such_field"),
        ("--config.batch_size=many", "batch_size"),
        ("--config.batch_size=0", "batch_size"),
        ("--config.dataset.name=imagenet", "dataset.name"),
        ("--config.optimizer=adamax", "optimizer"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, override, needle):
    workdir = tmp_path / "run"
    result = run("--config", "configs/vanilla.py", "--workdir", str(workdir), *TINY, override)
    assert_one_line_error(result, needle)
    assert not workdir.exists()  # nothing written


def test_missing_dataset_names_where_it_looked_and_the_fix(tmp_path):
    env = {
        "JAXAE_DATA_DIR": str(tmp_path / "empty"),
        "TFDS_DATA_DIR": str(tmp_path / "tfds"),
        "JAXAE_DEBIAN_DATA_ROOT": str(tmp_path / "no-debian"),
        "JAXAE_CACHE_DIR": str(tmp_path / "cache"),
    }
    (tmp_path / "empty").mkdir()
    args = [a for a in TINY if "dataset.name" not in a]
    result = run(
        "--config",
        "configs/vanilla.py",
        "--workdir",
        str(tmp_path / "run"),
        *args,
        "--config.dataset.name=mnist",
        env=env,
    )
    assert_one_line_error(result, "apt-get install", "JAXAE_DATA_DIR")
    assert not (tmp_path / "run").exists()


def test_wrong_image_shape_is_one_clear_line(tmp_path):
    result = run(
        "--config",
        "configs/conv_deep.py",
        "--workdir",
        str(tmp_path / "run"),
        *TINY,
        "--config.model.image_shape=(32,32,3)",
        "--config.dataset.name=digits",
    )
    assert_one_line_error(result, "image")


def test_pretraining_prints_its_progress(tmp_path):
    args = [a for a in TINY if "num_steps" not in a]
    result = run(
        "--config",
        "configs/hinton_pretrain.py",
        "--workdir",
        str(tmp_path / "run"),
        *args,
        "--config.num_steps=2",
        "--config.pretrain.steps_per_layer=2",
        "--config.log_every=1",
        "--config.model.hidden=(32,16)",
        "--config.model.latent_dim=8",
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("pretraining")]
    assert [line.split(" |")[0] for line in lines] == [
        f"pretraining layer {layer}/3 step {step}/2" for layer in (1, 2, 3) for step in (1, 2)
    ]
