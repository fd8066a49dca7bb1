"""conv_deep trained on MSE + 1 − SSIM: structure-aware reconstructions, same architecture.

Init: PyTorch's defaults (init_scheme='pytorch'), as configs/conv_deep.py, its baseline.
Run:    python train.py --config configs/ssim.py --workdir runs/ssim
The SSIM term is logged as `ssim_loss`; `--config.perceptual.ssim_weight=W` adds it to any model.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_deep", init_scheme="pytorch")
    config.loss = "mse"
    config.perceptual.ssim_weight = 1.0
    config.num_epochs = 5
    return config
