"""Training images/second of jaxae vs a PyTorch reference of the same models, side by side.

    pip install -e '.[bench]'    # the pinned CPU PyTorch
    python benchmarks/throughput.py [--models conv_deep,vanilla] [--reps 11] [--seconds 0.5]

Same architecture, Adam, batch 128 and CPU threads for both, data already in memory; warm-up
excluded. Each side runs in a process of its own with the malloc setting that suits it: jaxae's
as train.py would choose it for the config, PyTorch's one arena and no mmap (its faster one).
Their repetitions alternate, each lasting at least --seconds (whole calls of --steps steps), so
each pair of neighbouring repetitions sees the same machine (this VM's speed drifts by
minutes). One row per model: the median rate of each side, the median of the per-pair ratios
with their quartiles, and jaxae's share of this machine's measured f32 matmul FLOP rate (model
FLOPs per step from XLA's cost analysis of the compiled step).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("vanilla", "deep_fc", "conv_simple", "conv_deep", "conv_vae", "contractive")


def matmul_flops_per_second(n: int = 1024, reps: int = 10) -> float:
    """Median f32 matmul rate of XLA on this machine, [n, n] @ [n, n]."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


# ----------------------------------------------------------------------------------------------
# jaxae: the library's own step, run the way train.py runs it


class JaxRunner:
    """`steps` train steps of configs/NAME.py per call, run as train.py runs them by default
    on CPU (`fast_ops='auto'`: the fast ops, their optimizer and compile options; and
    `scan_epoch='auto'`): one lax.scan dispatch over a device-resident set of `steps` batches
    when train.py would scan (on CPU: models whose convolutions are all in XLA's canonical
    form), otherwise one jitted, state-donating step per batch already on the device. Either
    way the mesh and the step are the library's own.
    """

    def __init__(self, name: str, batch: int, steps: int):
        import functools

        import jax
        import numpy as np
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        from jaxae import models, objectives, optim, train
        from jaxae.runtime import parallel

        config = importlib.import_module(f"configs.{name}").get_config()
        config.batch_size = batch
        fields = dict(config.model)
        model = models.create_model(fields.pop("name"), fast=True, **fields)
        image_shape = tuple(fields.get("image_shape", (28, 28, 1)))
        tx, schedule = optim.make_optimizer(config, 10_000, fast=True)
        objective = objectives.make_objective(config, model)
        norm = functools.partial(optim.global_norm, fast=True)
        step = train.make_train_step(objective, tx, schedule, norm=norm)
        mesh = parallel.make_mesh()
        images = np.random.default_rng(0).integers(0, 256, (steps, batch, *image_shape), np.uint8)
        sharding, replicated = NamedSharding(mesh, P(parallel.AXIS)), NamedSharding(mesh, P())
        self.state = jax.device_put(train.init_state(model, tx, image_shape, 0), replicated)
        self.params = models.count_params(self.state.params)
        self.rng = jax.device_put(jax.random.PRNGKey(0), replicated)
        self.step = parallel.compile_step(step, mesh, fast=True)
        one_batch = jax.ShapeDtypeStruct(images.shape[1:], images.dtype, sharding=sharding)
        compiled = self.step.lower(self.state, one_batch, self.rng).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        self.flops_per_step = float(cost.get("flops", 0.0))
        self.temp_bytes = int(compiled.memory_analysis().temp_size_in_bytes)

        def canonical() -> bool:
            return parallel.canonical_convolutions(step, self.state, one_batch, self.rng)

        self.scan = parallel.use_scan_epoch(
            config.scan_epoch, self.state.params, images.nbytes, canonical
        )
        if self.scan:  # the data goes to the device once, in the form its runner reads
            self.images = jax.device_put(images.reshape(-1, *image_shape), replicated)
            self.dispatch = parallel.make_scan_dispatch(
                step, mesh, jax.random.PRNGKey(1), batch, steps, fast=True
            )
        else:
            self.batches = [jax.device_put(b, sharding) for b in images]
        self.steps = steps

    def run(self) -> float:
        """Seconds for `steps` steps."""
        import jax

        t = time.perf_counter()
        if self.scan:
            self.state, metrics = self.dispatch(self.state, self.images, self.rng, self.steps)
        else:
            for batch in self.batches:
                self.state, metrics = self.step(self.state, batch, self.rng)
        jax.block_until_ready((self.state, metrics))
        return time.perf_counter() - t


# ----------------------------------------------------------------------------------------------
# PyTorch references of the same architectures (NCHW), Adam, same losses


