"""jaxae's training speed on a GPU or TPU: one command, one table, at most ~8 minutes.

    python benchmarks/accelerator.py              # on the accelerator; --budget 450 seconds
    python benchmarks/accelerator.py --smoke      # on a CPU in seconds: tiny data, one rep

Per model (vanilla, deep_fc, conv_deep, conv_vae, contractive_conv), compute dtype (float32,
bfloat16) and batch (128, 2048): training images/s of the library's own step (fast ops off,
Adam, the config's loss), with whole epochs on the device (one lax.scan dispatch per epoch) and
with one dispatch per step from batches already on the device; the seconds of one full epoch
(60,000 images: Fashion-MNIST if it is in the jaxae cache, else synthetic images of the same
shape, as the table says); jaxae's share of the device's peak FLOP rate (model FLOPs per step
from XLA's cost analysis, peak from PEAK_TFLOPS); and, when torch imports, the same
architecture in PyTorch eager on the same device (bfloat16 by autocast) and torch.compile when
it compiles within --compile-seconds. PyTorch runs in a child process after the JAX rows, so the
two never share the accelerator's memory at once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MODELS = ("vanilla", "deep_fc", "conv_deep", "conv_vae", "contractive_conv")
DTYPES = ("float32", "bfloat16")
EPOCH_IMAGES = 60_000  # Fashion-MNIST's training split

# Dense peak TFLOP/s by device kind (vendor datasheets, no sparsity): (float32 as XLA runs it by
# default — TF32 tensor cores on NVIDIA, None where there is no such mode —, bfloat16).
PEAK_TFLOPS = {
    "H200": (494.0, 989.0),
    "H100 PCIe": (378.0, 756.0),
    "H100": (494.0, 989.0),
    "A100": (156.0, 312.0),
    "L4": (60.0, 121.0),
    "TPU v4": (None, 275.0),
    "TPU v5 lite": (None, 197.0),  # v5e
    "TPU v5e": (None, 197.0),
    "TPU v5p": (None, 459.0),
    "TPU v6 lite": (None, 918.0),  # v6e (Trillium)
}


def peak_flops(device_kind: str, dtype: str) -> float | None:
    """FLOP/s of `device_kind` (jax's Device.device_kind) for `dtype`; None when unknown."""
    for kind, (f32, bf16) in PEAK_TFLOPS.items():  # "H100 PCIe" is listed before "H100"
        if kind.lower() in device_kind.lower():
            peak = f32 if dtype == "float32" else bf16
            return None if peak is None else peak * 1e12
    return None


# ----------------------------------------------------------------------------------------------
# jaxae: the library's step, compiled the way train.py compiles it


def load_images(n: int, smoke: bool):
    """(uint8 images [n, 28, 28, 1], source): Fashion-MNIST from the jaxae cache when there, else
    synthetic images of the same shape (the rates do not depend on the pixels)."""
    import numpy as np

    if not smoke:
        os.environ.setdefault("JAXAE_NO_DOWNLOAD", "1")  # never the network
        from jaxae import config as config_lib
        from jaxae import data

        config = config_lib.default_config()
        try:
            images = data.load_for_config(config).train_images
            if len(images) >= n:
                return images[:n], "Fashion-MNIST"
        except Exception as e:  # noqa: BLE001 - any reason the dataset is not there
            print(f"Fashion-MNIST not loaded ({str(e).splitlines()[0][:120]}); synthetic images")
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 28, 28, 1), np.uint8), "synthetic (same shape)"


class JaxCase:
    """One (model, dtype, batch): the step per dispatch and the lax.scan epoch, both compiled."""

    def __init__(self, name: str, dtype: str, batch: int, images):
        import jax
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        from jaxae import models, objectives, optim, steps
        from jaxae.runtime import parallel

        config = importlib.import_module(f"configs.{name}").get_config()
        config.batch_size, config.compute_dtype, config.fast_ops = batch, dtype, "off"
        fields = dict(config.model)
        model = models.create_model(fields.pop("name"), dtype=dtype, **fields)
        tx, schedule = optim.make_optimizer(config, 10**6)
        step = steps.make_train_step(objectives.make_objective(config, model), tx, schedule)
        mesh = parallel.make_mesh()
        replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P(parallel.AXIS))
        self.state = jax.device_put(steps.init_state(model, tx, (28, 28, 1), 0), replicated)
        self.params = models.count_params(self.state.params)
        self.rng = jax.device_put(jax.random.PRNGKey(0), replicated)
        self.steps_per_epoch = len(images) // batch
        self.images_per_epoch = self.steps_per_epoch * batch
        one = jax.ShapeDtypeStruct((batch, 28, 28, 1), images.dtype, sharding=split)
        # compiled once, ahead of time: the executable both steps and gives the cost analysis
        self.step = parallel.compile_step(step, mesh).lower(self.state, one, self.rng).compile()
        cost = self.step.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        self.flops_per_step = float((cost or {}).get("flops", 0.0))
        usable = images[: self.images_per_epoch].reshape(self.steps_per_epoch, batch, 28, 28, 1)
        self.batches = [jax.device_put(b, split) for b in usable]
        self.images = jax.device_put(images, replicated)
        self.scan = parallel.make_scan_dispatch(
            step, mesh, jax.random.PRNGKey(1), batch, self.steps_per_epoch
        )

    def epoch(self, scan: bool) -> float:
        """Seconds of one epoch: one scan dispatch, or one dispatch per step."""
        import jax

        t = time.perf_counter()
        if scan:
            self.state, metrics = self.scan(self.state, self.images, self.rng, self.steps_per_epoch)
        else:
            for b in self.batches:
                self.state, metrics = self.step(self.state, b, self.rng)
        jax.block_until_ready((self.state, metrics))
        return time.perf_counter() - t


