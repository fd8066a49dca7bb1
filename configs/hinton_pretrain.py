"""Hinton & Salakhutdinov (2006) 784→1000→500→250→30 with greedy layer-wise pretraining.

Each layer pair is first trained alone as a shallow autoencoder on the codes of the pairs below
(500 steps each, logged as split 'pretrain'), then the whole stack is fine-tuned end to end.
Init: Flax's defaults (init_scheme='flax'), as `hinton`; pretraining then sets the layers.
Run:    python train.py --config configs/hinton_pretrain.py --workdir runs/hinton_pretrain
Expect: after --config.num_epochs=1 on Fashion-MNIST (plus the 4 × 500 pretraining steps):
        test MSE 0.0150, SSIM 0.593 (`hinton` without pretraining: 0.0346 after that epoch).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("hinton")
    config.loss = "mse"
    config.pretrain.steps_per_layer = 500
    config.num_epochs = 5
    return config
