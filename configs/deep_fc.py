"""Deep FC autoencoder 784→512→256→128→32 and mirror (1,144,880 params).

Each hidden block is Linear→ReLU→BatchNorm→Dropout(0.2); gradients clipped to norm 1.0.

Init: PyTorch's defaults (init_scheme='pytorch'): the PyTorch tutorial architecture, whose
reference in benchmarks/throughput.py starts from them.
Run:    python train.py --config configs/deep_fc.py --workdir runs/deep_fc
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0261, SSIM 0.465 (README results table, 2026-12-04).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("deep_fc", init_scheme="pytorch")
    config.loss = "mse"
    config.num_epochs = 5
    config.grad_clip = 1.0
    return config