def measure_jax(args, images, deadline: float) -> list[dict[str, Any]]:
    """Rows {model, dtype, batch, scan/step img/s, epoch seconds, FLOPs} until `deadline`."""
    import jax

    kind = jax.devices()[0].device_kind
    rows = []
    for name in args.models:
        for batch in args.batches:
            for dtype in args.dtypes:
                row: dict[str, Any] = {"model": name, "dtype": dtype, "batch": batch}
                rows.append(row)
                if time.monotonic() > deadline:
                    row["note"] = "skipped: out of time"
                    continue
                t = time.perf_counter()
                case = JaxCase(name, dtype, batch, images)
                row["params"] = case.params
                for mode in ("scan", "step"):
                    case.epoch(mode == "scan")  # compiles (and warms up)
                    seconds = statistics.median(
                        case.epoch(mode == "scan") for _ in range(args.reps)
                    )
                    row[f"{mode}_img_s"] = case.images_per_epoch / seconds
                    row[f"{mode}_epoch_s"] = seconds * EPOCH_IMAGES / case.images_per_epoch
                peak = peak_flops(kind, dtype)
                best = max(row["scan_img_s"], row["step_img_s"])
                if peak and case.flops_per_step:
                    row["peak_fraction"] = case.flops_per_step * best / batch / peak
                row["gflop_step"] = case.flops_per_step / 1e9
                row["seconds"] = time.perf_counter() - t
                print(json.dumps(row), flush=True)
    return rows


# ----------------------------------------------------------------------------------------------
# PyTorch, in a child process


