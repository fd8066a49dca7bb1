"""benchmarks/throughput.py: each side in a worker process of its own, driven by the parent.

PyTorch is optional (CI has none): the side-by-side table is skipped without it.
"""

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "throughput.py"
TINY = ["--reps", "2", "--steps", "2", "--seconds", "0"]

pytestmark = pytest.mark.slow


def _run(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def test_jaxae_workers_follow_train_pys_malloc_rule():
    # vanilla scans; contractive_conv's step is dispatched alone (its forward-mode convs are
    # not canonical) and at batch 512 needs 120 MiB, over a thread heap, so its worker
    # measures that, starts afresh and runs with one arena, as train.py's next run would
    out = _run("--jaxae-only", "--models", "vanilla,contractive_conv", "--batch", "512", *TINY)
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["model"] for r in records] == ["vanilla", "contractive_conv"]
    assert all(r["images_per_second"] > 0 for r in records)
    assert records[0]["scan"] and not records[1]["scan"]
    assert records[0]["malloc"].startswith("malloc unchanged")
    assert records[1]["malloc"].startswith("malloc reuses freed memory")


def test_an_unknown_model_is_one_error_before_any_worker_starts():
    out = _run("--jaxae-only", "--models", "vanilla,nosuch", *TINY)
    assert out.returncode == 2
    assert "no configs/NAME.py for --models nosuch" in out.stderr
    assert out.stdout == ""


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="PyTorch not installed (pip install -e '.[bench]'); CI has none",
)
def test_the_table_has_one_row_a_model_with_both_rates():
    out = _run("--models", "conv_simple", *TINY)
    assert out.returncode == 0, out.stderr[-2000:]
    header, columns, row = out.stdout.splitlines()
    assert "each side in its own process" in header
    assert columns.split()[:3] == ["model", "params", "jaxae"]
    name, params, jax_rate, torch_rate, ratio = row.split()[:5]
    assert (name, params) == ("conv_simple", "225")
    assert float(jax_rate) > 0 and float(torch_rate) > 0 and ratio.endswith("x")
    assert row.split()[-1] == "unchanged"
