"""Tabular anomaly detection on scikit-learn's breast-cancer table: jaxae's autoencoder
(configs/breast_cancer.py) beside scikit-learn's IsolationForest and PCA reconstruction error.

    python benchmarks/anomaly.py [--seeds 0,1,2,3,4] [--out benchmarks/results/anomaly_DATE.json]

All three see the same split, the one the config makes: train = 80% of the benign rows (a
seeded split, dataset.split_seed=0), test = the other benign rows and every malignant row
(the anomalies), features min-max scaled on the training rows. Each detector is fit on the
training rows only and scores every test row; higher = more anomalous:
- jaxae: `train_and_evaluate(config)` per seed (config.seed), then the per-row MSE of the
  reloaded model's reconstruction (jaxae.load, the stored scaling);
- IsolationForest: scikit-learn defaults (100 trees), random_state = the seed; -score_samples;
- PCA: as many components as the autoencoder's code (latent_dim), squared reconstruction error.
Reported: ROC-AUC and average precision (malignant = positive), mean and standard deviation
over the seeds (PCA has no seed).
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scores(seed: int, workdir: pathlib.Path) -> dict[str, np.ndarray]:
    """{'labels', 'jaxae', 'isolation_forest', 'pca'}: [M] anomaly flags and scores of test."""
    from sklearn import decomposition, ensemble

    import jaxae
    from jaxae import config as config_lib
    from jaxae import data, train

    config = config_lib.load_file(ROOT / "configs" / "breast_cancer.py")
    config.seed, config.progress = seed, False
    train.train_and_evaluate(config, workdir)
    run = jaxae.load(workdir)
    ds = data.load_for_config(run.config, run.scaling)
    x_train = ds.train_images.reshape(len(ds.train_images), -1)
    x_test = ds.test_images.reshape(len(ds.test_images), -1)
    recon = np.asarray(run.reconstruct(ds.test_images)).reshape(x_test.shape)
    forest = ensemble.IsolationForest(random_state=seed).fit(x_train)
    pca = decomposition.PCA(n_components=config.model.latent_dim).fit(x_train)
    pca_recon = pca.inverse_transform(pca.transform(x_test))
    return {
        "labels": ds.test_anomaly,
        "jaxae": ((recon - x_test) ** 2).mean(axis=1),
        "isolation_forest": -forest.score_samples(x_test),
        "pca": ((pca_recon - x_test) ** 2).mean(axis=1),
    }


def _mean_std(values: list[float]) -> dict[str, float]:
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std}


def _fmt(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def main(argv: list[str]) -> None:
    from sklearn import metrics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    today = datetime.date.today().isoformat()
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / f"anomaly_{today}.json")
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    per_seed: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            result = scores(seed, pathlib.Path(tmp) / "run")
        labels = result.pop("labels")
        for name, score in result.items():
            entry = per_seed.setdefault(name, {"roc_auc": [], "average_precision": []})
            entry["roc_auc"].append(float(metrics.roc_auc_score(labels, score)))
            entry["average_precision"].append(float(metrics.average_precision_score(labels, score)))
        print(
            f"seed {seed}: " + ", ".join(f"{n} {v['roc_auc'][-1]:.4f}" for n, v in per_seed.items())
        )
    summary = {
        name: {m: _mean_std(v) for m, v in entry.items()} for name, entry in per_seed.items()
    }
    out = {
        "date": today,
        "seeds": seeds,
        "test_rows": {"anomalies": int(labels.sum()), "normal": int((~labels).sum())},
        "summary": summary,
        "per_seed": per_seed,
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print("| detector | ROC-AUC | average precision |\n|---|---:|---:|")
    for name, s in summary.items():
        auc, ap = s["roc_auc"], s["average_precision"]
        print(f"| {name} | {_fmt(auc)} | {_fmt(ap)} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
