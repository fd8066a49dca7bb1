"""Denoising FC autoencoder (Vincent et al. 2008): 30% of pixels masked to 0, MSE to the clean.

Init: PyTorch's defaults (init_scheme='pytorch'), as `vanilla`, so the corruption is the only
difference.
Run:    python train.py --config configs/denoising_fc.py --workdir runs/denoising_fc
Other corruptions: --config.denoise.kind=salt_pepper, --config.denoise.kind=gaussian.
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0371, SSIM 0.483 (clean test inputs).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("vanilla", init_scheme="pytorch")
    config.loss = "mse"
    config.denoise.kind = "masking"
    config.denoise.p = 0.3
    config.num_epochs = 5
    return config
