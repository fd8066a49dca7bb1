"""×2 super-resolution as denoising: conv_deep with U-Net skips sees the bicubic-downsampled image
shown by pixel replication and is scored against the clean one; the analysis reports its
PSNR/SSIM gain over that input and over bicubic upsampling (the classical baseline).

Init: Flax's defaults (init_scheme='flax'): no framework's code to reproduce.
Run:    python train.py --config configs/superres.py --workdir runs/superres
        python -m jaxae.analyze --workdir runs/superres --only restoration
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_deep", skip=True)
    config.loss = "mse"
    config.denoise.kind = "downsample"
    config.num_epochs = 5
    return config
