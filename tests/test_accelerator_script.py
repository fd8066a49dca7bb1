"""benchmarks/accelerator.py: its smoke mode on the CPU prints the table; peaks and torch refs.

PyTorch is optional (CI has none): its reference models are checked only where it imports.
"""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "accelerator", ROOT / "benchmarks" / "accelerator.py"
)
accelerator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(accelerator)


def test_smoke_mode_prints_one_row_per_cell_with_rates_on_the_cpu(capsys):
    argv = ["--smoke", "--models", "vanilla", "--batches", "16", "--images", "64"]
    table = accelerator.main(argv)
    assert table in capsys.readouterr().out
    lines = table.splitlines()
    assert "SMOKE (CPU, not a measurement)" in lines[0] and "synthetic (same shape)" in lines[0]
    assert "torch" in lines[0]
    rows = [line.split(" | ") for line in lines if line.startswith("| vanilla")]
    assert [(r[1], r[2]) for r in rows] == [("float32", "16"), ("bfloat16", "16")]
    for r in rows:
        scan_rate, step_rate = (float(v.replace(",", "")) for v in r[3:5])
        assert scan_rate > 0 and step_rate > 0
        assert r[6] == "n/a"  # no peak FLOP rate is known for a CPU


def test_peak_rates_by_device_kind_and_unknown_kinds_are_none():
    assert accelerator.peak_flops("NVIDIA H200", "bfloat16") == 989e12
    assert accelerator.peak_flops("NVIDIA H100 PCIe", "float32") == 378e12
    assert accelerator.peak_flops("TPU v4", "float32") is None
    assert accelerator.peak_flops("TPU v5 lite", "bfloat16") == 197e12
    assert accelerator.peak_flops("cpu", "float32") is None


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed")
def test_torch_references_have_jaxae_parameter_counts():
    from jaxae import config as config_lib
    from jaxae import models

    for name in accelerator.MODELS:
        config = config_lib.load_file(ROOT / "configs" / f"{name}.py")
        fields = dict(config.model)
        model = models.create_model(fields.pop("name"), **fields)
        import jax
        import jax.numpy as jnp

        shapes = jax.eval_shape(
            lambda m=model: m.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)), train=False)
        )
        torch_module = accelerator.torch_reference(name)[0]
        torch_count = sum(p.numel() for p in torch_module.parameters())
        assert models.count_params(shapes["params"]) == torch_count, name
