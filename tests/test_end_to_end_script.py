"""benchmarks/end_to_end.py: its run order, parsing, table and refusals on a tiny budget.

PyTorch and Keras are optional (CI installs neither): what needs one is skipped with the reason.
"""

import gzip
import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "end_to_end.py"

_spec = importlib.util.spec_from_file_location("end_to_end", SCRIPT)
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(
    not HAVE_TORCH, reason="PyTorch not installed (pip install -e '.[bench]'); CI has none"
)
needs_pythae = pytest.mark.skipif(
    importlib.util.find_spec("pythae") is None, reason="Pythae not installed (pip install pythae)"
)
needs_keras = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None, reason="Keras not installed (pip install keras)"
)


def _record(model, side, seconds, mse, **extra):
    return {"model": model, "side": side, "seconds": seconds, "mse": mse, **extra}


def _stub_counts(monkeypatch, jaxae, ref):
    monkeypatch.setattr(e2e, "available", lambda framework: True)
    monkeypatch.setattr(e2e, "jaxae_params", lambda name: jaxae)
    monkeypatch.setattr(e2e, "reference_params", lambda name: ref)
    monkeypatch.setattr(e2e, "prime_dataset_cache", lambda smoke: "stub")


def test_sides_alternate_repeat_by_repeat():
    assert e2e.order(["a", "b"], 2, ("jaxae", "ref")) == [
        ("a", 0, "jaxae"),
        ("a", 0, "ref"),
        ("a", 1, "jaxae"),
        ("a", 1, "ref"),
        ("b", 0, "jaxae"),
        ("b", 0, "ref"),
        ("b", 1, "jaxae"),
        ("b", 1, "ref"),
    ]


def test_summarize_takes_medians_and_the_ratio_ref_over_jaxae():
    records = [
        _record("vanilla", "jaxae", 10.0, 0.02),
        _record("vanilla", "ref", 30.0, 0.03),
        _record("vanilla", "jaxae", 14.0, 0.021),
        _record("vanilla", "ref", 36.0, 0.031),
        _record("vanilla", "jaxae", 12.0, 0.022),
        _record("vanilla", "ref", 33.0, 0.032),
        _record("other", "jaxae", 1.0, 0.5),
    ]
    row = e2e.summarize("vanilla", 1, records)
    assert row["jaxae_seconds"] == 12.0 and row["ref_seconds"] == 33.0
    assert row["ratio"] == pytest.approx(33.0 / 12.0)
    assert (row["jaxae_mse"], row["ref_mse"]) == (0.022, 0.032)  # the last repeat's
    assert (row["jaxae_runs"], row["ref_runs"]) == (3, 3)
    assert row["reference"] == "torch"


def test_summarize_leaves_failed_runs_out_and_says_why():
    records = [
        _record("vanilla", "jaxae", 10.0, 0.02),
        {"model": "vanilla", "side": "ref", "seconds": 1.0, "error": "exit 1: boom"},
    ]
    row = e2e.summarize("vanilla", 1, records)
    assert row["ref_seconds"] is None and row["ratio"] is None
    assert row["ref_error"] == "exit 1: boom"
    note = {"model": "conv_keras", "reference": "keras", "epochs": 1, "note": "not measured: x"}
    lines = e2e.format_table([row, note]).splitlines()
    header = "model ref epochs | jaxae s | ref s | ref/jaxae | jaxae MSE | ref MSE"
    assert lines[0].split() == header.replace("|", "").split()
    assert lines[2].split() == ["vanilla", "torch", "1", "10.0", "n/a", "n/a", "0.0200", "n/a"]
    assert lines[3].split()[-3:] == ["not", "measured:", "x"]


def test_table_formats_a_measured_row():
    records = [_record("deep_fc", "jaxae", 20.0, 0.0271), _record("deep_fc", "ref", 50.0, 0.0282)]
    row = e2e.summarize("deep_fc", 5, records)
    assert e2e.format_table([row]).splitlines()[2].split() == [
        "deep_fc",
        "torch",
        "5",
        "20.0",
        "50.0",
        "2.50",
        "0.0271",
        "0.0282",
    ]


def test_parse_reference_output_reads_the_last_result_line():
    out = 'noise\nEND_TO_END_RESULT {"mse": 1.0}\nEND_TO_END_RESULT {"mse": 0.5, "params": 3}\n'
    assert e2e.parse_reference_output(out) == {"mse": 0.5, "params": 3}
    with pytest.raises(e2e.BenchError, match="no result line"):
        e2e.parse_reference_output("Traceback ...\n")


