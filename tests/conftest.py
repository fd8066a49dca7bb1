"""Shared test setup: a private data cache, no downloads, and tiny synthetic configs."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so `configs.NAME` imports like train.py's config files do

# No malloc setting here: train.py sets it only for a train step larger than a thread's heap,
# and its single arena slows every compilation, which is most of the suite's time. Nor the
# threefry rule: training sets that itself (fast.process.for_training), and it changes float
# rounding downstream (same random bits, different fusions), so a test that compares with a
# train.py run bit for bit runs its reference through train.py too.

# Most of the suite's time is XLA compiling on one thread, so one pytest-xdist worker per core
# halves it on two cores. Past four, each worker's own JAX, compiled programs and training
# subprocesses cost more memory than the extra cores win; `-n 0` runs in this process.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config):
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, MAX_WORKERS))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    import sys

    monkeypatch.setenv("JAXAE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("JAXAE_NO_DOWNLOAD", "1")
    yield
    store = sys.modules.get("jaxae.runtime.programs")
    if store is not None:  # train.main() run in this process turned the program store on
        store._directory = None


def assert_trees_equal(a, b):
    """Same tree structure and bit-identical leaves."""
    import jax
    import numpy as np

    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(x, y)


def ynn_fusion_bodies(hlo_text: str) -> list[str]:
    """The computations of a compiled XLA:CPU program that run as YNNPACK fusions."""
    import re

    blocks = hlo_text.split("\n\n")
    ynn = {m[1] for b in blocks for m in re.finditer(r"calls=(%[\w.-]+).*__ynn_fusion", b)}
    return [b for b in blocks if b.split(" ", 1)[0] in ynn]


def tiny_config(name: str, **overrides):
    """configs/NAME.py on a small synthetic dataset, a few steps, no progress bar."""
    import importlib

    config = importlib.import_module(f"configs.{name}").get_config()
    config.dataset.name = "synthetic"
    config.dataset.max_train_examples = 64
    config.dataset.max_test_examples = 32
    config.batch_size = 16
    config.eval_batch_size = 32
    config.num_steps = 6
    config.log_every = 2
    config.progress = False
    # one compiled step instead of a scan per dispatch length: a tiny deep_fc run takes 11 s
    # instead of 23 s. The scan path has its own tests (test_parallel: scan ≡ loop, the 'auto'
    # rule; test_reliability's train.py runs scan deep_fc by default).
    config.scan_epoch = "off"
    for key, value in overrides.items():
        target = config
        *parents, leaf = key.split(".")
        for part in parents:
            target = target[part]
        target[leaf] = value
    return config
