"""Deblurring as denoising: conv_deep with U-Net skips sees a Gaussian-blurred image (σ = 1 px)
and is scored against the clean one; the analysis reports its PSNR/SSIM gain over the blurred input.

Init: Flax's defaults (init_scheme='flax'): no framework's code to reproduce.
Run:    python train.py --config configs/deblur.py --workdir runs/deblur
        python -m jaxae.analyze --workdir runs/deblur --only restoration
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_deep", skip=True)
    config.loss = "mse"
    config.denoise.kind = "blur"
    config.denoise.sigma = 1.0  # the blur kernel's std in pixels
    config.num_epochs = 5
    return config