def test_read_summary(tmp_path):
    with pytest.raises(e2e.BenchError, match="no .*summary.json"):
        e2e.read_summary(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"loss": 1.0}))
    with pytest.raises(e2e.BenchError, match="no 'mse'"):
        e2e.read_summary(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"mse": 0.02, "params": 7}))
    assert e2e.read_summary(tmp_path)["mse"] == 0.02


def test_commands():
    cmd = e2e.jaxae_command("conv_vae", "/tmp/w", 5, smoke=False, vae=True)
    assert cmd[1:5] == [str(ROOT / "train.py"), "--config", "configs/conv_vae.py", "--workdir"]
    assert "--config.num_epochs=5" in cmd and "--config.vae.nll_examples=0" in cmd
    assert not any("synthetic" in a for a in cmd)
    smoke = e2e.jaxae_command("vanilla", "/tmp/w", 1, smoke=True, vae=False)
    assert "--config.dataset.name=synthetic" in smoke and "--config.num_steps=2" in smoke
    assert not any("nll" in a for a in smoke)

    class Args:
        threads, data_dir, smoke = 2, "/data", False

    settings = {"batch_size": 128, "learning_rate": 1e-3, "grad_clip": 1.0, "seed": 0}
    ref = e2e.reference_command("deep_fc", 5, settings, Args)
    assert ref[2:4] == ["--torch-side", "deep_fc"] and ref[ref.index("--clip") + 1] == "1.0"
    assert e2e.reference_command("conv_keras", 5, settings, Args)[2] == "--keras-side"