def torch_model(name: str):
    """(module, loss_fn(module, x) -> scalar, grad_clip) for configs/NAME.py's architecture."""
    import torch
    from torch import nn

    def mse(logits, x):
        return torch.mean((torch.sigmoid(logits) - x) ** 2)

    if name == "vanilla":
        sizes = [784, 256, 128, 64, 128, 256, 784]
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        net = nn.Sequential(nn.Flatten(), *layers, nn.Unflatten(1, (1, 28, 28)))
        return net, lambda m, x: mse(m(x), x), 0.0
    if name == "deep_fc":

        def block(i, o):
            return [nn.Linear(i, o), nn.ReLU(), nn.BatchNorm1d(o), nn.Dropout(0.2)]

        net = nn.Sequential(
            nn.Flatten(),
            *block(784, 512),
            *block(512, 256),
            *block(256, 128),
            nn.Linear(128, 32),
            nn.ReLU(),
            *block(32, 128),
            *block(128, 256),
            *block(256, 512),
            nn.Linear(512, 784),
            nn.Unflatten(1, (1, 28, 28)),
        )
        return net, lambda m, x: mse(m(x), x), 1.0
    if name == "conv_simple":
        net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.ConvTranspose2d(16, 1, 2, stride=2),
        )
        return net, lambda m, x: mse(m(x), x), 0.0
    if name == "conv_deep":

        def down(i, o):
            return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(o), nn.MaxPool2d(2)]

        def up(i, o, pad, out_pad):
            return [
                nn.ConvTranspose2d(i, o, 3, 2, padding=pad, output_padding=out_pad),
                nn.ReLU(),
                nn.BatchNorm2d(o),
            ]

        net = nn.Sequential(
            *down(1, 16),
            *down(16, 32),
            *down(32, 64),
            *up(64, 64, 0, 0),  # 3 → 7
            *up(64, 32, 1, 1),  # 7 → 14
            *up(32, 16, 1, 1),  # 14 → 28
            nn.Conv2d(16, 1, 3, padding=1),
        )
        return net, lambda m, x: mse(m(x), x), 0.0
    if name == "conv_vae":

        class ConvVAE(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Sequential(
                    nn.Conv2d(1, 16, 3, 2, padding=1),
                    nn.ReLU(),
                    nn.Conv2d(16, 32, 3, 2, padding=1),
                    nn.ReLU(),
                    nn.Conv2d(32, 64, 3, 1, padding=1),
                    nn.ReLU(),
                    nn.Flatten(),
                )
                self.mu, self.logvar = nn.Linear(3136, 128), nn.Linear(3136, 128)
                self.dec = nn.Sequential(
                    nn.Linear(128, 3136),
                    nn.ReLU(),
                    nn.Unflatten(1, (64, 7, 7)),
                    nn.ConvTranspose2d(64, 32, 3, 1, padding=1),
                    nn.ReLU(),
                    nn.ConvTranspose2d(32, 16, 3, 2, padding=1, output_padding=1),
                    nn.ReLU(),
                    nn.ConvTranspose2d(16, 1, 3, 2, padding=1, output_padding=1),
                )

            def forward(self, x):
                h = self.enc(x)
                mu, logvar = self.mu(h), self.logvar(h)
                z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
                return self.dec(z), mu, logvar

        def elbo_loss(m, x):
            logits, mu, logvar = m(x)
            bce = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = 0.5 * torch.sum(torch.exp(logvar) + mu**2 - 1.0 - logvar)
            return (bce + kl) / x.shape[0]

        return ConvVAE(), elbo_loss, 0.0
    if name == "contractive":  # configs/contractive.py: sigmoid 784→128, closed-form penalty

        class Contractive(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc, self.dec = nn.Linear(784, 128), nn.Linear(128, 784)

            def forward(self, x):
                h = torch.sigmoid(self.enc(x.flatten(1)))
                return self.dec(h).view_as(x), h

        def cae_loss(m, x, weight=1e-3):
            logits, h = m(x)
            # ‖J_f(x)‖²_F = Σ_j (h_j (1 - h_j))² Σ_i W_ji² for one sigmoid layer (Rifai et al.)
            jacobian = torch.sum((h * (1 - h)) ** 2 * torch.sum(m.enc.weight**2, dim=1), dim=1)
            return mse(logits, x) + weight * jacobian.mean()

        return Contractive(), cae_loss, 0.0
    raise ValueError(f"no PyTorch reference for {name!r}; choose from {', '.join(MODELS)}")


class TorchRunner:
    """`steps` Adam steps of the PyTorch reference per call, on batches already in memory."""

    def __init__(self, name: str, batch: int, steps: int):
        import torch

        torch.manual_seed(0)
        self.model, self.loss_fn, self.clip = torch_model(name)
        self.params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.batches = torch.rand(steps, batch, 1, 28, 28)
        self.model.train()

    def run(self) -> float:
        import torch

        t = time.perf_counter()
        for x in self.batches:
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model, x)
            loss.backward()
            if self.clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            self.opt.step()
        return time.perf_counter() - t


# ----------------------------------------------------------------------------------------------
# Each side in a process of its own, as its users run it. The malloc setting that suits one side
# is wrong for the other, and it must be chosen before that side's framework starts: one arena
# and no mmap make PyTorch's conv steps faster and jaxae's small steps slower (benchmarks/
# ATTEMPTS.md, attempt 30). The parent only alternates the timed repetitions.


def timed(run, calls: int) -> float:
    """Seconds for `calls` calls of run()."""
    return sum(run() for _ in range(calls))


def jaxae_worker(args: argparse.Namespace) -> tuple[object, dict]:
    """(run, facts) for configs/MODEL.py's step, under train.py's malloc rule: one arena only
    for a step dispatched alone whose temporaries exceed a thread heap. That is chosen before
    JAX starts, from the step's temporaries as this benchmark measured them; a step found over
    the limit has its process started afresh (the same command), which then applies it."""
    from jaxae.fast import process

    memory = process.StepMemory.for_config(
        args.step_memory, {"model": args.worker_model, "batch_size": args.batch}
    )
    process.before_jax("on", memory)
    notes = process.for_training(True)
    import jax

    runner = JaxRunner(args.worker_model, args.batch, args.steps)
    if memory.read() is None:
        memory.write(runner.temp_bytes, runner.scan)
        if not runner.scan and runner.temp_bytes > process.THREAD_HEAP_BYTES:
            os.execv(sys.executable, [sys.executable, *sys.argv])
    facts = {
        "framework": f"jax {jax.__version__}",
        "devices": f"{jax.device_count()} {jax.devices()[0].platform}",
        "params": runner.params,
        "flops_per_step": runner.flops_per_step,
        "scan": bool(runner.scan),
        "malloc": notes[0],
        "notes": notes[1:],
        "matmul_flops": matmul_flops_per_second(),
    }
    return runner.run, facts


def torch_worker(args: argparse.Namespace) -> tuple[object, dict]:
    """(run, facts) for the PyTorch reference, with malloc's one arena and no mmap: the faster
    setting for PyTorch (conv_vae's step 18 ms, against 21-27 ms without it, as the heap's
    history has it; conv_deep's 47 against 53 ms), so that the reference is the stronger one."""
    from jaxae.fast import process

    process.reuse_freed_memory()
    import torch

    torch.set_num_threads(args.threads)
    runner = TorchRunner(args.worker_model, args.batch, args.steps)
    facts = {
        "framework": f"torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "params": runner.params,
    }
    return runner.run, facts


def worker(args: argparse.Namespace) -> None:
    """A side's process: after warm-up, one JSON line of facts; then, for each line N read,
    the seconds that N calls (of --steps steps each) took."""
    run, facts = (jaxae_worker if args.worker == "jaxae" else torch_worker)(args)
    for _ in range(2):  # compilation (and the recompile for the sharded state), caches
        run()
    facts["call_seconds"] = min(run() for _ in range(2))
    print(json.dumps(facts), flush=True)
    for line in sys.stdin:
        print(repr(timed(run, int(line))), flush=True)


class Side:
    """A worker process of one side for one model, driven over its stdin and stdout."""

    def __init__(self, side: str, model: str, args: argparse.Namespace, step_memory: str):
        command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker", side]
        command += ["--worker-model", model, "--batch", str(args.batch)]
        command += ["--steps", str(args.steps), "--threads", str(args.threads)]
        command += ["--step-memory", step_memory]
        self.name = f"{side} ({model})"
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (the worker's stderr; close())
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        self.facts = json.loads(self._line())
        self.calls = max(1, math.ceil(args.seconds / self.facts["call_seconds"]))

    def _line(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            sys.exit(f"error: the {self.name} worker failed:\n{self.log.read()[-3000:]}")
        return line

    def seconds_per_step(self, steps: int) -> float:
        """One timed repetition: at least --seconds of whole calls."""
        self.proc.stdin.write(f"{self.calls}\n")
        self.proc.stdin.flush()
        return float(self._line()) / (self.calls * steps)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        self.log.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="steps per call (one scan dispatch)")
    parser.add_argument("--reps", type=int, default=11, help="timed repetitions of each side")
    parser.add_argument(
        "--seconds", type=float, default=0.5, help="minimum length of one timed repetition"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--jaxae-only",
        action="store_true",
        help="time jaxae alone and print one JSON line per model (benchmarks/jax_versions.py)",
    )
    parser.add_argument("--worker", choices=("jaxae", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-model", help=argparse.SUPPRESS)
    parser.add_argument("--step-memory", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.reps < 2:
        parser.error("--reps must be at least 2 (the spread needs two pairs)")
    unknown = [m for m in args.models.split(",") if not (ROOT / "configs" / f"{m}.py").is_file()]
    if unknown:
        parser.error(f"no configs/NAME.py for --models {','.join(unknown)}; e.g. {MODELS[0]}")
    if not args.jaxae_only and importlib.util.find_spec("torch") is None:
        sys.exit("error: PyTorch is not installed; pip install -e '.[bench]' (a CPU wheel)")
    with tempfile.TemporaryDirectory() as step_memory:
        for i, name in enumerate(args.models.split(",")):
            if args.jaxae_only:
                jaxae_only(name, args, step_memory)
            else:
                compare(name, args, step_memory, header=i == 0)


def compare(name: str, args: argparse.Namespace, step_memory: str, *, header: bool) -> None:
    """One table row: jaxae's and PyTorch's repetitions alternated, one process each."""
    jx = Side("jaxae", name, args, step_memory)
    pt = Side("torch", name, args, step_memory)
    j, t = jx.facts, pt.facts
    if j["params"] != t["params"]:
        sys.exit(f"error: {name}: jaxae has {j['params']} parameters, torch {t['params']}")
    if header:
        print(
            f"{j['framework']} on {j['devices']} device(s), {t['framework']} with "
            f"{t['threads']} threads (malloc: one arena, no mmap), {os.cpu_count()} CPUs; "
            f"batch {args.batch}, {args.reps} reps of >= {args.seconds} s per side, each side "
            f"in its own process; XLA f32 matmul {j['matmul_flops'] / 1e9:.1f} GFLOP/s; fast "
            f"ops on: {', '.join(j['notes'])} (where the steps scan, JAX's threefry loop); "
            "jaxae's malloc as train.py sets it",
            flush=True,
        )
        print(
            f"{'model':<12} {'params':>9} {'jaxae img/s':>12} {'torch img/s':>12} {'ratio':>7} "
            f"{'pairs q1-q3':>12} {'GFLOP/step':>11} {'% matmul':>9} {'jaxae runs':>10} "
            f"{'jaxae malloc':>12}"
        )
    jax_times, torch_times = [], []  # seconds per step
    for _ in range(args.reps):  # alternated, so load from other processes hits both alike
        jax_times.append(jx.seconds_per_step(args.steps))
        torch_times.append(pt.seconds_per_step(args.steps))
    jx.close(), pt.close()
    jax_rate = args.batch / statistics.median(jax_times)
    torch_rate = args.batch / statistics.median(torch_times)
    pairs = sorted(t / j for j, t in zip(jax_times, torch_times, strict=True))
    q1, ratio, q3 = statistics.quantiles(pairs, n=4)
    share = j["flops_per_step"] * jax_rate / args.batch / j["matmul_flops"]
    malloc = "one arena" if j["malloc"].startswith("malloc reuses") else "unchanged"
    print(
        f"{name:<12} {j['params']:>9,} {jax_rate:>12.0f} {torch_rate:>12.0f} "
        f"{ratio:>6.2f}x {f'{q1:.2f}-{q3:.2f}x':>12} "
        f"{j['flops_per_step'] / 1e9:>11.3f} {100 * share:>8.1f}% "
        f"{'lax.scan' if j['scan'] else 'per step':>10} {malloc:>12}",
        flush=True,
    )


def jaxae_only(name: str, args: argparse.Namespace, step_memory: str) -> None:
    """One JSON line: jax's version, the median jaxae rate, whether it scanned, its malloc."""
    jx = Side("jaxae", name, args, step_memory)
    times = [jx.seconds_per_step(args.steps) for _ in range(args.reps)]
    jx.close()
    record = {
        "model": name,
        "jax": jx.facts["framework"].split()[-1],
        "images_per_second": args.batch / statistics.median(times),
        "scan": jx.facts["scan"],
        "malloc": jx.facts["malloc"],
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
