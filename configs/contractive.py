"""Contractive autoencoder (Rifai et al. 2011): one sigmoid layer 784→128, λ‖J_f(x)‖²_F.

The penalty uses Rifai's closed form; --config.contractive.method=exact (autodiff Jacobian) or
=hutchinson gives the same quantity (exactly, or as an unbiased estimate).
Init: PyTorch's defaults (init_scheme='pytorch'), as its PyTorch reference in
benchmarks/throughput.py.
Run:    python train.py --config configs/contractive.py --workdir runs/contractive
Sweep:  for l in 1e-4 1e-3 1e-2; do python train.py --config configs/contractive.py \
            --workdir runs/cae_$l --config.contractive.weight=$l; done
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0292, SSIM 0.406, ‖J‖²_F 2.06 per image.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config(
        "vanilla", hidden=(), latent_dim=128, code_activation="sigmoid", init_scheme="pytorch"
    )
    config.loss = "mse"
    config.contractive.weight = 1e-3
    config.contractive.method = "closed_form"
    config.num_epochs = 5
    return config