def torch_reference(name: str):
    """(module, loss_fn(module, x) -> scalar, grad_clip) of configs/NAME.py in PyTorch."""
    if name != "contractive_conv":
        from throughput import torch_model

        return torch_model(name)
    import torch
    from torch import nn

    class ContractiveConv(nn.Module):  # configs/contractive_conv.py: conv_flat + Hutchinson
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(
                nn.Conv2d(1, 32, 3, 2, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, 2, padding=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(3136, 64),
            )
            self.dec = nn.Sequential(
                nn.Linear(64, 3136),
                nn.ReLU(),
                nn.Unflatten(1, (64, 7, 7)),
                nn.ConvTranspose2d(64, 32, 3, 2, padding=1, output_padding=1),
                nn.ReLU(),
                nn.ConvTranspose2d(32, 1, 3, 2, padding=1, output_padding=1),
            )

        def forward(self, x):
            return self.dec(self.enc(x))

    def loss(m, x, weight=1e-3):
        probe = torch.randn_like(x)  # one probe: ‖J v‖², an unbiased ‖J‖²_F
        _, jv = torch.func.jvp(m.enc, (x,), (probe,))
        penalty = torch.sum(jv**2, dim=1).mean()
        return torch.mean((torch.sigmoid(m(x)) - x) ** 2) + weight * penalty

    return ContractiveConv(), loss, 0.0


def torch_worker(args) -> None:
    """Prints one JSON line per (model, batch, dtype) and mode: eager images/s for every cell
    first, then torch.compile's (slow to compile, so what the budget leaves)."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    for mode in ("eager", "compile"):
        for name in args.models:
            for batch in args.batches:
                for dtype in args.dtypes:
                    row = {"model": name, "dtype": dtype, "batch": batch, "torch_device": device}
                    try:
                        row[f"torch_{mode}_img_s"] = _torch_rate(
                            name, dtype, batch, mode, device, args
                        )
                    except Exception as e:  # noqa: BLE001 - report and go on
                        row[f"torch_{mode}_note"] = f"{type(e).__name__}: {str(e)[:80]}"
                    print(json.dumps(row), flush=True)


def _torch_rate(name: str, dtype: str, batch: int, mode: str, device: str, args) -> float:
    import torch

    torch.manual_seed(0)
    model, loss_fn, clip = torch_reference(name)
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = max(1, args.images // batch)
    data = torch.rand(min(steps, 64), batch, 1, 28, 28, device=device)
    run_model = torch.compile(model) if mode == "compile" else model
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bfloat16")

    def one(x):
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(run_model, x)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    def epoch() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(steps):
            one(data[i % len(data)])
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    t = time.perf_counter()
    one(data[0])  # compiles under torch.compile
    if mode == "compile" and time.perf_counter() - t > args.compile_seconds:
        raise TimeoutError(f"compiled in {time.perf_counter() - t:.0f} s")
    epoch()
    return steps * batch / statistics.median(epoch() for _ in range(args.reps))


def measure_torch(args, seconds: float) -> list[dict[str, Any]]:
    """The torch rows from a child process given `seconds`; whatever it printed by then."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return []
    command = [sys.executable, __file__, "--torch-worker", *_shared_flags(args)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=max(seconds, 1))
        out, note = done.stdout, None if done.returncode == 0 else done.stderr[-200:]
    except subprocess.TimeoutExpired as e:
        out, note = (e.stdout or b"").decode(), "torch ran out of time"
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if note:
        print(f"torch: {note}", flush=True)
    return rows


def _shared_flags(args) -> list[str]:
    return [
        f"--models={','.join(args.models)}",
        f"--batches={','.join(map(str, args.batches))}",
        f"--dtypes={','.join(args.dtypes)}",
        f"--reps={args.reps}",
        f"--images={args.images}",
        f"--compile-seconds={args.compile_seconds}",
    ]


# ----------------------------------------------------------------------------------------------
# The table


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_table(rows: list[dict[str, Any]], header: str) -> str:
    """One markdown table: a line per (model, dtype, batch)."""
    lines = [
        header,
        "",
        "| model | dtype | batch | scan img/s | step img/s | epoch s scan / step | % peak "
        "| torch eager img/s | torch.compile img/s | scan / eager |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "note" in r:
            lines.append(f"| {r['model']} | {r['dtype']} | {r['batch']} | {r['note']} |")
            continue
        eager, compiled = r.get("torch_eager_img_s"), r.get("torch_compile_img_s")
        fraction = r.get("peak_fraction")
        lines.append(
            f"| {r['model']} | {r['dtype']} | {r['batch']} | {r['scan_img_s']:,.0f} "
            f"| {r['step_img_s']:,.0f} | {r['scan_epoch_s']:.2f} / {r['step_epoch_s']:.2f} "
            f"| {_fmt(None if fraction is None else 100 * fraction, '.1f')} "
            f"| {_fmt(eager, ',.0f')} | {_fmt(compiled, ',.0f')} "
            f"| {_fmt(r['scan_img_s'] / eager if eager else None, '.1f')} |"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])

    def names(text: str) -> list[str]:
        return [t for t in text.split(",") if t]

    parser.add_argument("--smoke", action="store_true", help="CPU check: tiny data, one rep")
    parser.add_argument("--models", type=names, default=list(MODELS))
    parser.add_argument("--dtypes", type=names, default=list(DTYPES))
    parser.add_argument("--batches", type=lambda t: [int(b) for b in names(t)], default=None)
    parser.add_argument("--reps", type=int, default=None, help="timed epochs per cell (median)")
    parser.add_argument("--images", type=int, default=None, help="images per epoch")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for everything")
    parser.add_argument("--compile-seconds", type=float, default=60.0)
    parser.add_argument("--json", type=pathlib.Path, help="also write the rows here")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> str:
    args = _parser().parse_args(argv)
    args.batches = args.batches or ([16, 64] if args.smoke else [128, 2048])
    args.reps = args.reps or (1 if args.smoke else 3)
    args.images = args.images or (256 if args.smoke else EPOCH_IMAGES)
    unknown = sorted(set(args.models) - set(MODELS)) + sorted(set(args.dtypes) - set(DTYPES))
    if unknown:
        sys.exit(
            f"error: unknown {unknown}; models: {', '.join(MODELS)}; dtypes: float32, bfloat16"
        )
    if args.torch_worker:
        torch_worker(args)
        return ""
    start = time.monotonic()
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave memory to torch
    import jax

    if args.smoke:
        jax.config.update("jax_platforms", "cpu")
    images, source = load_images(args.images, args.smoke)
    device = jax.devices()[0]
    rows = measure_jax(args, images, deadline=start + 0.65 * args.budget)
    torch_rows = measure_torch(args, start + args.budget - time.monotonic())
    for row in rows:
        for other in torch_rows:
            if all(other[k] == row[k] for k in ("model", "dtype", "batch")):
                row.update({k: v for k, v in other.items() if k.startswith("torch")})
    torch_note = (
        "torch not importable" if not torch_rows else "torch (eager, compile) on the same device"
    )
    header = (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; jax {jax.__version__}, "
        f"{jax.device_count()} x {device.device_kind} ({device.platform}); data: {source}, "
        f"{args.images} images per epoch (epoch seconds scaled to {EPOCH_IMAGES:,}); fast ops off; "
        f"{args.reps} timed epoch(s) per cell after a warm-up; {torch_note}; "
        f"{time.monotonic() - start:.0f} s in all"
        + ("; SMOKE (CPU, not a measurement)" if args.smoke else "")
    )
    table = format_table(rows, header)
    print(table, flush=True)
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": rows}, indent=1) + "\n")
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
