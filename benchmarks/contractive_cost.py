"""Cost of a contractive train step (exact, Hutchinson, closed form) relative to a plain step.

Run: python benchmarks/contractive_cost.py [--batch 128] [--repeats 20]
Prints one JSON line per (config, method): milliseconds per step (median) and the ratio to the
plain step of the same model (contractive weight 0), on random uint8 images.
"""

import argparse
import importlib
import json
import pathlib
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxae import models, objectives, optim, train  # noqa: E402

CASES = {
    "contractive": ("plain", "closed_form", "exact", "hutchinson"),
    "contractive_conv": ("plain", "hutchinson", "exact"),
}


def step_ms(config, batch: np.ndarray, repeats: int) -> float:
    """Median wall time in ms of one jitted train step (after one compiling call)."""
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)
    tx, schedule = optim.make_optimizer(config, 1000)
    state = train.init_state(model, tx, (28, 28, 1), seed=0)
    step = jax.jit(train.make_train_step(objectives.make_objective(config, model), tx, schedule))
    rng = jax.random.PRNGKey(0)
    batch = jax.device_put(batch)
    state, metrics = step(state, batch, rng)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = step(state, batch, rng)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    batch = np.random.default_rng(0).integers(0, 256, (args.batch, 28, 28, 1), dtype=np.uint8)
    for name, methods in CASES.items():
        plain = None
        for method in methods:
            config = importlib.import_module(f"configs.{name}").get_config()
            if method == "plain":
                config.contractive.weight = 0.0
            else:
                config.contractive.method = method
            ms = step_ms(config, batch, args.repeats)
            plain = plain or ms
            print(
                json.dumps(
                    {
                        "config": name,
                        "method": method,
                        "batch": args.batch,
                        "ms_per_step": round(ms, 2),
                        "ratio_to_plain": round(ms / plain, 2),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
