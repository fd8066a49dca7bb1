"""Learned image codec (Ballé et al. 2017 style): GDN transforms 28×28×1 → 7×7×16 latents,
factorized entropy model, loss = bpp + λ · MSE(0..255). init_scheme='flax'.

The λ ladder of the rate–distortion study (one run each, 6000 steps of 32 images, cosine
learning-rate decay; ~15 min each on a loaded 2-core CPU):
  --config.codec.lmbda=0.004   low rate
  --config.codec.lmbda=0.016   (the default)
  --config.codec.lmbda=0.064   high rate
Run:    python train.py --config configs/codec.py --workdir runs/codec_0.016
Then:   python -m jaxae.compress --workdir runs/codec_0.016 IMAGE.png --out DIR
        python -m jaxae.decompress --workdir runs/codec_0.016 DIR/IMAGE.jxc --out DIR
        python -m jaxae.rate_distortion --workdirs runs/codec_* --out runs/rd
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("codec")
    config.codec.lmbda = 0.016
    config.batch_size = 32
    config.num_steps = 6000
    config.eval_every = 2000
    config.schedule = "cosine"
    config.learning_rate = 1e-3
    return config