def test_an_empty_xla_cache_run_sees_the_datasets_and_no_compiled_programs(tmp_path, monkeypatch):
    user = tmp_path / "user"
    (user / "xla").mkdir(parents=True)
    (user / "xla" / "program").write_text("compiled")
    (user / "programs").mkdir()  # the program store: stored steps, left out too
    (user / "step_memory").mkdir()  # what the last runs measured: a first run has not
    (user / "fashion_mnist.npz").write_text("data")
    monkeypatch.setattr(e2e, "user_cache_root", lambda: user)
    seen = {}

    def fake_run(cmd, env=None, **kw):
        seen["env"], seen["cmd"] = env, cmd
        if env is not None:
            cache = pathlib.Path(env["JAXAE_CACHE_DIR"])
            seen["entries"] = sorted(p.name for p in cache.iterdir())
            seen["data"] = (cache / "fashion_mnist.npz").read_text()
        workdir = pathlib.Path(cmd[cmd.index("--workdir") + 1])
        workdir.mkdir()
        (workdir / "summary.json").write_text(json.dumps({"mse": 0.03, "params": 5}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(e2e.subprocess, "run", fake_run)

    class Args:
        smoke, timeout, xla_cache = False, 10.0, "empty"

    record = e2e.run_side("vanilla", "jaxae", 1, {}, Args)
    assert record["mse"] == 0.03 and record["xla_cache"] == "empty"
    assert seen["entries"] == ["fashion_mnist.npz"] and seen["data"] == "data"
    assert not pathlib.Path(seen["env"]["JAXAE_CACHE_DIR"]).exists()  # removed with the run
    Args.xla_cache = "user"
    e2e.run_side("vanilla", "jaxae", 1, {}, Args)
    assert seen["env"] is None  # the user's own cache, as train.py finds it


def test_config_settings_copy_clip_and_learning_rate():
    deep_fc, vanilla = e2e.config_settings("deep_fc"), e2e.config_settings("vanilla")
    assert deep_fc["grad_clip"] == 1.0 and vanilla["grad_clip"] == 0.0
    assert deep_fc["batch_size"] == vanilla["batch_size"] == 128
    assert vanilla["learning_rate"] == 1e-3


def test_read_idx_images(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = b"".join(int(v).to_bytes(4, "big") for v in (2051, 2, 3, 4))
    with gzip.open(tmp_path / "x.gz", "wb") as f:
        f.write(header + images.tobytes())
    np.testing.assert_array_equal(e2e.read_idx_images(tmp_path / "x.gz"), images)
    (tmp_path / "bad").write_bytes(b"\0" * 16)
    with pytest.raises(e2e.BenchError, match="magic"):
        e2e.read_idx_images(tmp_path / "bad")


def test_mismatched_parameter_counts_are_refused_before_any_run(monkeypatch, capsys):
    _stub_counts(monkeypatch, jaxae=100, ref=101)

    def no_runs(*args, **kwargs):
        raise AssertionError("a refused model was run")

    monkeypatch.setattr(e2e, "run_side", no_runs)
    assert e2e.main(["--models", "vanilla", "--epochs", "1"]) == 1
    out = capsys.readouterr()
    assert "refused vanilla: jaxae has 100 parameters, torch 101" in out.err
    assert "refused: 100 vs 101 parameters" in out.out


def test_a_run_reporting_another_parameter_count_is_not_compared(monkeypatch, tmp_path):
    _stub_counts(monkeypatch, jaxae=100, ref=100)
    reports = {"jaxae": {"seconds": 2.0, "mse": 0.02, "params": 100}}
    reports["ref"] = {"seconds": 4.0, "mse": 0.03, "params": 99}
    monkeypatch.setattr(
        e2e, "run_side", lambda model, side, *a: {"model": model, "side": side, **reports[side]}
    )
    out_file = tmp_path / "e2e.json"
    assert e2e.main(["--models", "vanilla", "--repeats", "2", "--out", str(out_file)]) == 1
    result = json.loads(out_file.read_text())
    row = result["rows"][0]
    assert row["jaxae_seconds"] == 2.0 and row["ref_seconds"] is None and row["ratio"] is None
    assert "not compared" in row["ref_error"] and row["note"].startswith("failed:")
    assert [r["side"] for r in result["runs"]] == ["jaxae", "ref"] * 2


def test_a_missing_reference_is_listed_as_not_measured(monkeypatch, capsys):
    monkeypatch.setattr(e2e, "available", lambda framework: framework != "keras")
    monkeypatch.setattr(e2e, "run_side", lambda *a: pytest.fail("nothing is measurable"))
    assert e2e.main(["--models", "conv_keras"]) == 0
    assert "not measured: keras not installed (pip install keras)" in capsys.readouterr().out


def test_unknown_model_is_an_error(capsys):
    assert e2e.main(["--models", "no_such_model"]) == 2
    assert "no reference for no_such_model" in capsys.readouterr().err


@needs_torch
def test_both_sides_count_the_same_parameters():
    for name in e2e.MODELS:
        if e2e.REFERENCE[name] == "torch":
            assert e2e.jaxae_params(name) == e2e.torch_params(name), name


def test_pythae_rows_train_pythaes_default_architecture_in_jaxae():
    # Pythae's default MLPs: 784→512→10 (a VAE adds a 512→10 log-variance head), 10→512→784
    encoder, decoder, head = 784 * 512 + 512 + 512 * 10 + 10, 10 * 512 + 512 + 512 * 784 + 784, 5130
    assert e2e.jaxae_params("pythae_ae") == encoder + decoder == 814_874
    assert e2e.jaxae_params("pythae_vae") == encoder + decoder + head
    for name, config in (("pythae_ae", "vanilla"), ("pythae_vae", "vae")):
        settings = e2e.config_settings(name)
        assert settings["learning_rate"] == 1e-4 and settings["batch_size"] == 64
        assert settings["grad_clip"] == 0.0 and settings["model"]["hidden"] == (512,)
        cmd = e2e.jaxae_command(name, "/tmp/w", 1, smoke=False, vae=name == "pythae_vae")
        assert cmd[3] == f"configs/{config}.py" and "--config.batch_size=64" in cmd
    assert e2e.config_settings("pythae_ae")["model"]["code_activation"] == "linear"


@needs_pythae
def test_pythae_reference_counts_the_same_parameters():
    for name in ("pythae_ae", "pythae_vae"):
        assert e2e.jaxae_params(name) == e2e.reference_params(name), name


@needs_keras
def test_keras_reference_counts_the_same_parameters():
    assert e2e.jaxae_params("conv_keras") == e2e.reference_params("conv_keras") == 4385


@needs_torch
def test_torch_side_on_tiny_random_data(capsys):
    args = ["--torch-side", "conv_vae", "--smoke", "--clip", "1.0", "--threads", "1"]
    assert e2e.main(args) == 0
    result = e2e.parse_reference_output(capsys.readouterr().out)
    assert result["steps"] == e2e.SMOKE_STEPS
    assert result["test_examples"] == e2e.SMOKE_SIZES[1]
    assert 0.0 < result["mse"] < 1.0 and result["elbo"] < 0.0
    assert result["params"] == e2e.torch_params("conv_vae")


@pytest.mark.slow
def test_smoke_run_prints_the_table_and_writes_json(tmp_path):
    out_file = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--models", "vanilla", "--out", str(out_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("model"))
    vanilla = table[header + 2].split()
    assert vanilla[:3] == ["vanilla", "torch", "1"] and vanilla[3] != "n/a"
    assert (vanilla[4] != "n/a") == HAVE_TORCH
    result = json.loads(out_file.read_text())
    sides = [r["side"] for r in result["runs"]]
    assert sides == (["jaxae", "ref"] if HAVE_TORCH else ["jaxae"])
    assert all(0.0 < r["mse"] < 1.0 for r in result["runs"])
    assert all(r["cpu_seconds"] > 0.0 and r["seconds"] > 0.0 for r in result["runs"])
