"""Pythae's default AE and VAE, as benchmarks/end_to_end.py runs them against jaxae.

Pythae (`pip install -e '.[bench]' pythae`) trains through its own `TrainingPipeline` with its
`BaseTrainerConfig` defaults (Adam, learning rate 1e-4, batch 64, no clipping, no scheduler) and
its default MLP networks: encoder 784→512 ReLU → 10 (a VAE adds a log-variance head), decoder
10→512 ReLU → 784 sigmoid. jaxae trains the same architecture (same parameter count, checked
before anything is timed) from a stock config with the overrides in `JAXAE_SIDE`: Pythae's
learning rate, batch and initialisation, no clipping. The AE's loss is the pixel MSE on both
sides (Pythae sums it over pixels, jaxae averages: a constant factor Adam does not see); the
VAE is Bernoulli on both (`reconstruction_loss='bce'`: Pythae's MSE variant is a Gaussian with
its own fixed scale). Test MSE: sigmoid outputs of the mean code (`predict`), all test images.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

LATENT = 10
COMMON = (
    "--config.model.hidden=(512,)",
    f"--config.model.latent_dim={LATENT}",
    "--config.model.init_scheme=pytorch",
    "--config.learning_rate=0.0001",
    "--config.batch_size=64",
    "--config.grad_clip=0.0",
)
# row -> (the jaxae config it starts from, the overrides that make Pythae's architecture)
JAXAE_SIDE = {
    "pythae_ae": ("vanilla", (*COMMON, "--config.model.code_activation=linear")),
    "pythae_vae": ("vae", (*COMMON, "--config.vae.kl_warmup_steps=0", "--config.vae.beta=1.0")),
}


def pythae_model(name: str):
    """Pythae's default AE or VAE for 28×28×1 images (torch module)."""
    from pythae.models import AE, VAE, AEConfig, VAEConfig

    if name == "pythae_ae":
        return AE(AEConfig(input_dim=(1, 28, 28), latent_dim=LATENT))
    if name == "pythae_vae":
        return VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"))
    raise ValueError(f"no Pythae reference for {name!r}")


def pythae_params(name: str) -> int:
    return sum(p.numel() for p in pythae_model(name).parameters() if p.requires_grad)


def pythae_side(name: str, train_u8, test_u8, *, epochs, batch, lr, seed, threads) -> dict:
    """Trains Pythae's model with its pipeline; returns the test metrics (as torch_side)."""
    import numpy as np
    import torch
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    if threads > 0:
        torch.set_num_threads(threads)
    train = train_u8[:, None].astype(np.float32) / 255.0
    test = torch.from_numpy(test_u8[:, None].astype(np.float32) / 255.0)
    model = pythae_model(name)
    with tempfile.TemporaryDirectory(prefix="pythae_") as out:
        config = BaseTrainerConfig(
            output_dir=out,
            num_epochs=epochs,
            learning_rate=lr,
            per_device_train_batch_size=batch,
            seed=seed,
            no_cuda=True,
        )
        t_train = time.perf_counter()
        TrainingPipeline(training_config=config, model=model)(train_data=train)
        t_train = time.perf_counter() - t_train
    model.eval()
    sse = 0.0
    with torch.no_grad():
        for x in torch.split(test, 500):
            recon = model.predict(x).recon_x.reshape(x.shape)
            sse += float(torch.sum((recon - x) ** 2))
    result: dict[str, Any] = {
        "mse": sse / test.numel(),
        "params": pythae_params(name),
        "steps": epochs * -(-len(train) // batch),  # Pythae keeps the last partial batch
        "train_seconds": t_train,
        "threads": torch.get_num_threads(),
        "test_examples": len(test),
        "framework": f"pythae {_version()}",
    }
    return result


def _version() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version("pythae")
    except importlib.metadata.PackageNotFoundError:
        return None
