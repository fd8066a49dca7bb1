"""Two processes × 2 CPU devices over 127.0.0.1 train together and match one 4-device process."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from .test_parallel import _four, assert_close, params_of

pytestmark = pytest.mark.slow  # end-to-end: trains in subprocesses or several runs

# the command line equivalent of test_parallel.config(): tiny_config("deep_fc") + OVERRIDES
FLAGS = [
    "--config=configs/deep_fc.py",
    "--config.dataset.name=synthetic",
    "--config.dataset.max_train_examples=64",
    "--config.dataset.max_test_examples=32",
    "--config.batch_size=16",
    "--config.eval_batch_size=32",
    "--config.num_steps=6",
    "--config.log_every=2",
    "--config.progress=False",
    "--config.optimizer=sgd",
    "--config.learning_rate=0.05",
    "--config.model.hidden=(32,16)",
    "--config.model.latent_dim=8",
    "--config.model.dropout_rate=0.0",
    "--config.grad_clip=1.0",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(workdir, extra_args, extra_env):
    env = {
        **os.environ,
        "JAX_NUM_CPU_DEVICES": "2",
        "PYTHONPATH": str(ROOT),
        "JAXAE_NO_DOWNLOAD": "1",
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "train.py", *FLAGS, f"--workdir={workdir}", *extra_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """Process 0 joins by flags, process 1 by environment variables; both write one workdir."""
    workdir = tmp_path_factory.mktemp("two_processes") / "run"
    address = f"127.0.0.1:{free_port()}"
    procs = [
        launch(
            workdir, [f"--coordinator_address={address}", "--num_processes=2", "--process_id=0"], {}
        ),
        launch(
            workdir,
            [],
            {"JAX_COORDINATOR_ADDRESS": address, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"},
        ),
    ]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return workdir, outputs


def test_two_processes_match_one_process_with_four_devices(two_process_run, four_device_runs):
    workdir, outputs = two_process_run
    root = _four(four_device_runs)
    assert "4 device(s) in 2 process(es)" in outputs[0]
    assert "Training on" not in outputs[1]  # only process 0 reports and writes logs
    assert_close(params_of(workdir), params_of(root / "jit4"))
    summary = json.loads((workdir / "summary.json").read_text())
    reference = json.loads((root / "jit4" / "summary.json").read_text())
    assert summary["devices"] == 4 and summary["steps"] == 6
    assert summary["loss"] == pytest.approx(reference["loss"], rel=1e-5)
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == [2, 4, 6]  # written once, by process 0, not once per process
    ref = [json.loads(x) for x in (root / "jit4" / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(
        [r["loss"] for r in records if r["split"] == "train"],
        [r["loss"] for r in ref if r["split"] == "train"],
        rtol=1e-5,
    )


def test_process_id_without_coordinator_is_one_clear_error():
    result = subprocess.run(
        [sys.executable, "train.py", *FLAGS, "--workdir=/nonexistent/x", "--process_id=1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "--coordinator_address" in last, result.stderr
