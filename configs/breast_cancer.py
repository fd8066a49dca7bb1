"""Tabular anomaly detection: a small fully connected autoencoder on scikit-learn's bundled
breast-cancer table (569 rows, 30 features; offline), trained on benign rows only.

Data: `sklearn:breast_cancer`, its `target` (1 = malignant) as the anomaly column, so every
malignant row is held out of training and scored; a seeded 20% of the benign rows is test too.
Features are min-max scaled on the training rows (stored in WORKDIR/scaling.json).
Model: vanilla 30→16→4→16→30 (ReLU, sigmoid output), Flax's init (init_scheme='flax').
Run:    python train.py --config configs/breast_cancer.py --workdir runs/breast_cancer
        python -m jaxae.analyze --workdir runs/breast_cancer   # anomaly ROC-AUC, per-feature errors
Compare: python benchmarks/anomaly.py (beside IsolationForest and PCA; benchmarks/README.md).
The same table as a CSV: python -m jaxae.data.sklearn_csv breast_cancer breast_cancer.csv, then
--config.dataset.name=csv:breast_cancer.csv --config.dataset.label_column=target.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.dataset.name = "sklearn:breast_cancer"
    config.dataset.anomaly_column = "target"
    config.model = model_config("vanilla", image_shape=(1, 1, 30), hidden=(16,), latent_dim=4)
    config.loss = "mse"
    config.batch_size = 32
    config.eval_batch_size = 500
    config.num_epochs = 300  # 286 training rows: 8 steps an epoch, 2,400 steps
    config.log_every = 100
    config.eval_every = 800  # steps: a test evaluation and checkpoint every 100 epochs
    return config
