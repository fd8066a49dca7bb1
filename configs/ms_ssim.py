"""conv_deep trained on MSE + 1 − MS-SSIM (3 scales, 5×5 window on 28×28; jaxae/perceptual.py).

Init: PyTorch's defaults (init_scheme='pytorch'), as configs/conv_deep.py, its baseline.
Run:    python train.py --config configs/ms_ssim.py --workdir runs/ms_ssim
The term is logged as `ms_ssim_loss`; `--config.perceptual.ms_ssim_weight=W` adds it anywhere.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_deep", init_scheme="pytorch")
    config.loss = "mse"
    config.perceptual.ms_ssim_weight = 1.0
    config.num_epochs = 5
    return config
