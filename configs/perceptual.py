"""conv_deep trained on MSE + feature matching: a classifier's activations of the reconstruction
against the original's (jaxae/perceptual.py: feature_loss), same architecture.

Init: PyTorch's defaults (init_scheme='pytorch'), as configs/conv_deep.py, its baseline.
First:  python -m jaxae.classifier --workdir runs/classifier   (Fashion-MNIST, 1000 steps)
Run:    python train.py --config configs/perceptual.py --workdir runs/perceptual
The term is logged as `feature_loss`; `--config.perceptual.feature_weight=W` with
`--config.perceptual.feature_workdir=DIR` adds it to any image model.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_deep", init_scheme="pytorch")
    config.loss = "mse"
    # the feature distance is on MSE's scale (a σ=1 Gaussian blur of Fashion-MNIST's test images
    # scores 0.0129 against MSE 0.0125), so 10 makes it the main term, as weight 1 does for
    # 1 − SSIM in configs/ssim.py (about 25× the MSE)
    config.perceptual.feature_weight = 10.0
    config.perceptual.feature_workdir = "runs/classifier"
    config.num_epochs = 5
    return config
